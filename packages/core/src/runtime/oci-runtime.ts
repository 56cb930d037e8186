import { closeSync, constants, openSync, readFileSync, readSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { basename, join } from 'node:path';
import { CommandNotExecutableError, CommandNotFoundError, OciRuntimeError } from '../errors.js';
import { execFile } from '../util/exec.js';
import { findBinary } from './binaries.js';

/** Status as the OCI runtime reports it (runtime-spec `state`). */
export type RuntimeStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  id: string;
  status: RuntimeStatus;
  pid: number;
  bundle: string;
}

/**
 * Maps an OCI runtime error message to Podman's exit-code classes: the command is missing (127),
 * not executable (126), anything else is an engine error (125).
 */
export function classifyRuntimeError(
  message: string,
  containerId?: string,
  cause?: unknown,
): OciRuntimeError {
  const text = message.trim() || 'OCI runtime failed';
  if (/executable file not found|no such file or directory/i.test(text)) {
    return new CommandNotFoundError(text, { containerId, cause });
  }
  if (/permission denied|exec format error|is a directory/i.test(text)) {
    return new CommandNotExecutableError(text, { containerId, cause });
  }
  return new OciRuntimeError(text, { containerId, cause });
}

/** Extracts runc's/crun's error text from their stderr (logrus text or plain lines). */
function runtimeMessage(stderr: string): string {
  const msgs = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\"/g, '"'));
  return msgs.length > 0 ? msgs.join('; ') : stderr.trim();
}

/**
 * One OCI runtime binary (runc, crun, or any compliant runtime by path) with its own state root.
 * Every call is a short process; the runtime keeps no daemon.
 */
export class OciRuntime {
  readonly path: string;
  readonly name: string;

  constructor(
    pathOrName: string,
    readonly stateRoot: string,
  ) {
    this.path = findBinary(pathOrName);
    this.name = basename(this.path);
  }

  /** Global arguments for every invocation, also handed to conmon as `--runtime-arg`. */
  get globalArgs(): string[] {
    return ['--root', this.stateRoot];
  }

  private async run(args: string[], id: string | undefined, signal?: AbortSignal): Promise<string> {
    const res = await execFile(this.path, [...this.globalArgs, ...args], { signal });
    if (res.exitCode !== 0) {
      throw classifyRuntimeError(`${this.name} ${args[0]}: ${runtimeMessage(res.stderr)}`, id);
    }
    return res.stdout;
  }

  /** The runtime's view of the container, or undefined when the runtime does not know it. */
  async state(id: string): Promise<RuntimeState | undefined> {
    const res = await execFile(this.path, [...this.globalArgs, 'state', id]);
    if (res.exitCode !== 0) {
      if (/does not exist|not found|no such/i.test(res.stderr)) return undefined;
      throw classifyRuntimeError(`${this.name} state: ${runtimeMessage(res.stderr)}`, id);
    }
    const s = JSON.parse(res.stdout) as { id: string; status: RuntimeStatus; pid: number; bundle: string };
    return { id: s.id, status: s.status, pid: s.pid, bundle: s.bundle };
  }

  /**
   * Starts a created container. For runc this is done in-process the way `runc start` does it:
   * runc's init waits to open `<state>/exec.fifo` for writing; a reader lets it write one byte and
   * exec the user process, and the fifo is removed (its absence is what makes the state
   * "running"). Saves a runtime process (~10 ms) on the `run` hot path; any deviation (no fifo,
   * init gone, no byte in time) falls back to `<runtime> start`, which reports the error.
   */
  async start(id: string): Promise<void> {
    if (this.name === 'runc' && SAFE_ID.test(id)) {
      const done = await startRuncInProcess(join(this.stateRoot, id), this.states).catch(() => false);
      if (done) return;
    }
    await this.run(['start', id], id);
  }

  /** runc's parsed state.json by state dir, so start and delete parse its ~50 KB once. */
  private readonly states = new StateCache();

  /** Sends a signal (name without SIG or number) to the init process, or to all with `all`. */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    await this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)], id);
  }

  async pause(id: string): Promise<void> {
    await this.run(['pause', id], id);
  }

  async resume(id: string): Promise<void> {
    await this.run(['resume', id], id);
  }

  /** Deletes the runtime state; `force` kills a running container first. Missing state is not an error. */
  async delete(id: string, force = false): Promise<void> {
    const res = await execFile(this.path, [...this.globalArgs, 'delete', ...(force ? ['--force'] : []), id]);
    if (res.exitCode !== 0 && !/does not exist|not found|no such/i.test(res.stderr)) {
      throw classifyRuntimeError(`${this.name} delete: ${runtimeMessage(res.stderr)}`, id);
    }
  }

  /**
   * Deletes the state of a container whose init process has exited, without a runtime process
   * when the layout is runc's: its `state.json` names the cgroup directories, which are removed,
   * then the state directory. Saves a runtime start (~10 ms) on every exit. Anything unexpected
   * (another runtime, a live init, poststop hooks to run, a cgroup still busy) falls back to
   * `delete`, which does the same plus what we skip.
   */
  async deleteStopped(id: string): Promise<void> {
    if (this.name === 'runc' && SAFE_ID.test(id)) {
      const dir = join(this.stateRoot, id);
      const done = await deleteRuncStateInProcess(dir, this.states).catch(() => false);
      this.states.forget(dir);
      if (done) return;
    }
    await this.delete(id, false).catch(() => this.delete(id, true));
  }

  /** Host pids of every process in the container (`runc ps --format json`). */
  async pids(id: string): Promise<number[]> {
    const out = await this.run(['ps', '--format', 'json', id], id);
    return (JSON.parse(out || '[]') as number[] | null) ?? [];
  }
}

const SAFE_ID = /^[0-9A-Za-z][0-9A-Za-z_.-]*$/;

interface RuncState {
  init_process_pid?: number;
  init_process_start?: number;
  cgroup_paths?: Record<string, string>;
  config?: { Hooks?: Record<string, unknown[] | null>; hooks?: Record<string, unknown[] | null> };
}

/** Field 22 of /proc/<pid>/stat: the start time, which tells a reused pid from the original. */
async function processStartTime(pid: number): Promise<number | undefined> {
  let stat: string;
  try {
    // Inline: a procfs read is cheaper than a thread-pool round trip (start and exit hot path).
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]);
}

/**
 * runc's state.json (tens of KB with the seccomp profile), read inline and parsed once per
 * version (mtime, size, inode): `runc create` writes it, our in-process start does not change it.
 */
class StateCache {
  private readonly entries = new Map<string, { key: string; state: RuncState }>();

  read(dir: string): RuncState | undefined {
    const file = join(dir, 'state.json');
    let key: string;
    try {
      const st = statSync(file);
      key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      this.entries.delete(dir);
      return undefined;
    }
    const hit = this.entries.get(dir);
    if (hit && hit.key === key) return hit.state;
    let state: RuncState;
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as RuncState;
    } catch {
      return undefined;
    }
    // Bounded: entries go at delete; a process that never deletes keeps at most a few hundred.
    if (this.entries.size > 256) this.entries.clear();
    this.entries.set(dir, { key, state });
    return state;
  }

  forget(dir: string): void {
    this.entries.delete(dir);
  }
}

/** true when runc's state for a stopped container was removed; false: let runc do it. */
async function deleteRuncStateInProcess(dir: string, states: StateCache): Promise<boolean> {
  const st = states.read(dir);
  if (st === undefined) return false;
  const hooks = st.config?.Hooks ?? st.config?.hooks ?? {};
  if (Object.values(hooks).some((h) => Array.isArray(h) && h.length > 0)) return false;
  if (!st.init_process_pid) return false;
  const start = await processStartTime(st.init_process_pid);
  if (start !== undefined && start === st.init_process_start) return false;
  const paths = [...new Set(Object.values(st.cgroup_paths ?? {}))];
  if (paths.some((p) => !p.startsWith('/sys/fs/cgroup/') || p.includes('/../'))) return false;
  // Inline: ~10 empty cgroup directories take ~0.2 ms, half the cost of thread-pool round trips.
  for (const p of paths) {
    try {
      rmdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
  }
  // state.json (and a fifo if start never ran): a few inline calls.
  rmSync(dir, { recursive: true, force: true });
  return true;
}

async function initAlive(st: RuncState): Promise<boolean> {
  if (!st.init_process_pid) return false;
  const start = await processStartTime(st.init_process_pid);
  return start !== undefined && start === st.init_process_start;
}

/** true when runc's init was released through its exec fifo; false: let `runc start` do it. */
async function startRuncInProcess(dir: string, states: StateCache): Promise<boolean> {
  const st = states.read(dir);
  if (st === undefined) return false;
  if (!(await initAlive(st))) return false;
  const fifo = join(dir, 'exec.fifo');
  let fd: number;
  try {
    // O_RDWR never blocks on a fifo (we are a reader at once); O_NONBLOCK keeps reads off the
    // thread pool: init's byte is awaited through the event loop (epoll), not a parked thread.
    fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  let got = false;
  try {
    got = readFifoByte(fd);
  } catch {
    closeSync(fd);
    return false;
  }
  if (!got) {
    // The socket owns the fd from here (destroy closes it).
    got = await waitFifoByte(fd, st);
  } else {
    closeSync(fd);
  }
  if (!got) return false;
  try {
    rmSync(fifo, { force: true });
  } catch {}
  return true;
}

/** One non-blocking read: true when init's byte was there, false on EAGAIN; throws otherwise. */
function readFifoByte(fd: number): boolean {
  try {
    return readSync(fd, Buffer.alloc(16), 0, 16, null) > 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
    throw err;
  }
}

/**
 * Waits (up to 5 s) for init's byte on the fifo through a libuv pipe handle; every 100 ms checks
 * that init is still the process runc started. Closes `fd`.
 */
function waitFifoByte(fd: number, st: RuncState): Promise<boolean> {
  return new Promise((resolve) => {
    let sock: Socket;
    try {
      sock = new Socket({ fd, readable: true, writable: false });
    } catch {
      closeSync(fd);
      resolve(false);
      return;
    }
    const started = Date.now();
    let finished = false;
    const finish = (ok: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setInterval(() => {
      if (Date.now() - started > 5000) finish(false);
      else void initAlive(st).then((alive) => alive || finish(false));
    }, 100);
    sock.on('data', () => finish(true));
    sock.on('error', () => finish(false));
    sock.on('end', () => finish(false));
  });
}
