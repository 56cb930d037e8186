/**
 * registries.conf (containers-registries.conf(5), version 2 TOML) and short-name resolution.
 *
 * Supported keys: `unqualified-search-registries`, `short-name-mode` (read, but we never prompt:
 * all candidates are returned in order and the caller tries them), `[aliases]`, and
 * `[[registry]]` tables with `prefix`, `location`, `insecure`, `blocked` and
 * `[[registry.mirror]]` (`location`, `insecure`, `pull-from-mirror`). `prefix` may be a
 * `*.example.com` wildcard. Drop-ins in `<conf>.d/*.conf` are merged in lexical order: scalar keys
 * and `[aliases]` entries override, `[[registry]]` entries with the same prefix replace.
 */
import { readdir, readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { BlockedRegistryError, ConfigError, ShortNameError } from '../errors.js';
import { DEFAULT_DOMAIN, type ImageName, isShortName, parseNormalizedNamed } from './parse.js';

const MirrorSchema = z.object({
  location: z.string().min(1),
  insecure: z.boolean().optional(),
  'pull-from-mirror': z.enum(['all', 'digest-only', 'tag-only']).optional(),
});

const RegistrySchema = z.object({
  prefix: z.string().optional(),
  location: z.string().optional(),
  insecure: z.boolean().optional(),
  blocked: z.boolean().optional(),
  'mirror-by-digest-only': z.boolean().optional(),
  mirror: z.array(MirrorSchema).optional(),
});

export const RegistriesConfSchema = z.object({
  'unqualified-search-registries': z.array(z.string()).optional(),
  'short-name-mode': z.enum(['enforcing', 'permissive', 'disabled']).optional(),
  'credential-helpers': z.array(z.string()).optional(),
  aliases: z.record(z.string(), z.string()).optional(),
  registry: z.array(RegistrySchema).optional(),
});
export type RegistriesConfFile = z.infer<typeof RegistriesConfSchema>;

export interface RegistryMirror {
  location: string;
  insecure: boolean;
  pullFromMirror: 'all' | 'digest-only' | 'tag-only';
}

export interface RegistryEntry {
  /** The namespace this entry applies to (`location` when no prefix is given). */
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: RegistryMirror[];
}

export interface RegistriesConf {
  unqualifiedSearchRegistries: string[];
  shortNameMode: 'enforcing' | 'permissive' | 'disabled';
  aliases: Record<string, string>;
  registries: RegistryEntry[];
}

export const DEFAULT_REGISTRIES_CONF = '/etc/containers/registries.conf';

export function emptyRegistriesConf(): RegistriesConf {
  return { unqualifiedSearchRegistries: [], shortNameMode: 'enforcing', aliases: {}, registries: [] };
}

/** Parses one registries.conf text; `file` is only used in error messages. */
export function parseRegistriesConf(text: string, file = 'registries.conf'): RegistriesConf {
  const conf = emptyRegistriesConf();
  mergeInto(conf, text, file);
  return conf;
}

function mergeInto(conf: RegistriesConf, text: string, file: string): void {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    throw new ConfigError(file, 'invalid TOML', { cause: err });
  }
  const r = RegistriesConfSchema.safeParse(raw);
  if (!r.success)
    throw new ConfigError(file, `invalid registries.conf: ${r.error.issues[0]?.message ?? 'schema'}`);
  const c = r.data;
  if (c['unqualified-search-registries'])
    conf.unqualifiedSearchRegistries = c['unqualified-search-registries'];
  if (c['short-name-mode']) conf.shortNameMode = c['short-name-mode'];
  for (const [k, v] of Object.entries(c.aliases ?? {})) {
    if (!isShortName(k)) throw new ConfigError(file, `alias ${JSON.stringify(k)} must be a short name`);
    conf.aliases[k] = v;
  }
  for (const reg of c.registry ?? []) {
    const prefix = reg.prefix ?? reg.location;
    if (!prefix) throw new ConfigError(file, '[[registry]] needs a prefix or a location');
    const location = reg.location ?? (prefix.startsWith('*.') ? '' : prefix);
    if (prefix.startsWith('*.') && reg.location) {
      throw new ConfigError(file, `wildcard prefix ${prefix} cannot have a location`);
    }
    const entry: RegistryEntry = {
      prefix: stripTrailingSlash(prefix),
      location: stripTrailingSlash(location),
      insecure: reg.insecure ?? false,
      blocked: reg.blocked ?? false,
      mirrors: (reg.mirror ?? []).map((m) => ({
        location: stripTrailingSlash(m.location),
        insecure: m.insecure ?? false,
        pullFromMirror: m['pull-from-mirror'] ?? (reg['mirror-by-digest-only'] ? 'digest-only' : 'all'),
      })),
    };
    const i = conf.registries.findIndex((e) => e.prefix === entry.prefix);
    if (i >= 0) conf.registries[i] = entry;
    else conf.registries.push(entry);
  }
}

function stripTrailingSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

/** Loads registries.conf and its `.d` drop-ins; a missing file yields an empty configuration. */
export async function loadRegistriesConf(path = DEFAULT_REGISTRIES_CONF): Promise<RegistriesConf> {
  const conf = emptyRegistriesConf();
  try {
    mergeInto(conf, await readFile(path, 'utf8'), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const dropDir = `${path}.d`;
  let names: string[] = [];
  try {
    names = (await readdir(dropDir)).filter((n) => n.endsWith('.conf')).sort();
  } catch {
    // No drop-in directory.
  }
  for (const n of names) mergeInto(conf, await readFile(`${dropDir}/${n}`, 'utf8'), `${dropDir}/${n}`);
  return conf;
}

/** Whether `name` (a `domain/path`) falls under `prefix` (exact repo, sub-path, or `*.domain` wildcard). */
function prefixMatches(prefix: string, name: string): boolean {
  if (prefix.startsWith('*.')) {
    const slash = name.indexOf('/');
    const host = slash === -1 ? name : name.slice(0, slash);
    return host.endsWith(prefix.slice(1));
  }
  return (
    name === prefix ||
    name.startsWith(`${prefix}/`) ||
    name.startsWith(`${prefix}:`) ||
    name.startsWith(`${prefix}@`)
  );
}

/** The `[[registry]]` entry with the longest matching prefix for `name` (`domain/path`), if any. */
export function findRegistry(conf: RegistriesConf, name: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  let bestLen = -1;
  for (const e of conf.registries) {
    if (!prefixMatches(e.prefix, name)) continue;
    const len = e.prefix.startsWith('*.') ? e.prefix.length - 2 : e.prefix.length;
    if (len > bestLen) {
      best = e;
      bestLen = len;
    }
  }
  return best;
}

/** One place to pull an image from: the rewritten reference and whether it is insecure. */
export interface PullSource {
  reference: ImageName;
  insecure: boolean;
  mirror: boolean;
}

function rewrite(ref: ImageName, prefix: string, location: string): ImageName {
  if (prefix.startsWith('*.') || !location) return ref;
  const full = ref.toString();
  const rewritten = location + full.slice(prefix.length);
  return parseNormalizedNamed(rewritten);
}

/**
 * Where to pull `ref` from, in order: mirrors (filtered by `pull-from-mirror`), then the primary
 * location. Throws BlockedRegistryError when the primary location is blocked.
 */
export function pullSources(conf: RegistriesConf, ref: ImageName): PullSource[] {
  const entry = findRegistry(conf, ref.name);
  if (!entry) return [{ reference: ref, insecure: false, mirror: false }];
  if (entry.blocked) throw new BlockedRegistryError(entry.location || entry.prefix);
  const out: PullSource[] = [];
  for (const m of entry.mirrors) {
    if (m.pullFromMirror === 'digest-only' && !ref.digest) continue;
    if (m.pullFromMirror === 'tag-only' && ref.digest) continue;
    out.push({ reference: rewrite(ref, entry.prefix, m.location), insecure: m.insecure, mirror: true });
  }
  out.push({
    reference: rewrite(ref, entry.prefix, entry.location),
    insecure: entry.insecure,
    mirror: false,
  });
  return out;
}

/** Whether `hostPort` is configured insecure (plain HTTP / unverified TLS allowed). */
export function isInsecureRegistry(conf: RegistriesConf, hostPort: string): boolean {
  const e = findRegistry(conf, `${hostPort}/x`);
  if (e && (e.location === hostPort || e.prefix === hostPort || e.prefix.startsWith('*.'))) return e.insecure;
  for (const r of conf.registries)
    for (const m of r.mirrors) if (m.location.split('/')[0] === hostPort) return m.insecure;
  return false;
}

/**
 * Resolves a name the user typed into fully qualified candidates, in the order to try them.
 * Qualified names are returned as they are. Short names: an `[aliases]` entry wins (tag/digest
 * carried over); otherwise one candidate per `unqualified-search-registries` entry. Never prompts.
 * Throws ShortNameError when a short name has no candidate.
 */
export function resolveShortName(
  conf: RegistriesConf,
  input: string,
): { candidates: ImageName[]; alias?: string } {
  if (!isShortName(input)) return { candidates: [parseNormalizedNamed(input).withDefaultTag()] };
  const parsed = parseNormalizedNamed(input); // validates the grammar
  const at = input.indexOf('@');
  const nameAndTag = at === -1 ? input : input.slice(0, at);
  const colon = nameAndTag.lastIndexOf(':');
  const bare = colon === -1 ? nameAndTag : nameAndTag.slice(0, colon);
  const alias = conf.aliases[bare];
  const carry = (n: ImageName): ImageName => {
    let r = n;
    if (parsed.tag !== undefined) r = r.withTag(parsed.tag);
    if (parsed.digest) r = r.withDigest(parsed.digest);
    return r.withDefaultTag();
  };
  if (alias) return { candidates: [carry(parseNormalizedNamed(alias).nameOnly())], alias };
  if (conf.unqualifiedSearchRegistries.length === 0) {
    throw new ShortNameError(input, 'no unqualified-search-registries are configured in registries.conf');
  }
  const candidates = conf.unqualifiedSearchRegistries.map((reg) => {
    const path = reg === DEFAULT_DOMAIN && !bare.includes('/') ? `library/${bare}` : bare;
    return carry(parseNormalizedNamed(`${reg}/${path}`).nameOnly());
  });
  return { candidates };
}
