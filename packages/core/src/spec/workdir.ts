/**
 * The container's working directory, resolved and created inside the rootfs.
 *
 * runc chdirs into `process.cwd` after mounting /proc, so a cwd of `/proc/self/fd/N` — given
 * directly or reached through a symlink in the image (`/app -> /proc/self/fd/7`) — lands on a
 * host directory fd leaked into the container (CVE-2024-21626). We resolve the path inside the
 * rootfs as chroot would, refuse it when it ends under /proc or /sys, and give the runtime the
 * resolved, symlink-free path. Missing directories are created (mode 0755, owned by the
 * container user, as Podman does); an existing non-directory is an error.
 */
import { lstat, lchown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { resolveInRoot } from '@libpod-ts/storage';
import { InvalidWorkdirError } from '../errors.js';
import { ensureProcess } from './generate.js';
import { isForbiddenCwd } from './opts/process.js';
import type { SpecOpt } from './types.js';

export interface WorkdirOptions {
  /** Create missing directories (default true). */
  create?: boolean;
  /** With `create: false`: return the path even when directories are missing (a dry run). */
  allowMissing?: boolean;
  /** Owner of directories we create (default root). */
  uid?: number;
  gid?: number;
}

/**
 * Resolve `workdir` inside `rootfs` and return the in-container path the runtime must use.
 * A relative `workdir` (possible in old image configs) is taken from `/`.
 */
export async function resolveWorkdir(
  rootfs: string,
  workdir: string,
  opts: WorkdirOptions = {},
): Promise<string> {
  if (workdir.includes('\0')) throw new InvalidWorkdirError(workdir, 'contains a NUL byte');
  const abs = path.posix.resolve('/', workdir);
  if (isForbiddenCwd(abs)) throw new InvalidWorkdirError(workdir, 'inside /proc or /sys (CVE-2024-21626)');
  let hostPath: string;
  try {
    hostPath = await resolveInRoot(rootfs, abs);
  } catch (err) {
    throw new InvalidWorkdirError(workdir, 'cannot resolve it inside the rootfs', { cause: err });
  }
  const root = path.resolve(rootfs);
  const rel = path.relative(root, hostPath);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new InvalidWorkdirError(workdir, 'resolves outside the rootfs');
  }
  const inContainer = rel === '' ? '/' : `/${rel.split(path.sep).join('/')}`;
  if (isForbiddenCwd(inContainer)) {
    throw new InvalidWorkdirError(
      workdir,
      `resolves to ${inContainer}, inside /proc or /sys (CVE-2024-21626)`,
    );
  }
  // Walk from the root: every existing component must be a real directory (resolveInRoot left no
  // symlink in the path unless one appeared since); create the missing tail.
  let cur = root;
  for (const name of rel === '' ? [] : rel.split(path.sep)) {
    cur = path.join(cur, name);
    const st = await lstat(cur).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new InvalidWorkdirError(workdir, `cannot inspect ${name}`, { cause: err });
    });
    if (st?.isDirectory()) continue;
    if (st) throw new InvalidWorkdirError(workdir, `${inContainer} is not a directory`);
    if (opts.create === false) {
      if (opts.allowMissing) break;
      throw new InvalidWorkdirError(workdir, `${inContainer} does not exist`);
    }
    try {
      await mkdir(cur, { mode: 0o755 });
      await lchown(cur, opts.uid ?? 0, opts.gid ?? 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new InvalidWorkdirError(workdir, `cannot create ${inContainer}`, { cause: err });
      }
      const again = await lstat(cur);
      if (!again.isDirectory()) throw new InvalidWorkdirError(workdir, `${inContainer} is not a directory`);
    }
  }
  return inContainer;
}

/** Set `process.cwd` to `workdir` resolved (and created) inside `rootfs`; see {@link resolveWorkdir}. */
export function withWorkdir(rootfs: string, workdir: string, opts: WorkdirOptions = {}): SpecOpt {
  return async (spec) => {
    ensureProcess(spec).cwd = await resolveWorkdir(rootfs, workdir, opts);
  };
}
