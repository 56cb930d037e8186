import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';
import { NAME_PATTERN } from './names.js';
import type { RestartPolicy } from './record.js';

/** A container name (Podman's rule). */
export const ContainerName = z
  .string()
  .regex(NAME_PATTERN, 'names start with a letter or digit, then [a-zA-Z0-9_.-]')
  .max(253);

const stringMap = z.record(z.string(), z.string());

/** `no`, `on-failure`, `on-failure:N`, `always`, `unless-stopped` (Podman's --restart syntax). */
export const RestartPolicyString = z
  .string()
  .regex(
    /^(no|always|unless-stopped|on-failure(:\d+)?)$/,
    'expected no, on-failure[:N], always or unless-stopped',
  );

export function parseRestartPolicy(s: string | undefined): RestartPolicy {
  if (!s || s === 'no') return { name: 'no', maxRetries: 0 };
  const [name, n] = s.split(':');
  return { name: name as RestartPolicy['name'], maxRetries: n ? Number.parseInt(n, 10) : 0 };
}

/**
 * Options of `containers.create` (and `run`). Exactly one of `rootfs` (an exploded root
 * filesystem directory, used in place) or `image` (a stored image: a writable layer is made).
 */
export const ContainerCreateOptions = z
  .object({
    name: ContainerName.optional(),
    rootfs: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    command: z.array(z.string()).optional(),
    entrypoint: z.array(z.string()).optional(),
    env: z.union([stringMap, z.array(z.string().regex(/^[^=]+=/, 'expected KEY=value'))]).optional(),
    workingDir: z.string().startsWith('/', 'must be absolute').optional(),
    /** `uid[:gid]` numbers, or names resolved from the image's /etc/passwd and /etc/group. */
    user: z.string().optional(),
    hostname: z.string().max(64).optional(),
    tty: z.boolean().default(false),
    /** Keep stdin open (for attach). */
    stdin: z.boolean().default(false),
    labels: stringMap.default({}),
    annotations: stringMap.default({}),
    stopSignal: z
      .union([z.string().regex(/^(SIG)?[A-Z0-9+-]+$/), z.number().int().min(1).max(64)])
      .optional(),
    /** Seconds to wait after the stop signal before SIGKILL (Podman default 10). */
    stopTimeout: z.number().int().nonnegative().default(10),
    restartPolicy: RestartPolicyString.default('no'),
    /** Remove the container (record, bundle, log, layer) once it exits. */
    rm: z.boolean().default(false),
    readOnly: z.boolean().default(false),
    /**
     * `none` (own netns with loopback only, the default), `host`, `bridge` (network package),
     * `container:<id|name>` (join that container's netns and share its /etc/hosts and
     * /etc/resolv.conf, as podman), or `ns:<path>` (join an existing netns by path).
     */
    network: z
      .union([
        z.enum(['none', 'host', 'bridge']),
        z.string().regex(/^container:[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'expected container:<id|name>'),
        z.string().regex(/^ns:\/[^\0]*$/, 'expected ns:<absolute path>'),
      ])
      .default('none'),
    /**
     * Networks of a `bridge` container (default: the default network), by name or with a static
     * `ip`/`mac` and `aliases` other containers on that network resolve (validated by the network package).
     */
    networks: z
      .array(
        z.union([
          z.string().min(1),
          z
            .object({
              name: z.string().min(1),
              ip: z.string().optional(),
              mac: z.string().optional(),
              aliases: z.array(z.string()).optional(),
            })
            .strict(),
        ]),
      )
      .default([]),
    /** Nameservers replacing the host's in /etc/resolv.conf (podman --dns). */
    dns: z.array(z.string()).optional(),
    /** Search domains replacing the host's; `['.']` for none (podman --dns-search). */
    dnsSearch: z.array(z.string()).optional(),
    /** Resolver options replacing the host's (podman --dns-option). */
    dnsOptions: z.array(z.string()).optional(),
    /** `name:ip` lines for /etc/hosts (podman --add-host). */
    addHosts: z.array(z.string()).default([]),
    /** Published ports (bridge only): `{ containerPort, hostPort?, hostIp?, protocol?, range? }`. */
    ports: z
      .array(
        z
          .object({
            containerPort: z.number().int().min(1).max(65535),
            hostPort: z.number().int().min(0).max(65535).optional(),
            hostIp: z.string().optional(),
            protocol: z.enum(['tcp', 'udp']).optional(),
            range: z.number().int().min(1).max(65535).optional(),
          })
          .strict(),
      )
      .default([]),
    /**
     * Options for the runtime spec generator (`@libpod-ts/core/spec` CreateOptions): mounts,
     * resources, capabilities... Validated by the generator's own schema.
     */
    spec: z.record(z.string(), z.unknown()).optional(),
    /** A complete OCI runtime config to use verbatim (root.path is set to the rootfs). */
    ociConfig: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((o) => (o.rootfs === undefined) !== (o.image === undefined), {
    message: 'exactly one of rootfs or image is required',
    path: ['rootfs'],
  })
  .superRefine((o, ctx) => {
    // A joined netns is configured by whoever made it (podman refuses these too).
    const joined = o.network.startsWith('container:') ? 'container' : o.network.startsWith('ns:') ? 'ns' : '';
    if (!joined) return;
    const refused: (keyof typeof o)[] = ['ports', 'networks'];
    if (joined === 'container') refused.push('dns', 'dnsSearch', 'dnsOptions', 'addHosts');
    for (const k of refused) {
      const v = o[k];
      if (v !== undefined && (!Array.isArray(v) || v.length > 0))
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `cannot be set with network ${joined === 'container' ? 'container:<...>' : 'ns:<path>'}`,
        });
    }
  });
export type ContainerCreateOptions = z.input<typeof ContainerCreateOptions>;
export type ParsedCreateOptions = z.output<typeof ContainerCreateOptions>;

/** Parses with a schema, turning zod issues into InvalidOptionsError naming each field. */
export function parseOptions<S extends z.ZodType>(schema: S, what: string, input: unknown): z.output<S> {
  const res = schema.safeParse(input);
  if (!res.success) {
    throw new InvalidOptionsError(
      what,
      res.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      res.error,
    );
  }
  return res.data;
}

export function envList(env: ParsedCreateOptions['env']): string[] {
  if (!env) return [];
  return Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
