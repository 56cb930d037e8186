import { basename } from 'node:path';
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

  async start(id: string): Promise<void> {
    await this.run(['start', id], id);
  }

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

  /** Host pids of every process in the container (`runc ps --format json`). */
  async pids(id: string): Promise<number[]> {
    const out = await this.run(['ps', '--format', 'json', id], id);
    return (JSON.parse(out || '[]') as number[] | null) ?? [];
  }
}
