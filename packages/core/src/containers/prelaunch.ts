import type { PendingConmon } from '../runtime/conmon.js';

/**
 * conmons that `run()` started before the container's record and bundle existed, held on their
 * start pipe until init takes them (by container id; ids are random, so one map serves every
 * Libpod of the process). Whoever prelaunches cancels what init did not take.
 */
const held = new Map<string, PendingConmon>();

export function holdPrelaunched(id: string, conmon: PendingConmon): void {
  void held.get(id)?.cancel();
  held.set(id, conmon);
}

/** The held conmon of a container, once (init takes it; undefined when there is none). */
export function takePrelaunched(id: string): PendingConmon | undefined {
  const c = held.get(id);
  held.delete(id);
  return c;
}

/** Kills a held conmon init did not take; resolves once it is gone. */
export async function cancelPrelaunched(id: string): Promise<void> {
  await takePrelaunched(id)?.cancel();
}

/**
 * Rootfs mounts `run()`'s create kept for its init (the spec generator needed the rootfs mounted;
 * unmounting only for init to mount it again cost two mount(8)/umount(8) processes per run).
 * The mount reference itself lives in the store; this only says who owns it.
 */
const heldMounts = new Set<string>();

export function holdMount(id: string): void {
  heldMounts.add(id);
}

/** True once for a container whose create kept its rootfs mounted for init. */
export function takeHeldMount(id: string): boolean {
  return heldMounts.delete(id);
}
