import { z } from 'zod';

/**
 * Container status, as Podman names them. State machine:
 *   configured -> created (runtime create through conmon) -> running (start) <-> paused
 *   running -> stopped (process exited, conmon wrote the exit file) -> exited (cleaned up by the exit hook)
 *   created|stopped|exited -> running (start / restart); any -> removing -> (record deleted)
 */
export const ContainerStatus = z.enum([
  'configured',
  'created',
  'running',
  'paused',
  'stopped',
  'exited',
  'removing',
]);
export type ContainerStatus = z.infer<typeof ContainerStatus>;

export const RestartPolicy = z.object({
  name: z.enum(['no', 'on-failure', 'always', 'unless-stopped']),
  maxRetries: z.number().int().nonnegative().default(0),
});
export type RestartPolicy = z.infer<typeof RestartPolicy>;

export const ContainerState = z.object({
  status: ContainerStatus,
  pid: z.number().int().default(0),
  conmonPid: z.number().int().default(0),
  exitCode: z.number().int().default(0),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  oomKilled: z.boolean().default(false),
  restartCount: z.number().int().default(0),
  /** Set by stop()/kill() so restart policies other than `always` do not restart it. */
  stoppedByUser: z.boolean().default(false),
  error: z.string().optional(),
  /**
   * pid of a `run()` that will read the output and remove an `rm` container itself; while it
   * lives, exit handling leaves the container for it (its log must outlive the exit).
   */
  waiterPid: z.number().int().optional(),
  /** Exec sessions still running, by session id. */
  execSessions: z
    .record(z.string(), z.object({ pid: z.number().int(), command: z.array(z.string()) }))
    .default({}),
});
export type ContainerState = z.infer<typeof ContainerState>;

/** What the lifecycle persists for one container: `<root>/containers/<id>/container.json`. */
export const ContainerRecord = z.object({
  version: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  created: z.string(),
  /** Image reference the user asked for, and its resolved id; absent for rootfs containers. */
  image: z.string().optional(),
  imageId: z.string().optional(),
  /** Absolute path of the root filesystem the runtime uses (user directory or storage mount). */
  rootfs: z.string(),
  rootfsSource: z.enum(['directory', 'storage']),
  /** Storage-side container (writable layer) id when rootfsSource is `storage`. */
  storageId: z.string().optional(),
  command: z.array(z.string()),
  entrypoint: z.array(z.string()).default([]),
  env: z.array(z.string()).default([]),
  workingDir: z.string().default('/'),
  user: z.string().default(''),
  hostname: z.string().default(''),
  tty: z.boolean().default(false),
  stdin: z.boolean().default(false),
  labels: z.record(z.string(), z.string()).default({}),
  annotations: z.record(z.string(), z.string()).default({}),
  stopSignal: z.string().default('SIGTERM'),
  stopTimeout: z.number().int().nonnegative().default(10),
  restartPolicy: RestartPolicy.default({ name: 'no', maxRetries: 0 }),
  autoRemove: z.boolean().default(false),
  logPath: z.string(),
  /** The runtime that created it (path); the same runtime must be used for its whole life. */
  runtime: z.string(),
  /**
   * The process args and cgroups path of the OCI runtime spec. The full spec (large: seccomp)
   * lives in `<root>/containers/<id>/spec.json`, written once at create, so records stay small
   * and listing thousands is cheap.
   */
  args: z.array(z.string()),
  cgroupsPath: z.string(),
  readonlyRootfs: z.boolean().default(false),
  hostConfig: z.record(z.string(), z.unknown()).default({}),
  network: z
    .object({
      mode: z.string(),
      netnsPath: z.string().optional(),
      /** Names, or `{ name, ip?, mac?, aliases? }` as `@libpod-ts/network` takes them. */
      networks: z
        .array(z.union([z.string(), z.object({ name: z.string() }).catchall(z.unknown())]))
        .default([]),
      /**
       * Disconnected from every network (podman: then it behaves like `--network none` until a
       * connect): the next start makes its own netns with loopback only. Without it an empty
       * `networks` means the default network.
       */
      disconnected: z.boolean().optional(),
      /** Port mappings as `@libpod-ts/network` takes them (validated there). */
      ports: z.array(z.record(z.string(), z.unknown())).default([]),
      /** resolv.conf options (`dns`, `dnsSearch`, `dnsOptions`) and `--add-host` entries. */
      dns: z.record(z.string(), z.array(z.string())).optional(),
      addHosts: z.array(z.string()).default([]),
      /** What the last setup attached (addresses, MACs, published ports); cleared at exit. */
      status: z
        .object({
          interfaces: z.array(
            z.object({
              network: z.string(),
              ifName: z.string(),
              mac: z.string().optional(),
              addresses: z.array(z.string()),
              gateways: z.array(z.string()),
              aliases: z.array(z.string()).default([]),
            }),
          ),
          ports: z.array(
            z.object({
              hostIp: z.string().optional(),
              hostPort: z.number(),
              containerPort: z.number(),
              protocol: z.string(),
            }),
          ),
        })
        .optional(),
    })
    .optional(),
  state: ContainerState,
});
export type ContainerRecord = z.infer<typeof ContainerRecord>;
