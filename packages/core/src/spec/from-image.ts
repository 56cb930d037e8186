/**
 * `specFromImage`: the whole Podman-like pipeline, composed from the SpecOpts in order.
 */
import { existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ImageVolumeUnmountedError,
  InvalidSpecOptionError,
  InvalidWorkdirError,
  NoCommandError,
  RootfsFileError,
} from '../errors.js';
import { CONTAINER_ENV_VALUE, DEFAULT_CAPABILITIES, DEFAULT_PATH, defaultSpec } from './defaults.js';
import { type CreateOptionsInput, parseCreateOptions } from './create-options.js';
import { generateSpec } from './generate.js';
import { DEFAULT_HOOKS_DIRS, withHooksFromDirs } from './hooks.js';
import { type ImageConfigDocument, type ImageRuntimeConfig, mergeImageConfig } from './image-config.js';
import { findInitBinary } from './init.js';
import {
  blkioWeightSupported,
  cgroupsPathFor,
  swapLimitSupported,
  withAnnotations,
  withBlkioWeight,
  withCgroupsPath,
  withCpuShares,
  withCpus,
  withCpuset,
  withDevice,
  withHostDevices,
  withMemoryLimit,
  withMemoryReservation,
  withMemorySwap,
  withNamespace,
  withPidsLimit,
  withSysctls,
  withUserNamespace,
} from './opts/linux.js';
import {
  withBindMount,
  withEtcFiles,
  withInit,
  withRootfs,
  withShmBind,
  withShmSize,
  withSortedMounts,
  withTmpfs,
} from './opts/mounts.js';
import {
  splitEnv,
  withArgs,
  withDomainname,
  withEnv,
  withEnvDefault,
  withHostname,
  withNoNewPrivileges,
  withOomScoreAdj,
  withTerminal,
  withUmask,
} from './opts/process.js';
import {
  hostCapabilities,
  normalizeCapability,
  withCapDrop,
  withCapabilities,
  withDefaultSeccomp,
  withPrivileged,
  withUnconfinedSeccomp,
} from './opts/security.js';
import { type HostRlimit, withDefaultRlimits, withRlimits } from './rlimits.js';
import { loadSeccompProfile } from './seccomp/profile.js';
import type { Spec, SpecOpt } from './types.js';
import { resolveUser } from './user.js';
import { resolveWorkdir } from './workdir.js';

export interface SpecFromImageOptions {
  /** Host limits to clamp defaults to (default: /proc/self/limits). */
  hostRlimits?: ReadonlyMap<string, HostRlimit>;
  signal?: AbortSignal;
}

/**
 * The capability set Docker/Podman compute: the defaults (none if `capDrop` has ALL), plus
 * `capAdd` (ALL = every capability the host allows), minus `capDrop`.
 */
export function effectiveCapabilities(capAdd: readonly string[], capDrop: readonly string[]): string[] {
  const add = capAdd.map(normalizeCapability);
  const drop = capDrop.map(normalizeCapability);
  const set = new Set(drop.includes('ALL') ? [] : DEFAULT_CAPABILITIES);
  for (const c of add.includes('ALL') ? hostCapabilities() : add) if (c !== 'ALL') set.add(c);
  for (const c of drop) set.delete(c);
  return [...set].sort();
}

/**
 * The runtime mounts procfs, sysfs and a /dev tmpfs on these paths of the rootfs before anything
 * else; an image that makes one of them a symlink is hostile (runc keeps it inside the rootfs but
 * then fails obscurely; other runtimes differ). No legitimate image does it: refuse it up front.
 */
async function checkPseudoFsMountPoints(rootfs: string): Promise<void> {
  for (const p of ['proc', 'sys', 'dev']) {
    const st = await lstat(join(rootfs, p)).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      throw new RootfsFileError(`/${p}`, 'is a symlink; the runtime mounts a filesystem there');
    }
  }
}

/** Whether the host runs the unified cgroup v2 hierarchy only (private cgroupns by default there). */
function cgroupV2Only(): boolean {
  return existsSync('/sys/fs/cgroup/cgroup.controllers');
}

/**
 * Generate the runtime config of a container from its image configuration (`{config: {...}}`
 * or the `config` object), its mounted root filesystem and the create options.
 *
 * Reads the rootfs (user and groups, working directory: created when missing, owned by the
 * container user) and the host (limits, capabilities, init binary, hooks directories, devices).
 * Throws InvalidOptionsError for invalid options, and the typed errors of each step
 * (NoCommandError, UserNotFoundError, InvalidWorkdirError, ImageVolumeUnmountedError, ...).
 * The rootfs is only written to for the working directory.
 */
export async function specFromImage(
  image: ImageConfigDocument | ImageRuntimeConfig | undefined,
  rootfs: string,
  createOptions: CreateOptionsInput = {},
  extra: SpecFromImageOptions = {},
): Promise<Spec> {
  const o = parseCreateOptions(createOptions);
  const signal = extra.signal;
  signal?.throwIfAborted();
  const merged = mergeImageConfig(image, o);
  if (merged.args.length === 0) throw new NoCommandError();

  await checkPseudoFsMountPoints(rootfs);
  const user = await resolveUser(rootfs, merged.user, { groups: o.groups ?? [] });
  signal?.throwIfAborted();
  // A dry run first: the directory is only created once everything else succeeded, so a
  // failing option leaves the rootfs untouched.
  const hasWorkdir = merged.workdir !== '' && merged.workdir !== '/';
  const cwd = hasWorkdir
    ? await resolveWorkdir(rootfs, merged.workdir, { create: false, allowMissing: o.createWorkdir })
    : '/';
  signal?.throwIfAborted();

  // The runtime refuses a namespaced sysctl when that namespace is the host's.
  const ns = o.namespaces ?? {};
  for (const k of Object.keys(o.sysctls ?? {})) {
    if (ns.network === 'host' && k.startsWith('net.')) {
      throw new InvalidSpecOptionError('sysctls', `${k} needs a private network namespace`);
    }
    if (ns.ipc === 'host' && !k.startsWith('net.')) {
      throw new InvalidSpecOptionError('sysctls', `${k} needs a private IPC namespace`);
    }
  }

  const opts: SpecOpt[] = [withRootfs(rootfs, o.readOnly || undefined)];

  // Process.
  opts.push(withArgs(...merged.args));
  opts.push(withEnv(merged.env));
  if (!merged.env.some((e) => splitEnv(e)[0] === 'PATH')) opts.push(withEnv({ PATH: DEFAULT_PATH }));
  opts.push(withEnvDefault('container', CONTAINER_ENV_VALUE));
  if (user.username !== undefined) opts.push(withEnvDefault('HOME', user.home));
  opts.push((spec) => {
    const p = spec.process!;
    p.user = { uid: user.uid, gid: user.gid, umask: o.umask ?? 0o022 };
    if (user.additionalGids.length > 0) p.user.additionalGids = user.additionalGids;
    p.cwd = cwd;
  });
  if (o.tty) opts.push(withTerminal(true));
  if (o.oomScoreAdj !== undefined) opts.push(withOomScoreAdj(o.oomScoreAdj));
  if (o.umask !== undefined) opts.push(withUmask(o.umask));

  // Identity.
  const hostname = o.hostname ?? o.containerId?.slice(0, 12);
  // A host or joined UTS namespace is not ours to name.
  const ownUts = ns.uts === undefined || ns.uts === 'private';
  if (hostname && ownUts) opts.push(withHostname(hostname));
  if (o.domainname && ownUts) opts.push(withDomainname(o.domainname));

  // Privileges: capabilities first, seccomp computed from the final bounding set.
  if (o.privileged) {
    opts.push(withPrivileged(), withHostDevices());
    if (o.capDrop.length > 0) opts.push(withCapDrop(...o.capDrop));
  } else {
    // The runtime cannot grant what its parent lacks ("unable to apply caps: operation not
    // permitted"): refuse an explicit add of such a capability, drop it from the defaults.
    const hostCaps = new Set(hostCapabilities());
    const added = o.capAdd.map(normalizeCapability).filter((c) => c !== 'ALL');
    const ungrantable = added.filter((c) => !hostCaps.has(c));
    if (ungrantable.length > 0) {
      throw new InvalidSpecOptionError(
        'capAdd',
        `${ungrantable.join(', ')} not in this process's bounding set; the runtime could not grant it`,
      );
    }
    const caps = effectiveCapabilities(o.capAdd, o.capDrop).filter((c) => hostCaps.has(c));
    opts.push(withCapabilities(caps, user.uid === 0 ? undefined : added));
    if (o.seccompProfile === 'unconfined') opts.push(withUnconfinedSeccomp());
    else if (o.seccompProfile) {
      const profile = await loadSeccompProfile(o.seccompProfile, signal);
      opts.push(withDefaultSeccomp(profile));
    } else opts.push(withDefaultSeccomp());
  }
  if (o.noNewPrivileges) opts.push(withNoNewPrivileges(true));

  // Filesystem.
  if (o.shmPath) opts.push(withShmBind(o.shmPath));
  else if (o.shmSize) opts.push(withShmSize(o.shmSize));
  if (o.etcFiles) opts.push(withEtcFiles(o.etcFiles, o.readOnly));
  if (o.readOnly && o.readOnlyTmpfs) {
    for (const d of ['/run', '/tmp', '/var/tmp']) opts.push(withTmpfs(d));
  }
  for (const m of o.mounts) {
    if (m.type === 'bind') {
      opts.push(
        withBindMount(m.source, m.destination, {
          readOnly: m.readOnly,
          propagation: m.propagation,
          recursive: m.recursive,
          options: m.options,
        }),
      );
    } else if (m.type === 'tmpfs') {
      opts.push(
        withTmpfs(m.destination, { size: m.size, mode: m.mode, copyUp: m.copyUp, options: m.options }),
      );
    } else {
      opts.push(withBindMount(m.source, m.destination, { readOnly: m.readOnly, options: m.options }));
    }
  }
  const mounted = new Set(o.mounts.map((m) => m.destination.replace(/(.)\/$/, '$1')));
  const uncovered = merged.volumes.filter((v) => !mounted.has(v));
  if (o.imageVolume === 'anonymous' && uncovered.length > 0) throw new ImageVolumeUnmountedError(uncovered);
  if (o.imageVolume === 'tmpfs') for (const v of uncovered) opts.push(withTmpfs(v));
  for (const d of o.devices)
    opts.push(withDevice(d.path, { containerPath: d.containerPath, permissions: d.permissions }));

  // PID 1.
  if (o.init) opts.push(withInit(await findInitBinary(o.initPath)));

  // Resources and limits.
  const r = o.resources ?? {};
  if (r.memory !== undefined) opts.push(withMemoryLimit(r.memory));
  if (r.memorySwap !== undefined) {
    if (r.memorySwap !== -1 && !swapLimitSupported()) {
      throw new InvalidSpecOptionError(
        'resources.memorySwap',
        'this host has no swap accounting (memory.memsw.*); the runtime would fail',
      );
    }
    opts.push(withMemorySwap(r.memorySwap));
  }
  if (r.memoryReservation !== undefined) opts.push(withMemoryReservation(r.memoryReservation));
  if (r.cpus !== undefined) opts.push(withCpus(r.cpus));
  if (r.cpuShares !== undefined) opts.push(withCpuShares(r.cpuShares));
  if (r.cpusetCpus !== undefined || r.cpusetMems !== undefined)
    opts.push(withCpuset(r.cpusetCpus, r.cpusetMems));
  if (r.pidsLimit !== undefined) opts.push(withPidsLimit(r.pidsLimit));
  if (r.blkioWeight !== undefined) {
    if (!blkioWeightSupported()) {
      throw new InvalidSpecOptionError(
        'resources.blkioWeight',
        'this host has no block IO weight (no BFQ/CFQ blkio.weight file); the runtime would fail',
      );
    }
    opts.push(withBlkioWeight(r.blkioWeight));
  }
  const host = extra.hostRlimits;
  if (o.ulimits.length > 0) opts.push(withRlimits(o.ulimits, { host }));
  opts.push(withDefaultRlimits({ host }));

  // Namespaces, sysctls, cgroups.
  if (o.sysctls) opts.push(withSysctls(o.sysctls));
  for (const type of ['pid', 'network', 'ipc', 'uts'] as const) {
    const mode = ns[type];
    if (mode) opts.push(withNamespace(type, mode));
  }
  opts.push(withNamespace('cgroup', ns.cgroup ?? (cgroupV2Only() ? 'private' : 'host')));
  if (o.idMappings) opts.push(withUserNamespace(o.idMappings.uidMappings, o.idMappings.gidMappings));
  const cgroupsPath =
    o.cgroupsPath ?? (o.containerId ? cgroupsPathFor(o.containerId, { parent: o.cgroupParent }) : undefined);
  if (cgroupsPath) opts.push(withCgroupsPath(cgroupsPath));

  // Annotations, then the steps that look at the finished spec.
  opts.push(
    withAnnotations({
      'io.container.manager': 'libpod-ts',
      'org.opencontainers.image.stopSignal': String(merged.stopSignal),
      ...(o.annotations ?? {}),
    }),
  );
  opts.push(withSortedMounts());
  opts.push(withHooksFromDirs(o.hooksDirs ?? DEFAULT_HOOKS_DIRS));

  const spec = await generateSpec(defaultSpec(), ...opts);
  signal?.throwIfAborted();
  if (hasWorkdir && o.createWorkdir) {
    const created = await resolveWorkdir(rootfs, merged.workdir, { uid: user.uid, gid: user.gid });
    if (created !== cwd)
      throw new InvalidWorkdirError(
        merged.workdir,
        `changed while the spec was generated (${cwd} → ${created})`,
      );
  }
  return spec;
}
