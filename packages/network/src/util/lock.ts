import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Serialises async sections per key inside this process. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const mutex = new KeyedMutex();

/**
 * Inter-process exclusive lock on `path` (a lock file created with O_EXCL holding the owner's
 * pid). A lock whose owner process is dead is taken over, so a crash never wedges the store.
 * Inside one process, callers on the same path are queued by a mutex first.
 */
export function withFileLock<T>(path: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return mutex.run(path, async () => {
    mkdirSync(dirname(path), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        // Inline: a tiny file, taken several times per container setup (see util/fs.ts).
        const fd = openSync(path, 'wx', 0o600);
        try {
          writeSync(fd, String(process.pid));
        } finally {
          closeSync(fd);
        }
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        // An empty file older than 2 s is an owner that died between create and write.
        const emptyAndOld =
          !(owner > 0) && Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0) > 2000;
        if ((owner > 0 && !alive(owner)) || emptyAndOld) {
          await rm(path, { force: true });
          continue;
        }
        await sleep(Math.min(5 + attempt * 2, 50));
      }
    }
    try {
      return await fn();
    } finally {
      rmSync(path, { force: true });
    }
  });
}
