/**
 * Merging an image's config with the caller's options, as Docker does:
 *
 * | options.entrypoint | options.command | process.args                       |
 * |--------------------|-----------------|------------------------------------|
 * | not given          | not given       | image Entrypoint + image Cmd       |
 * | not given          | given           | image Entrypoint + command         |
 * | given, non-empty   | not given       | entrypoint (image Cmd is dropped)  |
 * | given, non-empty   | given           | entrypoint + command               |
 * | given, empty       | not given       | nothing → NoCommandError           |
 * | given, empty       | given           | command                            |
 *
 * (`command: []` counts as not given, as in Docker; an entrypoint given as a string is one
 * argument.) Env: the image's, then the caller's overriding by key. Workdir, user and stop
 * signal: the caller's, else the image's. Labels and exposed ports: the union, the caller's
 * winning. Volumes: the image's, each checked (no `..`, absolute).
 */
import { z } from 'zod';
import { InvalidSpecOptionError } from '../errors.js';
import { checkContainerPath } from './opts/mounts.js';
import { splitEnv } from './opts/process.js';
import { parseSignal } from './signals.js';

/**
 * The part of an OCI/Docker image configuration that affects a container (image-spec
 * `config.md`, the `config` object). Docker's nulls are accepted. Unknown fields are ignored.
 */
export const ImageRuntimeConfigSchema = z
  .object({
    User: z.string().nullish(),
    ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
    Env: z.array(z.string()).nullish(),
    Entrypoint: z.array(z.string()).nullish(),
    Cmd: z.array(z.string()).nullish(),
    Volumes: z.record(z.string(), z.unknown()).nullish(),
    WorkingDir: z.string().nullish(),
    Labels: z.record(z.string(), z.string()).nullish(),
    StopSignal: z.string().nullish(),
  })
  .loose();
export type ImageRuntimeConfig = z.input<typeof ImageRuntimeConfigSchema>;

/** A whole image configuration document; only its `config` is used. */
export interface ImageConfigDocument {
  config?: ImageRuntimeConfig | null;
}

/** What the merge needs from the caller's options (a subset of CreateOptions). */
export interface MergeOptions {
  command?: readonly string[];
  entrypoint?: readonly string[] | string;
  env?: Readonly<Record<string, string>>;
  workdir?: string;
  user?: string;
  labels?: Readonly<Record<string, string>>;
  stopSignal?: string | number;
  expose?: readonly (string | number)[];
}

/** The container's effective configuration: what it runs and what inspect shows. */
export interface MergedConfig {
  /** process.args before any init wrapper. */
  args: string[];
  entrypoint: string[];
  command: string[];
  /** `KEY=VALUE`, image first, caller overriding (no engine defaults such as PATH/HOSTNAME). */
  env: string[];
  /** As configured (may be relative in old images, or empty: `/`). */
  workdir: string;
  /** `user[:group]`, empty for the image default (root). */
  user: string;
  labels: Record<string, string>;
  stopSignal: number;
  /** `port/proto`, sorted. */
  exposedPorts: string[];
  /** Normalized destinations of the image's VOLUMEs. */
  volumes: string[];
}

/** Accept an image config document (`{config: {...}}`) or its `config` object. */
export function imageRuntimeConfig(image: ImageConfigDocument | ImageRuntimeConfig | undefined) {
  const raw =
    image &&
    typeof image === 'object' &&
    'config' in image &&
    (image as ImageConfigDocument).config !== undefined
      ? (image as ImageConfigDocument).config
      : (image as ImageRuntimeConfig | undefined);
  const r = ImageRuntimeConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    throw new InvalidSpecOptionError('image config', `${i?.path.join('.')}: ${i?.message}`, {
      cause: r.error,
    });
  }
  return r.data;
}

/** Normalize `80`, `80/tcp`, `53/UDP` to `port/proto`. */
export function normalizePort(p: string | number): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(String(p));
  const port = m ? Number(m[1]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new InvalidSpecOptionError('exposed port', `${JSON.stringify(p)} is not port[/proto]`);
  return `${port}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

/** The image's VOLUME destinations, normalized; `..` or relative paths are refused (CVE-2022-23648). */
export function imageVolumes(image: ImageConfigDocument | ImageRuntimeConfig | undefined): string[] {
  const cfg = imageRuntimeConfig(image);
  return [...new Set(Object.keys(cfg.Volumes ?? {}).map((v) => checkContainerPath(v, 'image volume')))];
}

/** Merge image config and options (see the module comment for the rules). */
export function mergeImageConfig(
  image: ImageConfigDocument | ImageRuntimeConfig | undefined,
  opts: MergeOptions = {},
): MergedConfig {
  const cfg = imageRuntimeConfig(image);
  // A NUL cannot cross execve(2): refuse it here with a clear error rather than in the runtime.
  for (const [field, list] of [
    ['Entrypoint', cfg.Entrypoint],
    ['Cmd', cfg.Cmd],
    ['Env', cfg.Env],
  ] as const) {
    if (list?.some((s) => s.includes('\0')))
      throw new InvalidSpecOptionError(`image ${field}`, 'contains a NUL byte');
  }
  const userCmd = opts.command && opts.command.length > 0 ? [...opts.command] : undefined;
  let entrypoint: string[];
  let command: string[];
  if (opts.entrypoint !== undefined) {
    const ep =
      typeof opts.entrypoint === 'string'
        ? opts.entrypoint === ''
          ? []
          : [opts.entrypoint]
        : [...opts.entrypoint];
    entrypoint = ep.length === 1 && ep[0] === '' ? [] : ep;
    command = userCmd ?? [];
  } else {
    entrypoint = [...(cfg.Entrypoint ?? [])];
    command = userCmd ?? [...(cfg.Cmd ?? [])];
  }

  const env = new Map((cfg.Env ?? []).map(splitEnv));
  for (const [k, v] of Object.entries(opts.env ?? {})) env.set(k, v);

  const stop = opts.stopSignal ?? cfg.StopSignal ?? 'SIGTERM';
  const ports = new Set<string>();
  for (const p of Object.keys(cfg.ExposedPorts ?? {})) ports.add(normalizePort(p));
  for (const p of opts.expose ?? []) ports.add(normalizePort(p));

  return {
    args: [...entrypoint, ...command],
    entrypoint,
    command,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    workdir: opts.workdir || cfg.WorkingDir || '',
    user: opts.user || cfg.User || '',
    labels: { ...(cfg.Labels ?? {}), ...(opts.labels ?? {}) },
    stopSignal: parseSignal(stop, 'stopSignal'),
    exposedPorts: [...ports].sort(),
    volumes: imageVolumes(cfg),
  };
}
