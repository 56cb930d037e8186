/**
 * Podman 4.3's defaults for a root container (containers.conf defaults as shipped in
 * containers-common, checked against `podman create` + `podman init` on this host; see
 * docs/decisions/runtime-spec.md for the differences we keep on purpose).
 */
import type { Mount, Spec } from './types.js';

/** The runtime-spec version we write. runc 1.1 and crun accept any 1.0.x/1.1.x. */
export const OCI_VERSION = '1.0.2';

/** containers.conf `default_capabilities`, sorted like Podman writes them. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

/** Every capability Linux defines, indexed by its number (capability.h). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** Paths hidden from the container (bind of /dev/null or an empty ro tmpfs by the runtime). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/fs/selinux',
  '/sys/dev/block',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** containers.conf's default PATH, used when neither the image nor the caller sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Value of the `container` env var. Podman sets `container=podman`; systemd and others read it. */
export const CONTAINER_ENV_VALUE = 'libpod-ts';

/** containers.conf `pids_limit`. */
export const DEFAULT_PIDS_LIMIT = 2048;

/** Docker's and Podman's /dev/shm size. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** containers.conf `default_sysctls`: unprivileged ICMP sockets (only with a private netns). */
export const DEFAULT_SYSCTLS: Readonly<Record<string, string>> = { 'net.ipv4.ping_group_range': '0 0' };

/**
 * containers.conf `default_ulimits` as Podman applies them for root when nothing is configured
 * (nofile and nproc at 1048576). They are clamped to the host's hard limits before use
 * (see rlimits.ts): on a host without CAP_SYS_RESOURCE, asking for more fails at container start.
 */
export const DEFAULT_RLIMITS: readonly { type: string; soft: number; hard: number }[] = [
  { type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 },
  { type: 'RLIMIT_NPROC', soft: 1048576, hard: 1048576 },
];

/** Where the init binary (catatonit/tini) is bind-mounted inside the container. */
export const INIT_PATH_IN_CONTAINER = '/run/libpod-ts-init';

/** The pseudo-filesystem mounts every container gets, in Podman's order. */
export function defaultMounts(shmSize: number = DEFAULT_SHM_SIZE): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=65536k'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    shmMount(shmSize),
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
}

/**
 * /dev/shm as a tmpfs of the given size. Podman binds a tmpfs it mounted on the host (so that
 * containers sharing an IPC namespace share it); `withShmBind()` does that when the caller has one.
 */
export function shmMount(size: number): Mount {
  return {
    destination: '/dev/shm',
    type: 'tmpfs',
    source: 'shm',
    options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${size}`],
  };
}

/**
 * The base spec Podman would generate for `podman create --rootfs <rootfs>` as root, before any
 * image or option is applied: default capabilities, masked and read-only paths, default mounts,
 * new pid/network/ipc/uts/mount namespaces, the devices cgroup denying everything (the runtime
 * adds /dev/null, zero, full, random, urandom, tty, ptmx and allows them itself, as the
 * runtime-spec requires), the default pids limit and sysctls. No seccomp profile: that depends
 * on the final capability set, so `specFromImage` / `withDefaultSeccomp()` add it last.
 * Returns a fresh object on each call.
 */
export function defaultSpec(): Spec {
  const caps = [...DEFAULT_CAPABILITIES];
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, umask: 0o022 },
      args: [],
      env: [`PATH=${DEFAULT_PATH}`, 'TERM=xterm', `container=${CONTAINER_ENV_VALUE}`],
      cwd: '/',
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    },
    root: { path: 'rootfs' },
    mounts: defaultMounts(),
    annotations: {},
    linux: {
      sysctl: { ...DEFAULT_SYSCTLS },
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        pids: { limit: DEFAULT_PIDS_LIMIT },
      },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}
