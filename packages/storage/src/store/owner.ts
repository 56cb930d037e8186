/**
 * Identity of a process that owns a transient state in the store (a layer being written or
 * deleted, a lease). A record stores its owner; anyone who finds the owner dead may take the
 * state over (remove the partial layer, drop the lease).
 *
 * A pid alone is not an identity (pids are reused), so an owner is (boot id, pid, start time):
 * the kernel's boot id changes at every boot, and a pid's start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot) differs between two processes that got the same
 * pid. On hosts without /proc the start time is '' and only the pid is compared.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const OwnerSchema = z.object({
  pid: z.number().int().positive(),
  start: z.string(),
  boot: z.string(),
});
export type Owner = z.infer<typeof OwnerSchema>;

let cachedBoot: string | undefined;

/** The kernel's boot id ('' when unknown): changes at every boot, so runRoot state can be aged. */
export function bootId(): string {
  if (cachedBoot === undefined) {
    try {
      cachedBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBoot = '';
    }
  }
  return cachedBoot;
}

/** Start time of `pid` in clock ticks since boot, or undefined if the process does not exist. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and ')': fields after the last ')' are fixed.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field 22 is rest[19]. A zombie has exited: treat as dead.
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return rest[19] ?? '';
}

let cachedSelf: Owner | undefined;

export function currentOwner(): Owner {
  if (cachedSelf === undefined || cachedSelf.pid !== process.pid) {
    cachedSelf = { pid: process.pid, start: processStartTime(process.pid) ?? '', boot: bootId() };
  }
  return cachedSelf;
}

/** True when the owner process is still running (same boot, same pid, same start time). */
export function ownerAlive(owner: Owner): boolean {
  if (owner.boot !== bootId()) return false;
  const self = currentOwner();
  if (owner.pid === self.pid) return owner.start === self.start;
  const start = processStartTime(owner.pid);
  if (start === undefined) {
    // No /proc entry: fall back to signal 0 on hosts without procfs.
    if (owner.start !== '') return false;
    try {
      process.kill(owner.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  return owner.start === '' || start === owner.start;
}
