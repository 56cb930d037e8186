import { open, readFile, unlink } from 'node:fs/promises';
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
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
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
    await unlink(path).catch(() => {});
  }
}
