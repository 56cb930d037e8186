/** Helpers shared by the drivers: id checks, running tools, mount table lookups. */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { DriverOperationError, StorageError } from '../errors.js';

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Layer ids become path components: refuse anything else before it reaches a path. */
export function checkId(id: string): string {
  if (!SAFE_ID.test(id))
    throw new StorageError('ERR_INVALID_LAYER_ID', `invalid layer id ${JSON.stringify(id)}`);
  return id;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a tool without a shell; never rejects for a non-zero exit (the caller decides). */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; signal?: AbortSignal } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, signal: opts.signal, maxBuffer: 1 << 20, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(err);
          return;
        }
        resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
      },
    );
  });
}

export async function runOrThrow(
  driver: string,
  layer: string,
  step: string,
  cmd: string,
  args: string[],
  opts: { cwd?: string; signal?: AbortSignal } = {},
): Promise<void> {
  let r: RunResult;
  try {
    r = await run(cmd, args, opts);
  } catch (cause) {
    throw new DriverOperationError(driver, layer, step, { cause });
  }
  if (r.code !== 0) {
    throw new DriverOperationError(driver, layer, `${step} (${cmd} exit ${r.code}: ${r.stderr.trim()})`);
  }
}

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[4])
      out.add(f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

export function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
