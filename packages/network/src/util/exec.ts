import { spawn } from 'node:child_process';
import { HostCommandError } from '../errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with optional stdin and a replaced environment. Resolves with the exit status
 * (never rejects on a non-zero exit); rejects when the program cannot be started or the signal
 * aborts (the child is killed).
 */
export function run(
  file: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal | undefined } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    opts.signal?.throwIfAborted();
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      resolve({
        code: code ?? (sig ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A plugin that exits before reading stdin gives EPIPE; its exit status tells the story.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a host tool and throws HostCommandError on a non-zero exit or when it is missing. */
export async function runChecked(
  file: string,
  args: readonly string[],
  opts: { input?: string; signal?: AbortSignal | undefined } = {},
): Promise<string> {
  let r: RunResult;
  try {
    r = await run(file, args, opts);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new HostCommandError(file, `${file} is not installed`, { cause });
    }
    throw cause;
  }
  if (r.code !== 0) throw new HostCommandError(`${file} ${args.join(' ')}`, r.stderr || r.stdout);
  return r.stdout;
}
