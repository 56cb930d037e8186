/** SpecOpts for the root filesystem and mounts. */
import path from 'node:path';
import { InvalidSpecOptionError, InvalidVolumePathError } from '../../errors.js';
import { INIT_PATH_IN_CONTAINER, shmMount } from '../defaults.js';
import { ensureLinux, ensureProcess } from '../generate.js';
import type { Mount, SpecOpt } from '../types.js';

/** Set the root filesystem path (absolute, or relative to the bundle). */
export function withRootfs(rootfs: string, readonly?: boolean): SpecOpt {
  return (spec) => {
    spec.root = { path: rootfs, ...(readonly !== undefined ? { readonly } : {}) };
  };
}

/** Mount the root filesystem read-only (`--read-only`). */
export function withReadOnlyRootfs(readonly = true): SpecOpt {
  return (spec) => {
    spec.root ??= { path: 'rootfs' };
    spec.root.readonly = readonly;
  };
}

/**
 * Check a mount destination inside the container: absolute, no NUL, and no `..` component
 * (containerd CVE-2022-23648: `VOLUME /../../../etc` made the runtime copy host files).
 * Returns it normalized.
 */
export function checkContainerPath(p: string, what = 'mount destination'): string {
  if (p.includes('\0')) throw new InvalidVolumePathError(p, `${what} contains a NUL byte`);
  if (!path.posix.isAbsolute(p)) throw new InvalidVolumePathError(p, `${what} is not an absolute path`);
  if (p.split('/').includes('..')) throw new InvalidVolumePathError(p, `${what} has a ".." component`);
  return path.posix.normalize(p).replace(/(.)\/$/, '$1');
}

/** Add a mount, replacing any mount with the same destination (the caller's wins, as in Podman). */
export function withMount(mount: Mount): SpecOpt {
  const destination = checkContainerPath(mount.destination);
  return (spec) => {
    spec.mounts = (spec.mounts ?? []).filter((m) => m.destination !== destination);
    spec.mounts.push({ ...mount, destination, ...(mount.options ? { options: [...mount.options] } : {}) });
  };
}

/** Remove the mount at a destination (and, with `recursive`, every mount below it). */
export function withoutMount(destination: string, recursive = false): SpecOpt {
  return (spec) => {
    spec.mounts = (spec.mounts ?? []).filter(
      (m) => m.destination !== destination && !(recursive && m.destination.startsWith(`${destination}/`)),
    );
  };
}

export type Propagation =
  | 'private'
  | 'rprivate'
  | 'shared'
  | 'rshared'
  | 'slave'
  | 'rslave'
  | 'unbindable'
  | 'runbindable';

export interface BindOptions {
  readOnly?: boolean;
  /** Mount propagation; Podman's default for binds is rprivate. */
  propagation?: Propagation;
  /** Recursive bind (rbind, the default) or a plain bind. */
  recursive?: boolean;
  /** Extra mount options (nosuid, nodev, noexec, ...). */
  options?: readonly string[];
}

/**
 * A bind mount of a host path. `source` must be absolute: it is a host path, opened by the
 * runtime as root. A shared propagation also makes the rootfs propagation `shared` (the kernel
 * needs the parent mount to propagate). Slave needs nothing: without `rootfsPropagation` runc
 * already makes the container's mounts rslave. (Podman writes `rslave`/`rshared` there, which
 * the runtime-spec schema does not allow; see docs/decisions/runtime-spec.md.)
 */
export function withBindMount(source: string, destination: string, opts: BindOptions = {}): SpecOpt {
  if (!path.posix.isAbsolute(source) || source.includes('\0')) {
    throw new InvalidSpecOptionError(
      'bind mount source',
      `${JSON.stringify(source)} is not an absolute host path`,
    );
  }
  const options = [
    opts.readOnly ? 'ro' : 'rw',
    opts.propagation ?? 'rprivate',
    opts.recursive === false ? 'bind' : 'rbind',
    ...(opts.options ?? []),
  ];
  const mount = withMount({ destination, type: 'bind', source, options });
  return async (spec) => {
    await mount(spec);
    if (opts.propagation?.includes('shared')) ensureLinux(spec).rootfsPropagation = 'shared';
  };
}

export interface TmpfsOptions {
  /** Size in bytes (default: the kernel's, half of RAM). */
  size?: number;
  /** Octal mode of the tmpfs root (default 1777 for tmpfs mounts, like Docker). */
  mode?: number;
  /** Copy what the image has at the destination into the tmpfs (runc/crun `tmpcopyup`; default true, as Podman's --tmpfs). */
  copyUp?: boolean;
  options?: readonly string[];
}

/** A tmpfs mount, with Podman's default options (rw, rprivate, nosuid, nodev, tmpcopyup). */
export function withTmpfs(destination: string, opts: TmpfsOptions = {}): SpecOpt {
  if (opts.size !== undefined && (!Number.isInteger(opts.size) || opts.size <= 0)) {
    throw new InvalidSpecOptionError('tmpfs size', `${opts.size} is not a positive integer`);
  }
  const options = [
    ...(opts.size !== undefined ? [`size=${opts.size}`] : []),
    ...(opts.mode !== undefined ? [`mode=${opts.mode.toString(8)}`] : []),
    'rw',
    'rprivate',
    'nosuid',
    'nodev',
    ...(opts.copyUp === false ? [] : ['tmpcopyup']),
    ...(opts.options ?? []),
  ];
  return withMount({ destination, type: 'tmpfs', source: 'tmpfs', options });
}

/** /dev/shm as a private tmpfs of `size` bytes (`--shm-size`). */
export function withShmSize(size: number): SpecOpt {
  if (!Number.isInteger(size) || size <= 0)
    throw new InvalidSpecOptionError('shmSize', `${size} is not a positive integer`);
  return withMount(shmMount(size));
}

/** /dev/shm as a bind of a host tmpfs the caller mounted (Podman's way; shareable by IPC namespace). */
export function withShmBind(hostPath: string): SpecOpt {
  return withMount({
    destination: '/dev/shm',
    type: 'bind',
    source: hostPath,
    options: ['bind', 'rprivate', 'nosuid', 'noexec', 'nodev'],
  });
}

/**
 * Host files the caller wrote for the container (the lifecycle writes them in the container's
 * run directory), bind-mounted like Podman does. Each is optional.
 */
export interface EtcFiles {
  /** → /etc/hosts */
  hosts?: string;
  /** → /etc/resolv.conf */
  resolvConf?: string;
  /** → /etc/hostname */
  hostname?: string;
  /** → /run/.containerenv (Podman's marker file that tools use to detect a container) */
  containerEnv?: string;
}

/** Bind the caller-written /etc/hosts, /etc/resolv.conf, /etc/hostname (read-only with a read-only rootfs). */
export function withEtcFiles(files: EtcFiles, readOnly = false): SpecOpt {
  const pairs: [string | undefined, string][] = [
    [files.containerEnv, '/run/.containerenv'],
    [files.hostname, '/etc/hostname'],
    [files.hosts, '/etc/hosts'],
    [files.resolvConf, '/etc/resolv.conf'],
  ];
  const opts = pairs
    .filter((p): p is [string, string] => p[0] !== undefined)
    .map(([source, destination]) => {
      if (!path.posix.isAbsolute(source)) {
        throw new InvalidSpecOptionError(
          `${destination} source`,
          `${JSON.stringify(source)} is not absolute`,
        );
      }
      const extra =
        readOnly && destination !== '/run/.containerenv' ? ['ro', 'nosuid', 'noexec', 'nodev'] : [];
      return withMount({ destination, type: 'bind', source, options: ['bind', 'rprivate', ...extra] });
    });
  return async (spec) => {
    for (const o of opts) await o(spec);
  };
}

/**
 * Run `hostInitPath` (catatonit or tini) as PID 1: bind it read-only at /run/libpod-ts-init and
 * prefix the args with it and `--`, so it reaps zombies and forwards signals. Put it after the
 * opt that sets the args.
 */
export function withInit(hostInitPath: string): SpecOpt {
  if (!path.isAbsolute(hostInitPath))
    throw new InvalidSpecOptionError('initPath', `${hostInitPath} is not absolute`);
  const mount = withMount({
    destination: INIT_PATH_IN_CONTAINER,
    type: 'bind',
    source: hostInitPath,
    options: ['bind', 'ro', 'rprivate'],
  });
  return async (spec) => {
    await mount(spec);
    const p = ensureProcess(spec);
    const args = p.args ?? [];
    if (args[0] !== INIT_PATH_IN_CONTAINER) p.args = [INIT_PATH_IN_CONTAINER, '--', ...args];
  };
}

/**
 * Order mounts so that a parent is mounted before anything below it (stable by depth, Podman's
 * order otherwise kept): the runtime mounts in list order.
 */
export function withSortedMounts(): SpecOpt {
  return (spec) => {
    const depth = (m: Mount) => (m.destination === '/' ? 0 : m.destination.split('/').length - 1);
    spec.mounts = (spec.mounts ?? [])
      .map((m, i) => ({ m, i }))
      .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
      .map(({ m }) => m);
  };
}
