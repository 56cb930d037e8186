import { readFile } from 'node:fs/promises';
import { resolveInRoot } from '@libpod-ts/storage';
import { InvalidOptionsError } from '../errors.js';

/**
 * Resolves `user[:group]` (names or numbers) against the rootfs' /etc/passwd and /etc/group,
 * read through resolveInRoot so a symlinked /etc/passwd cannot point at the host's.
 * Used by the fallback spec; the spec generator has its own, fuller resolver.
 */
export async function resolveUser(rootfs: string, user: string): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  const readDb = async (name: string) => {
    try {
      return (await readFile(await resolveInRoot(rootfs, name), 'utf8')).split('\n').map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const entry = (await readDb('/etc/passwd')).find((f) => f[2] === u);
    if (entry?.[3] && /^\d+$/.test(entry[3])) gid = Number(entry[3]);
  } else {
    const entry = (await readDb('/etc/passwd')).find((f) => f[0] === u);
    if (!entry || !/^\d+$/.test(entry[2] ?? '') || !/^\d+$/.test(entry[3] ?? '')) {
      throw new InvalidOptionsError('user', [
        { path: 'user', message: `user "${u}" not found in the image's /etc/passwd` },
      ]);
    }
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = (await readDb('/etc/group')).find((f) => f[0] === g);
      if (!entry || !/^\d+$/.test(entry[2] ?? '')) {
        throw new InvalidOptionsError('user', [
          { path: 'user', message: `group "${g}" not found in the image's /etc/group` },
        ]);
      }
      gid = Number(entry[2]);
    }
  }
  if (uid > 0xfffffffe || (gid ?? 0) > 0xfffffffe) {
    throw new InvalidOptionsError('user', [{ path: 'user', message: 'uid/gid out of range' }]);
  }
  return { uid, gid: gid ?? 0 };
}
