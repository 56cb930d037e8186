/** Helpers shared by the network scenario tests (containers on bridge networks, ports, joins). */
import { symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A port nobody listens on right now (bound to 0, read back, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '0.0.0.0', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Retries until `fn` resolves (a server in a just-started container needs a moment to bind). */
export async function eventually<T>(fn: () => Promise<T>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Links busybox applets into a busybox rootfs's /bin (existing links are kept). */
export async function addApplets(rootfs: string, applets: readonly string[]): Promise<void> {
  for (const a of applets) await symlink('busybox', join(rootfs, 'bin', a)).catch(() => {});
}
