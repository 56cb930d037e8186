import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { OciRuntimeError } from '../errors.js';
import { execFile } from '../util/exec.js';
import { isProcessAlive } from '../util/fs.js';
import { conmonCommand } from './conmon-cgroup.js';
import { classifyRuntimeError, type OciRuntime } from './oci-runtime.js';
import { killGroup, type ProcessSpawner, type SpawnedProcess } from './spawner.js';

/** Options shared by a container's conmon and an exec session's conmon. */
export interface ConmonCommonOptions {
  conmonPath: string;
  runtime: OciRuntime;
  containerId: string;
  /** conmon's `-u`: names the attach socket symlink; keep it short (sockaddr_un is 108 bytes). */
  uuid: string;
  name: string;
  bundle: string;
  pidFile: string;
  exitDir: string;
  socketDir: string;
  /** `k8s-file:<path>`, `none`, `journald`... passed to `-l`. */
  logDriver: string;
  logSizeMax?: number;
  terminal: boolean;
  stdin: boolean;
  logLevel?: 'debug' | 'info' | 'warning' | 'error';
  signal?: AbortSignal;
  /**
   * cgroupfs parent of the container (`/libpod_parent`): conmon moves to `<parent>/conmon`
   * before it starts anything (see conmon-cgroup.ts). Unset: conmon stays in our cgroups.
   */
  cgroupParent?: string;
}

export interface ConmonCreateOptions extends ConmonCommonOptions {
  persistDir: string;
  conmonPidFile: string;
  /** argv of the program conmon runs after the container exits (first element is the executable). */
  exitCommand?: readonly string[];
  /**
   * `--no-sync-log`: no fsync of the log when the container exits (1-15 ms on this host's ext4,
   * on the exit path). For `rm` containers, whose log is deleted right after. Only passed when
   * this conmon knows the flag (see conmonSupports).
   */
  noSyncLog?: boolean;
  /**
   * Descriptors of this process conmon inherits (as fds 5, 6, ...) and keeps open for its life:
   * the container's published host ports, held like podman does. Not passed to the runtime.
   */
  extraFds?: readonly number[];
  /** Starts conmon without forking this process (spawner.ts); not used with extraFds. */
  spawner?: ProcessSpawner;
}

export interface ConmonExecOptions extends ConmonCommonOptions {
  processSpecPath: string;
  conmonPidFile?: string;
}

export interface ConmonStarted {
  /** Host pid of the container's (or exec session's) process. */
  pid: number;
  /** Resolves with the exit status for exec sessions (conmon writes it on the sync pipe). */
  execExit?: Promise<number>;
  /** Stops the pending exit status from keeping the event loop alive (detached exec). */
  detachSync?: () => void;
}

function commonArgs(o: ConmonCommonOptions): string[] {
  const args = [
    '--api-version',
    '1',
    '-c',
    o.containerId,
    '-u',
    o.uuid,
    '-r',
    o.runtime.path,
    '-b',
    o.bundle,
    '-p',
    o.pidFile,
    '-n',
    o.name,
    '--exit-dir',
    o.exitDir,
    '--socket-dir-path',
    o.socketDir,
    '-l',
    o.logDriver,
    '--log-level',
    o.logLevel ?? 'error',
    '--full-attach',
  ];
  if (o.logSizeMax !== undefined && o.logSizeMax > 0) args.push('--log-size-max', String(o.logSizeMax));
  for (const a of o.runtime.globalArgs) args.push('--runtime-arg', a);
  if (o.terminal) args.push('-t');
  if (o.stdin) args.push('-i');
  return args;
}

/** Argument list for a container's conmon, as podman builds it. Exported for tests and docs. */
export function conmonCreateArgs(o: ConmonCreateOptions): string[] {
  const args = [...commonArgs(o), '--persist-dir', o.persistDir, '--conmon-pidfile', o.conmonPidFile];
  if (o.noSyncLog) args.push('--no-sync-log');
  if (o.exitCommand && o.exitCommand.length > 0) {
    args.push('--exit-command', o.exitCommand[0]!);
    for (const a of o.exitCommand.slice(1)) args.push('--exit-command-arg', a);
  }
  return args;
}

export function conmonExecArgs(o: ConmonExecOptions): string[] {
  const args = [...commonArgs(o), '-e', '--exec-process-spec', o.processSpecPath];
  if (o.conmonPidFile) args.push('--conmon-pidfile', o.conmonPidFile);
  return args;
}

const helpTexts = new Map<string, Promise<string>>();

/**
 * Whether this conmon accepts an option (`--no-sync-log` came with conmon 2.1.x): its `--help`
 * is read once per path and process.
 */
export async function conmonSupports(conmonPath: string, option: string): Promise<boolean> {
  let help = helpTexts.get(conmonPath);
  if (!help) {
    help = execFile(conmonPath, ['--help']).then(
      (r) => `${r.stdout}\n${r.stderr}`,
      () => '',
    );
    helpTexts.set(conmonPath, help);
  }
  return (await help).split(/[\s,=]+/).includes(option);
}

interface SyncMessage {
  data: number;
  message?: string;
}

/** Reads newline-separated JSON messages that conmon writes on the sync pipe. */
function syncReader(stream: Readable): () => Promise<SyncMessage | undefined> {
  let buf = '';
  const queue: (SyncMessage | undefined)[] = [];
  const waiters: ((m: SyncMessage | undefined) => void)[] = [];
  let ended = false;
  const push = (m: SyncMessage | undefined) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      try {
        push(JSON.parse(line) as SyncMessage);
      } catch {
        push({ data: -1, message: `conmon wrote an unreadable sync message: ${line}` });
      }
    }
  });
  const end = () => {
    if (ended) return;
    ended = true;
    push(undefined);
    while (waiters.length > 0) waiters.shift()!(undefined);
  };
  stream.on('end', end);
  stream.on('close', end);
  stream.on('error', end);
  return () => {
    if (queue.length > 0) return Promise.resolve(queue.shift());
    if (ended) return Promise.resolve(undefined);
    return new Promise((r) => waiters.push(r));
  };
}

/**
 * Starts conmon, which double-forks, runs `<runtime> create` (or `exec`) and reports the pid on
 * the sync pipe (fd 3, `_OCI_SYNCPIPE`). The start pipe (fd 4, `_OCI_STARTPIPE`) releases conmon
 * once we are ready (podman moves conmon into a cgroup at that point; we have nothing to do).
 * On failure the runtime's message is classified into 125/126/127 errors.
 */
async function launch(args: string[], o: ConmonCommonOptions, keepForExit: boolean): Promise<ConmonStarted> {
  return spawnConmon(args, o, keepForExit).go();
}

/**
 * A conmon started but held on its start pipe: it has loaded, parsed its options and opened the
 * log file, and runs nothing until `go()` (podman's pause to move conmon into a cgroup). Starting
 * it early takes its process start (~4 ms) off the `run` path. `cancel()` kills it (safe: before
 * the start pipe it has forked nothing).
 */
export interface PendingConmon {
  readonly args: readonly string[];
  go(): Promise<ConmonStarted>;
  /** Kills the held conmon; resolves once it is gone (no-op after `go()`). */
  cancel(): Promise<void>;
}

function spawnConmon(args: string[], o: ConmonCommonOptions, keepForExit: boolean): PendingConmon {
  // In its cgroup from the start (conmon-cgroup.ts).
  const cmd = conmonCommand(o.cgroupParent, o.conmonPath, args);
  const child = spawn(cmd.file, cmd.args, {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', ...((o as ConmonCreateOptions).extraFds ?? [])],
    env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' },
    signal: o.signal,
    detached: true,
  });
  const stderr: Buffer[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const sync = child.stdio[3] as Readable;
  const start = child.stdio[4] as Writable;
  const next = syncReader(sync);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => {});
  start.on('error', () => {});
  const cleanup = () => {
    sync.destroy();
    child.stderr!.destroy();
    child.unref();
  };
  let used = false;
  return {
    args,
    go: () => {
      if (used) return Promise.reject(new Error('conmon already started or cancelled'));
      used = true;
      start.end('0');
      return finishLaunch(child, o, next, spawnError, stderr, sync, cleanup, keepForExit);
    },
    cancel: () => {
      if (used) return Promise.resolve();
      used = true;
      const gone = new Promise<void>((r) =>
        child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
      );
      child.kill('SIGKILL');
      start.destroy();
      cleanup();
      // A spawn that failed ('error') has no 'exit' to wait for.
      return Promise.race([gone, spawnError.catch(() => {})]);
    },
  };
}

async function finishLaunch(
  child: ChildProcess,
  o: ConmonCommonOptions,
  next: () => Promise<SyncMessage | undefined>,
  spawnError: Promise<never>,
  stderr: Buffer[],
  sync: Readable,
  cleanup: () => void,
  keepForExit: boolean,
): Promise<ConmonStarted> {
  let msg: SyncMessage | undefined;
  try {
    msg = await Promise.race([next(), spawnError]);
  } catch (err) {
    cleanup();
    throw new OciRuntimeError(`conmon for ${o.containerId} failed to start: ${(err as Error).message}`, {
      containerId: o.containerId,
      cause: err,
    });
  }
  if (!msg || msg.data < 0) {
    // Wait for conmon's parent to exit so its stderr is complete.
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    cleanup();
    const text =
      msg?.message ?? (Buffer.concat(stderr).toString('utf8').trim() || 'conmon exited without a pid');
    throw classifyRuntimeError(text, o.containerId);
  }
  const pid = msg.data;
  if (!keepForExit) {
    cleanup();
    return { pid };
  }
  child.stderr!.destroy();
  child.unref();
  const execExit = next().then((m) => {
    sync.destroy();
    if (!m) throw new OciRuntimeError(`conmon for exec in ${o.containerId} closed without an exit status`);
    return m.data;
  });
  execExit.catch(() => {});
  return { pid, execExit, detachSync: () => (sync as Socket).unref() };
}

export function conmonCreate(o: ConmonCreateOptions): Promise<ConmonStarted> {
  return createPending(o).go();
}

function createPending(o: ConmonCreateOptions): PendingConmon {
  const args = conmonCreateArgs(o);
  return o.spawner?.usable && !o.extraFds?.length
    ? spawnConmonVia(o.spawner, args, o)
    : spawnConmon(args, o, false);
}

/**
 * spawnConmon through the resident spawner: conmon's stderr, sync pipe and start pipe are Unix
 * stream sockets to us (it reads and writes them as pipes). Falls back to a direct spawn when
 * the spawner turns out unusable.
 */
function spawnConmonVia(spawner: ProcessSpawner, args: string[], o: ConmonCommonOptions): PendingConmon {
  const cmd = conmonCommand(o.cgroupParent, o.conmonPath, args);
  const started = spawner.spawn([cmd.file, ...cmd.args], {
    ...process.env,
    _OCI_SYNCPIPE: '3',
    _OCI_STARTPIPE: '4',
  });
  started.catch(() => {});
  const release = (p: SpawnedProcess) => {
    for (const s of [p.fd3, p.fd4, p.stderr]) s.destroy();
  };
  let used = false;
  return {
    args,
    go: async () => {
      if (used) throw new Error('conmon already started or cancelled');
      used = true;
      let p: SpawnedProcess | undefined;
      try {
        p = await started;
      } catch (err) {
        throw new OciRuntimeError(`conmon for ${o.containerId} failed to start: ${(err as Error).message}`, {
          containerId: o.containerId,
          cause: err,
        });
      }
      if (!p) return spawnConmon(args, o, false).go();
      const stderr: Buffer[] = [];
      const stderrEnded = new Promise<void>((r) => {
        p.stderr.on('data', (d: Buffer) => stderr.push(d));
        p.stderr.once('close', () => r());
      });
      p.stderr.resume();
      const next = syncReader(p.fd3);
      p.fd3.resume();
      p.fd4.on('error', () => {});
      const onAbort = () => killGroup(p.pid);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      let msg: SyncMessage | undefined;
      try {
        p.fd4.end('0');
        msg = await next();
      } finally {
        o.signal?.removeEventListener('abort', onAbort);
      }
      if (!msg || msg.data < 0) {
        // conmon's stderr is complete once it closed it (bounded: its monitor may hold it).
        await Promise.race([stderrEnded, sleep(2000, undefined, { ref: false })]);
        release(p);
        const text =
          msg?.message ?? (Buffer.concat(stderr).toString('utf8').trim() || 'conmon exited without a pid');
        throw classifyRuntimeError(text, o.containerId);
      }
      release(p);
      return { pid: msg.data };
    },
    cancel: async () => {
      if (used) return;
      used = true;
      const p = await started.catch(() => undefined);
      if (!p) return;
      killGroup(p.pid);
      release(p);
      // Gone once its pid is (the spawner reaps it).
      for (let i = 0; i < 200 && isProcessAlive(p.pid); i++) await sleep(5);
    },
  };
}

/**
 * A container's conmon, started and held before its start pipe (see PendingConmon). Through the
 * spawner when it is given (no fork of this process); otherwise spawned on this thread: from a
 * worker thread the fork still stalls this one (it write-locks the address space being copied)
 * and the gain measured ~1 ms; see docs/decisions/lifecycle.md.
 */
export function conmonCreatePending(o: ConmonCreateOptions): PendingConmon {
  return createPending(o);
}

export function conmonExec(o: ConmonExecOptions): Promise<ConmonStarted> {
  return launch(conmonExecArgs(o), o, true);
}

/** The first promise to resolve with a message; undefined only when all ended without one. */
function firstDefined(ps: Promise<SyncMessage | undefined>[]): Promise<SyncMessage | undefined> {
  return new Promise((resolve) => {
    let left = ps.length;
    for (const p of ps)
      p.then((m) => {
        if (m) resolve(m);
        else if (--left === 0) resolve(undefined);
      });
  });
}

/**
 * An exec session whose stdio goes through the attach socket (`--exec-attach`), as podman's
 * interactive exec: conmon sets up `<bundle>/attach` and says so on the attach pipe (fd 5,
 * `_OCI_ATTACHPIPE`); `onAttachReady` connects to it; only then the second write on the start
 * pipe lets conmon run `<runtime> exec`, so no output is lost. The pid comes on the sync pipe,
 * the exit status on the attach or sync pipe (conmon versions differ), whichever comes first.
 */
export async function conmonExecAttached(
  o: ConmonExecOptions,
  onAttachReady: () => Promise<void>,
): Promise<ConmonStarted & { execExit: Promise<number> }> {
  const args = [...conmonExecArgs(o), '--exec-attach'];
  const cmd = conmonCommand(o.cgroupParent, o.conmonPath, args);
  const child = spawn(cmd.file, cmd.args, {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', _OCI_ATTACHPIPE: '5' },
    signal: o.signal,
    detached: true,
  });
  const stderr: Buffer[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const sync = child.stdio[3] as Readable;
  const start = child.stdio[4] as Writable;
  const attachPipe = (child.stdio as unknown as Readable[])[5]!;
  const nextSync = syncReader(sync);
  const nextAttach = syncReader(attachPipe);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => {});
  start.on('error', () => {});
  const fail = async (msg: SyncMessage | undefined): Promise<never> => {
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    sync.destroy();
    attachPipe.destroy();
    child.stderr!.destroy();
    child.unref();
    const text =
      msg?.message ?? (Buffer.concat(stderr).toString('utf8').trim() || 'conmon exited without a pid');
    throw classifyRuntimeError(text, o.containerId);
  };
  start.write('0');
  // Before attach: a failure shows as a negative message or EOF on either pipe.
  const syncFirst = nextSync();
  const ready = await Promise.race([
    nextAttach(),
    syncFirst.then((m) => ({ fromSync: m })),
    spawnError,
  ]).catch((err: Error) => {
    throw new OciRuntimeError(`conmon for ${o.containerId} failed to start: ${err.message}`, {
      containerId: o.containerId,
      cause: err,
    });
  });
  if (!ready || 'fromSync' in ready || ready.data < 0)
    return fail(ready && 'fromSync' in ready ? ready.fromSync : ready);
  try {
    await onAttachReady();
  } catch (err) {
    start.destroy();
    await fail(undefined).catch(() => {});
    throw err;
  }
  start.end('0');
  const pidMsg = await Promise.race([syncFirst, spawnError]);
  if (!pidMsg || pidMsg.data < 0) return fail(pidMsg);
  child.stderr!.destroy();
  child.unref();
  const execExit = firstDefined([nextAttach(), nextSync()]).then((m) => {
    sync.destroy();
    attachPipe.destroy();
    if (!m) throw new OciRuntimeError(`conmon for exec in ${o.containerId} closed without an exit status`);
    return m.data;
  });
  execExit.catch(() => {});
  return {
    pid: pidMsg.data,
    execExit,
    detachSync: () => {
      (sync as Socket).unref();
      (attachPipe as Socket).unref();
    },
  };
}
