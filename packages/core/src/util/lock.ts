import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { isProcessAlive, sleep } from './fs.js';

/**
 * An inter-process lock file: created with O_EXCL holding the owner's pid. A lock whose owner
 * died is taken over (locks are released when a holder dies, DESIGN invariant 1). Not reentrant.
 * Node has no flock(2); this is the portable equivalent for short critical sections.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    try {
      // Inline syscalls: taking and releasing an uncontended lock is on every record update
      // (the `run` hot path has four); thread-pool round trips cost more than the calls.
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt((await readFile(path, 'utf8').catch(() => '')) || '0', 10);
      if (owner > 0 && !isProcessAlive(owner)) {
        await unlink(path).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path} held by pid ${owner}`);
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {}
  }
}
