import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, rm, unlink } from 'node:fs/promises';
import type { EventAction, EventLog } from '../events/events.js';
import {
  type ConmonCreateOptions,
  conmonCreate,
  conmonCreateArgs,
  conmonSupports,
} from '../runtime/conmon.js';
import type { Layout } from '../runtime/layout.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import { isProcessAlive, readFileIfExists, sleep } from '../util/fs.js';
import { dependentsOf, joinedNetnsPath } from './netns-join.js';
import type { ContainerRecord } from './record.js';
import { takeHeldMount, takePrelaunched } from './prelaunch.js';
import type { ContainerStore } from './store.js';
import { cgroupParentOf } from '../runtime/conmon-cgroup.js';
import type { ProcessSpawner } from '../runtime/spawner.js';
import { cgroupsPathFor } from '../spec/opts/linux.js';

/**
 * Seams to the other packages: how a container's rootfs is mounted/released (storage) and its
 * network set up/torn down (network). All optional: a container from a rootfs directory with no
 * network needs none. Each MUST be idempotent: the program and the exit hook may both call them.
 */
export interface Integrations {
  /** Mounts the writable layer and returns the rootfs path (storage containers). */
  mountRootfs?(record: ContainerRecord): Promise<string>;
  /** Unmounts the writable layer; keeps it. */
  unmountRootfs?(record: ContainerRecord): Promise<void>;
  /** Deletes the writable layer (remove). */
  removeRootfs?(record: ContainerRecord): Promise<void>;
  /**
   * Creates the network namespace, attaches networks and writes the container's hosts and
   * resolv.conf (in place: they are bind-mounted); returns the netns path and what was attached.
   */
  setupNetwork?(
    record: ContainerRecord,
    hooks?: {
      /** The netns exists; `held`: published host ports to hand to conmon, then close (owned from here). */
      onNetnsReady?: (path: string, held?: HeldPorts) => void;
    },
  ): Promise<NetworkSetup>;
  teardownNetwork?(record: ContainerRecord): Promise<void>;
}

/** Bound host ports (the network package's HeldPorts): conmon inherits `fds` and keeps them. */
export interface HeldPorts {
  readonly fds: readonly number[];
  close(): void;
}

export interface NetworkSetup {
  netnsPath: string | undefined;
  status?: NonNullable<ContainerRecord['network']>['status'];
}

/** Everything a lifecycle operation needs; built by the Libpod facade and by the exit hook. */
export interface Engine {
  layout: Layout;
  store: ContainerStore;
  runtime: OciRuntime;
  conmonPath: string;
  events: EventLog;
  /** argv conmon runs when a container exits (the exit hook); undefined: the program cleans up. */
  exitCommand: ((record: ContainerRecord) => string[]) | undefined;
  integrations: Integrations;
  /** Starts conmon without forking this process; closed with the engine (see spawner.ts). */
  spawner?: ProcessSpawner;
}

export function emit(
  engine: Engine,
  record: Pick<ContainerRecord, 'id' | 'name' | 'image' | 'labels'>,
  action: EventAction,
  extra: Record<string, string> = {},
): Promise<unknown> {
  return engine.events
    .write({
      action,
      id: record.id,
      name: record.name,
      ...(record.image ? { image: record.image } : {}),
      attributes: {
        ...record.labels,
        name: record.name,
        ...(record.image ? { image: record.image } : {}),
        ...extra,
      },
    })
    .catch(() => undefined);
}

/** The exit code conmon recorded, if the container process has exited. */
export async function readExitCode(engine: Engine, id: string): Promise<number | undefined> {
  const text = await readFileIfExists(engine.layout.exitFile(id));
  if (text === undefined) return undefined;
  const n = Number.parseInt(text.trim(), 10);
  return Number.isNaN(n) ? -1 : n;
}

function uuidFor(id: string): string {
  return id.slice(0, 12);
}

/**
 * Runtime create through conmon: writes the bundle, starts conmon, waits for the container pid.
 * On failure nothing of this step is left (bundle, runtime state, exit file) and the error is
 * rethrown (classified 125/126/127). The caller holds the container lock.
 */
export async function initContainer(
  engine: Engine,
  record: ContainerRecord,
  signal?: AbortSignal,
): Promise<ContainerRecord> {
  const { layout } = engine;
  const bundle = layout.bundle(record.id);
  // A handful of syscalls on existing or absent paths: inline (the `run` hot path).
  for (const dir of [bundle, layout.exitDir, layout.socketDir, layout.persistDir(record.id)])
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const file of [
    layout.exitFile(record.id),
    `${layout.persistDir(record.id)}/exit`,
    `${layout.persistDir(record.id)}/oom`,
  ])
    rmSync(file, { force: true });
  let rootfs = record.rootfs;
  let netnsPath = record.network?.netnsPath;
  let netStatus: NetworkSetup['status'];
  let networkSetup: Promise<NetworkSetup> | undefined;
  let held: HeldPorts | undefined;
  const spec = (await engine.store.readSpec(record.id)) as {
    root?: { path: string };
    linux?: { namespaces?: { type: string; path?: string }[] };
  };
  try {
    // run()'s create may have kept the rootfs mounted for us (its reference becomes ours).
    if (record.rootfsSource === 'storage' && engine.integrations.mountRootfs && !takeHeldMount(record.id)) {
      rootfs = await engine.integrations.mountRootfs(record);
    }
    if (record.network && record.network.mode === 'bridge' && engine.integrations.setupNetwork) {
      // The runtime creates the container in the netns while the CNI plugins attach it (the
      // process runs nothing of the user's before start, which waits for both): saves the
      // conmon + runtime create time from the critical path.
      let ready: (path: string | undefined) => void = () => {};
      const netnsReady = new Promise<string | undefined>((r) => {
        ready = r;
      });
      networkSetup = engine.integrations.setupNetwork(record, {
        onNetnsReady: (p, h) => {
          held = h;
          ready(p);
        },
      });
      networkSetup.then(
        (n) => ready(n.netnsPath),
        () => ready(undefined),
      );
      netnsPath = (await netnsReady) ?? (await networkSetup).netnsPath;
      const ns = spec.linux?.namespaces?.find((n) => n.type === 'network');
      if (ns && netnsPath) ns.path = netnsPath;
    }
    // network container:<id> (ns:<path> has its path in the spec since create).
    const joined = await joinedNetnsPath(engine, record);
    const joinedNs = joined && spec.linux?.namespaces?.find((n) => n.type === 'network');
    if (joinedNs) joinedNs.path = joined;
    spec.root = { ...(spec.root ?? {}), path: rootfs };
    writeFileSync(`${bundle}/config.json`, JSON.stringify(spec), { mode: 0o600 });
    const conmonOptions = {
      ...(await conmonOptionsFor(engine, record, signal)),
      ...(held?.fds.length ? { extraFds: held.fds } : {}),
    };
    // run() may have started this conmon already (held on its start pipe): used when it was
    // started with exactly these arguments, else replaced.
    const pre = takePrelaunched(record.id);
    const usePre =
      pre !== undefined && !held?.fds.length && sameArgs(pre.args, conmonCreateArgs(conmonOptions));
    if (pre && !usePre) await pre.cancel();
    const creating = usePre ? pre.go() : conmonCreate(conmonOptions);
    // conmon was spawned with its copies (synchronously, above); ours go.
    held?.close();
    const [created, attached] = await Promise.allSettled([creating, networkSetup]);
    if (attached.status === 'rejected') throw attached.reason;
    if (created.status === 'rejected') throw created.reason;
    const started = created.value;
    netStatus = attached.value?.status;
    const conmonPid =
      Number.parseInt((await readFileIfExists(`${bundle}/conmon.pid`))?.trim() ?? '0', 10) || 0;
    return {
      ...record,
      rootfs: record.rootfsSource === 'storage' ? rootfs : record.rootfs,
      network: record.network
        ? { ...record.network, ...(netnsPath ? { netnsPath } : {}), status: netStatus }
        : record.network,
      state: {
        ...record.state,
        status: 'created',
        pid: started.pid,
        conmonPid,
        exitCode: 0,
        oomKilled: false,
        error: undefined,
        finishedAt: undefined,
      },
    };
  } catch (err) {
    // A setup still running must finish before its teardown (it would recreate what we remove).
    await networkSetup?.catch(() => {});
    (held as HeldPorts | undefined)?.close();
    await engine.runtime.delete(record.id, true).catch(() => {});
    await rm(bundle, { recursive: true, force: true });
    await unlink(layout.exitFile(record.id)).catch(() => {});
    await releaseResources(engine, {
      ...record,
      network: record.network && { ...record.network, netnsPath },
    });
    throw err;
  }
}

/** conmon's options for a container (also what run() prelaunches it with). */
export async function conmonOptionsFor(
  engine: Engine,
  record: ContainerRecord,
  signal?: AbortSignal,
): Promise<ConmonCreateOptions> {
  const { layout } = engine;
  const bundle = layout.bundle(record.id);
  return {
    conmonPath: engine.conmonPath,
    runtime: engine.runtime,
    // run()'s prelaunch has no record yet: the default parent every container gets at create.
    cgroupParent: cgroupParentOf(record.cgroupsPath ?? cgroupsPathFor(record.id)),
    containerId: record.id,
    uuid: uuidFor(record.id),
    name: record.name,
    bundle,
    pidFile: `${bundle}/pidfile`,
    exitDir: layout.exitDir,
    socketDir: layout.socketDir,
    persistDir: layout.persistDir(record.id),
    conmonPidFile: `${bundle}/conmon.pid`,
    logDriver: `k8s-file:${record.logPath}`,
    terminal: record.tty,
    stdin: record.stdin,
    exitCommand: exitCommandFor(engine, record),
    // The log of an `rm` container goes with it: conmon's fsync at exit protects nothing.
    noSyncLog: record.autoRemove && (await conmonSupports(engine.conmonPath, '--no-sync-log')),
    ...(engine.spawner ? { spawner: engine.spawner } : {}),
    ...(signal ? { signal } : {}),
  };
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * While a `run()` waits for this container in a live process, that process cleans up; the hook
 * is skipped through a shell check (sh starts in ~1 ms, Node in ~50 ms of CPU that would compete
 * with the next container). If the waiter dies first, the next reader of the record cleans up.
 */
function exitCommandFor(engine: Engine, record: ContainerRecord): string[] | undefined {
  const cmd = engine.exitCommand?.(record);
  const waiter = record.state.waiterPid;
  if (!cmd || !waiter) return cmd;
  return [
    '/bin/sh',
    '-c',
    'kill -0 "$1" 2>/dev/null && exit 0; shift; exec "$@"',
    'libpod-ts-exit',
    String(waiter),
    ...cmd,
  ];
}

/** Unmounts the rootfs and tears down networking; every step tolerates "already done". */
async function releaseResources(engine: Engine, record: ContainerRecord): Promise<void> {
  if (record.network?.netnsPath && engine.integrations.teardownNetwork) {
    await engine.integrations.teardownNetwork(record).catch(() => {});
  }
  if (record.rootfsSource === 'storage' && engine.integrations.unmountRootfs) {
    await engine.integrations.unmountRootfs(record).catch(() => {});
  }
}

async function waitConmonExit(engine: Engine, id: string, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid) && Date.now() < deadline) {
    if ((await readExitCode(engine, id)) !== undefined) return;
    // A zombie conmon (our own child) counts as gone.
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(st)) return;
    await sleep(5);
  }
}

export type ExitOutcome = 'not-exited' | 'recorded' | 'already' | 'removed' | 'restarted';

/**
 * Records the exit of a container whose process has exited (conmon's exit file exists): exit
 * code, OOM flag, finish time; deletes the runtime state and the bundle, releases mount and
 * network, writes `died`; then applies `rm` or the restart policy. Idempotent and safe to run
 * concurrently from the program and the exit hook: the state transition happens under the
 * container lock, and only the process that makes it writes the events.
 */
export async function handleExit(
  engine: Engine,
  id: string,
  opts: { applyPolicies: boolean },
): Promise<ExitOutcome> {
  const exitCode = await readExitCode(engine, id);
  if (exitCode === undefined) return 'not-exited';
  let transitioned: ContainerRecord | undefined;
  let outcome: ExitOutcome = 'already';
  await engine.store
    .update(id, async (r) => {
      if (
        r.state.status !== 'running' &&
        r.state.status !== 'paused' &&
        r.state.status !== 'created' &&
        r.state.status !== 'stopped'
      ) {
        return undefined;
      }
      // Read again under the lock: a restart (its init removes the exit file) or a remove may
      // have got here first while we waited; transitioning now would tear down the new run.
      const exitStat = statSync(engine.layout.exitFile(id), { throwIfNoEntry: false });
      if (!exitStat) return undefined;
      // This is on the hot path of `run`: small fs calls inline, the rest in parallel. The
      // process is gone (conmon wrote the exit file): the runtime state goes without a kill.
      const oom = existsSync(`${engine.layout.persistDir(id)}/oom`);
      const finishedAt = (exitStat?.mtime ?? new Date()).toISOString();
      await Promise.all([engine.runtime.deleteStopped(id).catch(() => {}), releaseResources(engine, r)]);
      rmSync(engine.layout.bundle(id), { recursive: true, force: true });
      transitioned = {
        ...r,
        ...(r.network ? { network: { ...r.network, status: undefined } } : {}),
        state: {
          ...r.state,
          status: 'exited',
          exitCode,
          oomKilled: oom,
          finishedAt,
          pid: 0,
          execSessions: {},
        },
      };
      return transitioned;
    })
    .catch(() => undefined);
  if (!transitioned) return outcome;
  outcome = 'recorded';
  await emit(engine, transitioned, 'died', { exitCode: String(exitCode) });
  if (!opts.applyPolicies) return outcome;
  if (transitioned.autoRemove) {
    if (isProcessAlive(transitioned.state.waiterPid)) return outcome;
    // A target others joined stays (exited), as podman's cleanup of an --rm target fails then.
    if ((await dependentsOf(engine, id)).length) return outcome;
    await removeContainer(engine, transitioned.id, { force: true, keepExitFile: true });
    return 'removed';
  }
  if (shouldRestart(transitioned)) {
    try {
      await engine.store.update(id, async (r) => {
        if (r.state.status !== 'exited') return undefined;
        const inited = await initContainer(engine, {
          ...r,
          state: { ...r.state, restartCount: r.state.restartCount + 1 },
        });
        await engine.runtime.start(id);
        return {
          ...inited,
          state: { ...inited.state, status: 'running', startedAt: new Date().toISOString() },
        };
      });
      await emit(engine, transitioned, 'restart');
      await emit(engine, transitioned, 'start');
      return 'restarted';
    } catch (err) {
      await engine.store.update(id, (r) => ({ ...r, state: { ...r.state, error: (err as Error).message } }));
    }
  }
  return outcome;
}

/** Restart policies as Podman applies them after an exit the user did not ask for. */
export function shouldRestart(r: ContainerRecord): boolean {
  const p = r.restartPolicy;
  if (r.state.stoppedByUser) return false;
  switch (p.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return r.state.exitCode !== 0 && (p.maxRetries === 0 || r.state.restartCount < p.maxRetries);
    default:
      return false;
  }
}

/**
 * Removes a container: kills it if `force`, deletes runtime state, bundle, log, record and (for
 * storage containers) its writable layer; writes `remove`. Missing pieces are not errors.
 */
export async function removeContainer(
  engine: Engine,
  id: string,
  opts: { force: boolean; keepExitFile?: boolean },
): Promise<ContainerRecord | undefined> {
  let previous: ContainerRecord['state']['status'] | undefined;
  const removed = await engine.store.update(id, async (r) => {
    // A forced remove also finishes one that a crashed process left half-done (every step is idempotent).
    if (r.state.status === 'removing' && !opts.force) return undefined;
    previous = r.state.status === 'removing' ? 'exited' : r.state.status;
    return { ...r, state: { ...r.state, status: 'removing' } };
  });
  if (!removed || previous === undefined) return undefined;
  // A `configured` record may still own a runtime container and conmon when the process that was
  // initialising it died: a forced remove treats it as active so nothing is left behind.
  const wasActive = previous !== 'exited' && (previous !== 'configured' || opts.force);
  if (wasActive) {
    if (opts.force) await engine.runtime.kill(id, 'KILL', true).catch(() => {});
    await engine.runtime.delete(id, true).catch(() => {});
    // conmon must see the exit before the bundle goes; it exits once its exit command ran.
    if (removed.state.conmonPid) await waitConmonExit(engine, id, removed.state.conmonPid, 5000);
  }
  if (wasActive) await releaseResources(engine, removed);
  if (removed.rootfsSource === 'storage' && engine.integrations.removeRootfs) {
    await engine.integrations.removeRootfs(removed).catch(() => {});
  }
  // Small files and links, inline.
  rmSync(engine.layout.bundle(id), { recursive: true, force: true });
  if (!opts.keepExitFile) rmSync(engine.layout.exitFile(id), { force: true });
  try {
    rmSync(`${engine.layout.socketDir}/${uuidFor(id)}`, { force: true });
  } catch {}
  await engine.store.delete(id);
  await emit(engine, removed, 'remove');
  return removed;
}
