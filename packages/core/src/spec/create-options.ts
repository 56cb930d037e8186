/**
 * The high-level options of a container (what `podman create` flags express), validated with
 * zod: an invalid option is rejected with an InvalidOptionsError naming the field.
 * Host-side inputs prepared by the engine (container id, /etc files it wrote, cgroups path)
 * live here too, so that one object fully determines the spec.
 */
import path from 'node:path';
import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';
import { normalizeCapability } from './opts/security.js';
import { RLIMIT_NAMES } from './rlimits.js';
import { parseSignal } from './signals.js';

const noNul = (s: string) => !s.includes('\0');
const AbsPath = z
  .string()
  .min(1)
  .refine((p) => path.posix.isAbsolute(p) && noNul(p), 'must be an absolute path');
/** A path inside the container: absolute, without `..` components (CVE-2022-23648). */
const ContainerPath = AbsPath.refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

const Capability = z.string().refine((c) => {
  try {
    normalizeCapability(c);
    return true;
  } catch {
    return false;
  }
}, 'unknown capability');

const Signal = z.union([z.string(), z.number()]).refine((s) => {
  try {
    parseSignal(s);
    return true;
  } catch {
    return false;
  }
}, 'not a signal name or number');

const Propagation = z.enum([
  'private',
  'rprivate',
  'shared',
  'rshared',
  'slave',
  'rslave',
  'unbindable',
  'runbindable',
]);
const MountOptionList = z.array(z.string().regex(/^[a-z0-9_=.,:+-]+$/i, 'not a mount option')).optional();

export const BindMountSchema = z.strictObject({
  type: z.literal('bind'),
  source: AbsPath,
  destination: ContainerPath,
  readOnly: z.boolean().optional(),
  propagation: Propagation.optional(),
  recursive: z.boolean().optional(),
  options: MountOptionList,
});

export const TmpfsMountSchema = z.strictObject({
  type: z.literal('tmpfs'),
  destination: ContainerPath,
  size: z.number().int().positive().optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
  /** Copy the image's content at the destination into the tmpfs (default true, as Podman). */
  copyUp: z.boolean().optional(),
  options: MountOptionList,
});

/** A named or anonymous volume: `source` is the host directory holding its data (the volumes layer provides it). */
export const VolumeMountSchema = z.strictObject({
  type: z.literal('volume'),
  name: z.string().optional(),
  source: AbsPath,
  destination: ContainerPath,
  readOnly: z.boolean().optional(),
  options: MountOptionList,
});

export const MountSchema = z.discriminatedUnion('type', [
  BindMountSchema,
  TmpfsMountSchema,
  VolumeMountSchema,
]);
export type MountOption = z.infer<typeof MountSchema>;

const NamespaceMode = z.union([z.enum(['private', 'host']), z.strictObject({ path: AbsPath })]);

const IdMapping = z.strictObject({
  containerID: z.number().int().min(0).max(0xffffffff),
  hostID: z.number().int().min(0).max(0xffffffff),
  size: z.number().int().min(1).max(0xffffffff),
});

const Bytes = z.number().int().positive();

export const ResourcesSchema = z
  .strictObject({
    /** Memory limit in bytes (≥ 6 MiB). */
    memory: Bytes.min(6 * 1024 * 1024).optional(),
    /** Memory + swap in bytes, -1 for unlimited swap. */
    memorySwap: z.number().int().min(-1).optional(),
    memoryReservation: Bytes.optional(),
    /** Number of CPUs (quota over a 100 ms period). */
    cpus: z.number().positive().optional(),
    cpuShares: z.number().int().min(2).max(262144).optional(),
    cpusetCpus: z
      .string()
      .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/)
      .optional(),
    cpusetMems: z
      .string()
      .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/)
      .optional(),
    /** Max tasks; 0 or -1 for unlimited (default 2048). */
    pidsLimit: z.number().int().min(-1).optional(),
    blkioWeight: z.number().int().min(10).max(1000).optional(),
  })
  .refine(
    (r) =>
      r.memorySwap === undefined || r.memorySwap === -1 || r.memory === undefined || r.memorySwap >= r.memory,
    { message: 'must be at least the memory limit', path: ['memorySwap'] },
  )
  .refine((r) => r.memorySwap === undefined || r.memorySwap === -1 || r.memory !== undefined, {
    message: 'needs a memory limit',
    path: ['memorySwap'],
  });

export const UlimitSchema = z
  .strictObject({
    name: z
      .string()
      .refine((n) => RLIMIT_NAMES[n.toLowerCase().replace(/^rlimit_/, '')] !== undefined, 'unknown limit'),
    soft: z.number().int().min(0),
    hard: z.number().int().min(0),
  })
  .refine((u) => u.soft <= u.hard, { message: 'soft limit above hard limit', path: ['soft'] });

export const DeviceSchema = z.strictObject({
  path: AbsPath,
  containerPath: ContainerPath.optional(),
  permissions: z
    .string()
    .regex(/^[rwm]{1,3}$/)
    .optional(),
});

const EnvName = z.string().regex(/^[^=\0]+$/, 'variable names must not be empty or contain "="');

export const CreateOptionsSchema = z.strictObject({
  // --- what runs ---
  /** Overrides the image's Cmd (empty array = not given). */
  command: z.array(z.string().refine(noNul, 'contains NUL')).optional(),
  /** Overrides the image's Entrypoint; `""` or `[]` clears it (and the image's Cmd). */
  entrypoint: z.union([z.string(), z.array(z.string())]).optional(),
  env: z.record(EnvName, z.string().refine(noNul, 'contains NUL')).optional(),
  workdir: AbsPath.optional(),
  /** `user`, `uid`, `user:group`, `uid:gid`, resolved in the image's /etc/passwd and /etc/group. */
  user: z
    .string()
    .regex(/^[^\0\n:]*(:[^\0\n:]*)?$/, 'must be user[:group]')
    .optional(),
  /** Supplementary groups (names or gids). */
  groups: z.array(z.string().min(1)).optional(),
  tty: z.boolean().optional(),
  /** Create the working directory in the rootfs when missing (default true). */
  createWorkdir: z.boolean().default(true),

  // --- identity ---
  hostname: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})?$/, 'not a valid host name')
    .optional(),
  domainname: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  stopSignal: Signal.optional(),
  expose: z.array(z.union([z.string(), z.number()])).optional(),

  // --- security ---
  privileged: z.boolean().default(false),
  readOnly: z.boolean().default(false),
  /** With readOnly: tmpfs on /run, /tmp and /var/tmp (Podman's --read-only-tmpfs, default true). */
  readOnlyTmpfs: z.boolean().default(true),
  capAdd: z.array(Capability).default([]),
  capDrop: z.array(Capability).default([]),
  noNewPrivileges: z.boolean().default(false),
  /** `unconfined`, or an absolute path to a seccomp.json; default: the built-in profile. */
  seccompProfile: z
    .string()
    .refine((s) => s === 'unconfined' || path.posix.isAbsolute(s), 'must be "unconfined" or an absolute path')
    .optional(),
  umask: z.number().int().min(0).max(0o777).optional(),
  oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),

  // --- filesystem ---
  mounts: z.array(MountSchema).default([]),
  /** What to do with the image's VOLUMEs that no mount covers (Podman's --image-volume). */
  imageVolume: z.enum(['anonymous', 'tmpfs', 'ignore']).default('anonymous'),
  devices: z.array(DeviceSchema).default([]),
  /** /dev/shm size in bytes (default 64 MiB). Ignored with shmPath. */
  shmSize: Bytes.optional(),

  // --- resources ---
  resources: ResourcesSchema.optional(),
  ulimits: z.array(UlimitSchema).default([]),

  // --- pid 1 ---
  /** Run catatonit/tini as PID 1. */
  init: z.boolean().default(false),
  /** The init binary on the host (default: found by findInitBinary). */
  initPath: AbsPath.optional(),

  // --- linux ---
  sysctls: z.record(z.string(), z.string()).optional(),
  namespaces: z
    .strictObject({
      pid: NamespaceMode.optional(),
      network: NamespaceMode.optional(),
      ipc: NamespaceMode.optional(),
      uts: NamespaceMode.optional(),
      cgroup: NamespaceMode.optional(),
    })
    .optional(),
  /** A new user namespace with these mappings. */
  idMappings: z
    .strictObject({ uidMappings: z.array(IdMapping).min(1), gidMappings: z.array(IdMapping).min(1) })
    .optional(),
  /** OCI hook directories in increasing precedence (oci-hooks(5)); default Podman's two. */
  hooksDirs: z.array(AbsPath).optional(),

  // --- prepared by the engine ---
  /** The container id: default hostname (first 12 characters) and cgroups path. */
  containerId: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .optional(),
  /** Explicit linux.cgroupsPath; default `<cgroupParent>/libpod-<containerId>` when containerId is set. */
  cgroupsPath: z.string().optional(),
  /** cgroupfs parent (default /libpod_parent). */
  cgroupParent: AbsPath.optional(),
  /** Host files bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv. */
  etcFiles: z
    .strictObject({
      hosts: AbsPath.optional(),
      resolvConf: AbsPath.optional(),
      hostname: AbsPath.optional(),
      containerEnv: AbsPath.optional(),
    })
    .optional(),
  /** A host tmpfs to bind at /dev/shm instead of a private one (shared IPC). */
  shmPath: AbsPath.optional(),
});

/** Options as the caller writes them (defaults optional). */
export type CreateOptionsInput = z.input<typeof CreateOptionsSchema>;
/** Options after validation, defaults filled in. */
export type CreateOptions = z.output<typeof CreateOptionsSchema>;

/** Validate options; throws InvalidOptionsError whose `issues` name each bad field. */
export function parseCreateOptions(input: unknown): CreateOptions {
  const r = CreateOptionsSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new InvalidOptionsError('create options', issues, r.error);
}
