/**
 * A host-wide lock held by one test file at a time, across every vitest process on the machine.
 * The leak check diffs the whole host, so two suites running at once (two developers, or a bench
 * beside the tests) would see each other's mounts and processes as leaks.
 *
 * The lock is flock(1) on LOCK_PATH held by a helper process that exits when its stdin closes, so
 * the lock is released even if the test process is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOCK_PATH = existsSync('/run/lock')
  ? '/run/lock/libpod-ts-tests.lock'
  : join(tmpdir(), 'libpod-ts-tests.lock');

export interface HostLock {
  release(): Promise<void>;
}

/**
 * Resolves with the lock, or null when it was not obtained within `timeoutMs`. `onWait` is called
 * once if the lock is not free within 2 s (to tell the user why nothing happens).
 */
export async function acquireHostLock(timeoutMs: number, onWait?: () => void): Promise<HostLock | null> {
  const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
  const child: ChildProcess = spawn(
    'flock',
    ['-x', '-w', String(secs), LOCK_PATH, '-c', 'echo locked; exec cat'],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
    },
  );
  const waitTimer = onWait ? setTimeout(onWait, 2000) : undefined;
  const got = await new Promise<boolean>((resolve) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('locked')) resolve(true);
    });
    child.once('exit', () => resolve(false));
    child.once('error', () => resolve(false));
  });
  clearTimeout(waitTimer);
  if (!got) {
    child.kill('SIGKILL');
    return null;
  }
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin?.end();
      });
      return released;
    },
  };
}
