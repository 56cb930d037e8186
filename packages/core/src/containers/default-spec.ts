/**
 * A minimal OCI runtime config for containers whose caller did not supply one, used until (and
 * where) the spec generator (`../spec`) is not wired in. Podman's default capability set,
 * mounts and masked paths; no rlimits (inherited, so nothing exceeds the host's hard limits).
 */
export interface MinimalSpecOptions {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname: string;
  terminal: boolean;
  cgroupsPath: string;
  readonlyRootfs?: boolean;
  annotations?: Record<string, string>;
}

const CAPS = [
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

export function minimalSpec(o: MinimalSpecOptions): Record<string, unknown> {
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: o.terminal,
      user: {
        uid: o.uid,
        gid: o.gid,
        ...(o.additionalGids?.length ? { additionalGids: o.additionalGids } : {}),
      },
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      noNewPrivileges: false,
    },
    root: { path: o.rootfs, readonly: o.readonlyRootfs ?? false },
    hostname: o.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/dev/mqueue',
        type: 'mqueue',
        source: 'mqueue',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
    ],
    annotations: o.annotations ?? {},
    linux: {
      cgroupsPath: o.cgroupsPath,
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
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
      ],
      readonlyPaths: [
        '/proc/asound',
        '/proc/bus',
        '/proc/fs',
        '/proc/irq',
        '/proc/sys',
        '/proc/sysrq-trigger',
      ],
    },
  };
}
