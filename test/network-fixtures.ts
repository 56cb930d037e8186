/** Helpers shared by the network scenario tests (containers on bridge networks, ports, joins). */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ContainerCreateOptions, Libpod } from '@libpod-ts/core';

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

/** Writes `/www/index.html` into a busybox rootfs for busybox httpd to serve. */
export async function addWww(rootfs: string, body: string): Promise<void> {
  await mkdir(join(rootfs, 'www'), { recursive: true });
  await writeFile(join(rootfs, 'www', 'index.html'), body);
}

/**
 * Libpod options of a network test: no image store, a default network the test owns, and no
 * conflists read from /etc/cni/net.d. Plain data, so child-process scripts can embed it as JSON.
 */
export function networkOpenOptions(
  env: { root: string; runRoot: string },
  defaultNetwork: { name: string; subnet: string; bridge: string },
) {
  return {
    root: env.root,
    runRoot: env.runRoot,
    storage: false as const,
    network: { defaultNetwork, extraConfigDirs: [] as string[] },
  };
}

/** Creates and starts a container of `rootfs` that sleeps a minute, with `options` (name, network...). */
export async function startSleeper(
  lp: Libpod,
  rootfs: string,
  options: Partial<ContainerCreateOptions>,
): Promise<{ id: string; name: string }> {
  const c = await lp.containers.create({ rootfs, command: ['sleep', '60'], ...options });
  await lp.containers.start(c.id);
  return c;
}
