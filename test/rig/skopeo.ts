/**
 * skopeo as the interoperability oracle: push rig-built layouts into the rig registry and read
 * images back. Until @libpod-ts/image can push, this is how tests put images into a registry.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import type { RigRegistry } from './registry.js';

export type SkopeoSide = 'src' | 'dest' | '';

/**
 * TLS and credential flags for one side of a skopeo command: `--<side>-cert-dir <certs.d/host>`
 * and `--<side>-creds user:pass`, or `--<side>-tls-verify=false` for a plain-HTTP registry.
 * Side '' gives the unprefixed flags of `skopeo inspect`.
 */
export function skopeoRegistryArgs(registry: RigRegistry, side: SkopeoSide): string[] {
  const p = side === '' ? '--' : `--${side}-`;
  const args: string[] = [];
  if (registry.tls && registry.certsDir) args.push(`${p}cert-dir`, join(registry.certsDir, registry.host));
  else args.push(`${p}tls-verify=false`);
  if (registry.auth !== 'none') args.push(`${p}creds`, `${registry.username}:${registry.password}`);
  // Never fall back to the host's auth.json: a test must not pass because of stored credentials.
  else args.push(`${p}no-creds`);
  return args;
}

/** Runs skopeo without consulting the host's signature policy. */
export async function skopeo(args: string[], opts: { signal?: AbortSignal } = {}) {
  return execa('skopeo', ['--insecure-policy', ...args], { cancelSignal: opts.signal });
}

export interface PushOptions {
  /** Repository path in the registry. Default 'rig/busybox'. */
  repo?: string;
  /** Tag in the registry. Default: the layout tag. */
  destTag?: string;
  /** Copy every manifest of an index (`--all`). Default true. */
  all?: boolean;
  /** `--format`: 'oci' keeps OCI media types, 'v2s2' converts to Docker schema 2. */
  format?: 'oci' | 'v2s2';
  /**
   * `--preserve-digests` (default true): fail rather than change a manifest, e.g. by compressing
   * uncompressed layers, so what the registry holds is byte-for-byte what the rig built.
   */
  preserveDigests?: boolean;
  signal?: AbortSignal;
}

/** Copies `oci:<layoutDir>:<tag>` to the registry; returns `<host>/<repo>:<tag>`. */
export async function pushWithSkopeo(
  layoutDir: string,
  tag: string,
  registry: RigRegistry,
  opts: PushOptions = {},
): Promise<string> {
  const ref = `${registry.host}/${opts.repo ?? 'rig/busybox'}:${opts.destTag ?? tag}`;
  const args = ['copy', '--quiet', ...skopeoRegistryArgs(registry, 'dest')];
  if (opts.all ?? true) args.push('--all');
  if (opts.format) args.push('--format', opts.format);
  if ((opts.preserveDigests ?? true) && !opts.format) args.push('--preserve-digests');
  args.push(`oci:${layoutDir}:${tag}`, `docker://${ref}`);
  await skopeo(args, opts.signal ? { signal: opts.signal } : {});
  return ref;
}

/** Copies `docker://<ref>` from the registry into `oci:<layoutDir>:<tag>`. */
export async function pullWithSkopeo(
  ref: string,
  registry: RigRegistry,
  layoutDir: string,
  tag: string,
  opts: { all?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  // Uncompressed layers stay uncompressed and digests unchanged (oracle comparisons need that).
  const args = ['copy', '--quiet', '--preserve-digests', '--dest-oci-accept-uncompressed-layers'];
  args.push(...skopeoRegistryArgs(registry, 'src'));
  if (opts.all ?? true) args.push('--all');
  args.push(`docker://${ref}`, `oci:${layoutDir}:${tag}`);
  await skopeo(args, opts.signal ? { signal: opts.signal } : {});
}

/** `skopeo inspect --raw` (raw=true) or the parsed summary of `docker://<ref>`. */
export async function inspectWithSkopeo(
  ref: string,
  registry: RigRegistry,
  opts: { raw?: boolean; signal?: AbortSignal } = {},
): Promise<Record<string, unknown>> {
  const args = ['inspect', ...skopeoRegistryArgs(registry, '')];
  if (opts.raw) args.push('--raw');
  args.push(`docker://${ref}`);
  const { stdout } = await skopeo(args, opts.signal ? { signal: opts.signal } : {});
  return JSON.parse(stdout) as Record<string, unknown>;
}
