/** SpecOpts for Linux specifics: resources, namespaces, id mappings, sysctls, cgroups, devices, annotations. */
import { existsSync, readFileSync } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidSpecOptionError } from '../../errors.js';
import { ensureLinux } from '../generate.js';
import type { IDMapping, LinuxDevice, LinuxResources, NamespaceType, SpecOpt } from '../types.js';
import { checkContainerPath } from './mounts.js';

function resources(spec: Parameters<SpecOpt>[0]): LinuxResources {
  const linux = ensureLinux(spec);
  linux.resources ??= {};
  return linux.resources;
}

function positiveInt(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidSpecOptionError(what, `${n} is not a positive integer`);
  return n;
}

/** Memory limit in bytes (`--memory`); at least 6 MiB like Podman, which runc needs to start. */
export function withMemoryLimit(bytes: number): SpecOpt {
  positiveInt('memory', bytes);
  if (bytes < 6 * 1024 * 1024)
    throw new InvalidSpecOptionError('memory', `${bytes} is below the 6 MiB minimum`);
  return (spec) => {
    const r = resources(spec);
    r.memory = { ...r.memory, limit: bytes };
  };
}

/** Memory plus swap in bytes (`--memory-swap`); -1 for unlimited swap. Must be ≥ the memory limit. */
export function withMemorySwap(bytes: number): SpecOpt {
  if (bytes !== -1) positiveInt('memorySwap', bytes);
  return (spec) => {
    const r = resources(spec);
    const limit = r.memory?.limit;
    if (bytes !== -1 && limit !== undefined && bytes < limit) {
      throw new InvalidSpecOptionError('memorySwap', `${bytes} is below the memory limit ${limit}`);
    }
    r.memory = { ...r.memory, swap: bytes };
  };
}

/** Soft memory limit in bytes (`--memory-reservation`). */
export function withMemoryReservation(bytes: number): SpecOpt {
  positiveInt('memoryReservation', bytes);
  return (spec) => {
    const r = resources(spec);
    r.memory = { ...r.memory, reservation: bytes };
  };
}

/** CPU quota as a number of CPUs (`--cpus 1.5` → quota 150000 per 100000 µs period). */
export function withCpus(cpus: number, period = 100_000): SpecOpt {
  if (!(cpus > 0) || !Number.isFinite(cpus))
    throw new InvalidSpecOptionError('cpus', `${cpus} is not a positive number`);
  const quota = Math.round(cpus * period);
  if (quota < 1000) throw new InvalidSpecOptionError('cpus', `${cpus} gives a quota below 1 ms`);
  return (spec) => {
    const r = resources(spec);
    r.cpu = { ...r.cpu, quota, period };
  };
}

/** Relative CPU weight (`--cpu-shares`, 2..262144). */
export function withCpuShares(shares: number): SpecOpt {
  positiveInt('cpuShares', shares);
  if (shares < 2 || shares > 262144)
    throw new InvalidSpecOptionError('cpuShares', `${shares} is not in 2..262144`);
  return (spec) => {
    const r = resources(spec);
    r.cpu = { ...r.cpu, shares };
  };
}

const CPUSET = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/** CPUs and memory nodes the container may use (`--cpuset-cpus 0-1,3`, `--cpuset-mems 0`). */
export function withCpuset(cpus?: string, mems?: string): SpecOpt {
  for (const [k, v] of [
    ['cpusetCpus', cpus],
    ['cpusetMems', mems],
  ] as const) {
    if (v !== undefined && !CPUSET.test(v))
      throw new InvalidSpecOptionError(k, `${JSON.stringify(v)} is not a cpu list`);
  }
  return (spec) => {
    const r = resources(spec);
    r.cpu = { ...r.cpu, ...(cpus !== undefined ? { cpus } : {}), ...(mems !== undefined ? { mems } : {}) };
  };
}

/** Maximum number of tasks (`--pids-limit`); 0 or -1 remove the limit. */
export function withPidsLimit(limit: number): SpecOpt {
  if (!Number.isSafeInteger(limit) || limit < -1)
    throw new InvalidSpecOptionError('pidsLimit', `${limit} is not valid`);
  return (spec) => {
    const r = resources(spec);
    if (limit <= 0) delete r.pids;
    else r.pids = { limit };
  };
}

/** Block IO weight (`--blkio-weight`, 10..1000); needs the CFQ/BFQ blkio weight files on cgroup v1. */
export function withBlkioWeight(weight: number): SpecOpt {
  if (!Number.isInteger(weight) || weight < 10 || weight > 1000) {
    throw new InvalidSpecOptionError('blkioWeight', `${weight} is not in 10..1000`);
  }
  return (spec) => {
    const r = resources(spec);
    r.blockIO = { ...r.blockIO, weight };
  };
}

/**
 * Whether the host can apply a block IO weight: cgroup v1 needs blkio.weight (CFQ) or
 * blkio.bfq.weight (BFQ) — many kernels have neither, and runc then fails at start; cgroup v2
 * needs the io controller.
 */
export function blkioWeightSupported(cgroupRoot = '/sys/fs/cgroup'): boolean {
  const v2 = path.join(cgroupRoot, 'cgroup.controllers');
  if (existsSync(v2)) {
    try {
      return readFileSync(v2, 'utf8').split(/\s+/).includes('io');
    } catch {
      return false;
    }
  }
  return ['blkio.weight', 'blkio.bfq.weight'].some((f) => existsSync(path.join(cgroupRoot, 'blkio', f)));
}

/** Whether the host can limit swap: cgroup v1 swap accounting (memory.memsw.*) or cgroup v2's memory controller. */
export function swapLimitSupported(cgroupRoot = '/sys/fs/cgroup'): boolean {
  const v2 = path.join(cgroupRoot, 'cgroup.controllers');
  if (existsSync(v2)) {
    try {
      return readFileSync(v2, 'utf8').split(/\s+/).includes('memory');
    } catch {
      return false;
    }
  }
  return existsSync(path.join(cgroupRoot, 'memory', 'memory.memsw.limit_in_bytes'));
}

export type NamespaceMode = 'private' | 'host' | { path: string };

/**
 * Namespace mode: `private` (a new one), `host` (none: the runtime's own), or `{ path }` to join
 * an existing one (`/proc/<pid>/ns/net`, a bind-mounted netns). Podman side effects: a host
 * UTS namespace drops the hostname (the runtime refuses to set it), a host network namespace
 * drops `net.*` sysctls (the runtime refuses them).
 */
export function withNamespace(type: NamespaceType, mode: NamespaceMode): SpecOpt {
  if (typeof mode === 'object' && (!path.isAbsolute(mode.path) || mode.path.includes('\0'))) {
    throw new InvalidSpecOptionError(
      `${type} namespace`,
      `path ${JSON.stringify(mode.path)} is not absolute`,
    );
  }
  if (type === 'mount' && mode === 'host') {
    throw new InvalidSpecOptionError('mount namespace', 'a container needs its own mount namespace');
  }
  return (spec) => {
    const linux = ensureLinux(spec);
    const list = (linux.namespaces ?? []).filter((n) => n.type !== type);
    if (mode === 'private') list.push({ type });
    else if (typeof mode === 'object') list.push({ type, path: mode.path });
    linux.namespaces = list;
    if (mode === 'host' && type === 'uts') {
      delete spec.hostname;
      delete spec.domainname;
    }
    if (mode === 'host' && type === 'network' && linux.sysctl) {
      for (const k of Object.keys(linux.sysctl)) if (k.startsWith('net.')) delete linux.sysctl[k];
    }
  };
}

function checkMappings(what: string, maps: readonly IDMapping[]): IDMapping[] {
  if (maps.length === 0 || maps.length > 340) throw new InvalidSpecOptionError(what, 'needs 1 to 340 ranges');
  for (const m of maps) {
    for (const v of [m.containerID, m.hostID, m.size]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new InvalidSpecOptionError(what, `bad id ${v}`);
    }
    if (m.size === 0 || m.containerID + m.size > 0x100000000 || m.hostID + m.size > 0x100000000) {
      throw new InvalidSpecOptionError(what, `range ${m.containerID}:${m.hostID}:${m.size} overflows`);
    }
  }
  return maps.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
}

/** A new user namespace with these uid/gid mappings (container id → host id, size). */
export function withUserNamespace(
  uidMappings: readonly IDMapping[],
  gidMappings: readonly IDMapping[],
): SpecOpt {
  const uids = checkMappings('uidMappings', uidMappings);
  const gids = checkMappings('gidMappings', gidMappings);
  return (spec) => {
    const linux = ensureLinux(spec);
    linux.uidMappings = uids;
    linux.gidMappings = gids;
    linux.namespaces = [...(linux.namespaces ?? []).filter((n) => n.type !== 'user'), { type: 'user' }];
  };
}

/** The sysctls that belong to a namespace (runc refuses the others: they would change the host). */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

export function isNamespacedSysctl(name: string): boolean {
  const k = name.replace(/\//g, '.');
  return IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.') || k.startsWith('net.');
}

/**
 * Set namespaced sysctls (`--sysctl`): IPC ones, `fs.mqueue.*`, and `net.*` (which need a
 * private network namespace). Others would change the host and are refused.
 */
export function withSysctls(sysctls: Record<string, string>): SpecOpt {
  for (const k of Object.keys(sysctls)) {
    if (!isNamespacedSysctl(k)) throw new InvalidSpecOptionError('sysctl', `${k} is not namespaced`);
    if (!/^[a-z0-9_]+([./][a-zA-Z0-9_-]+)+$/.test(k))
      throw new InvalidSpecOptionError('sysctl', `bad name ${JSON.stringify(k)}`);
  }
  return (spec) => {
    const linux = ensureLinux(spec);
    linux.sysctl = { ...linux.sysctl, ...sysctls };
  };
}

/** Set `linux.cgroupsPath` (see {@link cgroupsPathFor}). */
export function withCgroupsPath(cgroupsPath: string): SpecOpt {
  return (spec) => {
    ensureLinux(spec).cgroupsPath = cgroupsPath;
  };
}

export interface CgroupsPathOptions {
  /** `cgroupfs` (default; Podman's choice when systemd is not PID 1) or `systemd`. */
  manager?: 'cgroupfs' | 'systemd';
  /** Parent: a cgroupfs path (default `/libpod_parent`) or a systemd slice (default `machine.slice`). */
  parent?: string;
}

/**
 * The cgroups path Podman uses for a container: `/libpod_parent/libpod-<id>` with the cgroupfs
 * manager, `machine.slice:libpod:<id>` with systemd (runc's `slice:prefix:name` form).
 */
export function cgroupsPathFor(containerId: string, opts: CgroupsPathOptions = {}): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(containerId))
    throw new InvalidSpecOptionError('containerId', `bad id ${containerId}`);
  if ((opts.manager ?? 'cgroupfs') === 'systemd')
    return `${opts.parent ?? 'machine.slice'}:libpod:${containerId}`;
  const parent = opts.parent ?? '/libpod_parent';
  if (!parent.startsWith('/') || parent.split('/').includes('..')) {
    throw new InvalidSpecOptionError('cgroupParent', `${parent} must be absolute without ".."`);
  }
  return `${parent.replace(/\/+$/, '')}/libpod-${containerId}`;
}

/** Merge annotations (later values win). */
export function withAnnotations(annotations: Record<string, string>): SpecOpt {
  return (spec) => {
    spec.annotations = { ...spec.annotations, ...annotations };
  };
}

/**
 * Set the rootfs mount propagation: `private`, `slave`, `shared` or `unbindable` (the values the
 * runtime-spec allows; runc applies it to the container's `/` only).
 */
export function withRootfsPropagation(propagation: 'private' | 'slave' | 'shared' | 'unbindable'): SpecOpt {
  if (!['private', 'slave', 'shared', 'unbindable'].includes(propagation)) {
    throw new InvalidSpecOptionError(
      'rootfsPropagation',
      `${JSON.stringify(propagation)} is not private, slave, shared or unbindable`,
    );
  }
  return (spec) => {
    ensureLinux(spec).rootfsPropagation = propagation;
  };
}

export interface DeviceOptions {
  /** Path inside the container (default: same as on the host). */
  containerPath?: string;
  /** Cgroup access: any of r, w, m (default rwm). */
  permissions?: string;
}

function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/** Describe a host device node (stat follows links, as `--device /dev/disk/by-id/...` needs). */
export async function hostDevice(hostPath: string, containerPath = hostPath): Promise<LinuxDevice> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(hostPath);
  } catch (err) {
    throw new InvalidSpecOptionError('device', `cannot stat ${hostPath}`, { cause: err });
  }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) throw new InvalidSpecOptionError('device', `${hostPath} is not a character or block device`);
  return {
    path: containerPath,
    type,
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
  };
}

/** Make a host device available (`--device /dev/fuse:/dev/fuse:rwm`): node plus cgroup rule. */
export function withDevice(hostPath: string, opts: DeviceOptions = {}): SpecOpt {
  const permissions = opts.permissions ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(permissions)) throw new InvalidSpecOptionError('device permissions', permissions);
  const containerPath = checkContainerPath(opts.containerPath ?? hostPath, 'device path');
  return async (spec) => {
    const dev = await hostDevice(hostPath, containerPath);
    const linux = ensureLinux(spec);
    linux.devices = [...(linux.devices ?? []).filter((d) => d.path !== containerPath), dev];
    const r = resources(spec);
    r.devices = [
      ...(r.devices ?? []),
      { allow: true, type: dev.type as 'c' | 'b', major: dev.major, minor: dev.minor, access: permissions },
    ];
  };
}

/** Directories of /dev that a container gets its own instance of. */
const SKIP_DEV = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/fd', '/dev/console']);

/** Every host device node under /dev (privileged containers get them all, as with Podman). */
export async function listHostDevices(root = '/dev'): Promise<LinuxDevice[]> {
  const out: LinuxDevice[] = [];
  async function walk(dir: string): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const p = path.join(dir, name);
      if (SKIP_DEV.has(p)) continue;
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isCharacterDevice() || st.isBlockDevice())
        out.push(await hostDevice(p).catch(() => undefined as never));
    }
  }
  await walk(root);
  return out.filter(Boolean);
}

/** Add every host device (for privileged containers). */
export function withHostDevices(): SpecOpt {
  return async (spec) => {
    const devs = await listHostDevices();
    const linux = ensureLinux(spec);
    const have = new Set((linux.devices ?? []).map((d) => d.path));
    linux.devices = [...(linux.devices ?? []), ...devs.filter((d) => !have.has(d.path))];
  };
}
