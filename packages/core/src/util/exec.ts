import { spawn } from 'node:child_process';

export interface ExecResult {
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to completion and captures its output. No shell; arguments are passed as is.
 * Plain child_process (not execa): runtime calls sit on the hot path of `run`.
 */
export function execFile(
  file: string,
  args: readonly string[],
  options: { signal?: AbortSignal; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: options.signal,
      env: options.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.once('close', (code, signal) =>
      resolve({
        exitCode: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}
