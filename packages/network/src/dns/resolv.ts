import { z } from 'zod';
import { parseIp } from '../ip/cidr.js';

export const DnsOptionsSchema = z.object({
  /** Nameservers replacing the host's (podman --dns). */
  dns: z.array(z.string().refine((s) => parseIp(s) !== undefined, 'must be an IP address')).optional(),
  /** Search domains replacing the host's; ['.'] means none (podman --dns-search). */
  dnsSearch: z
    .array(z.string().regex(/^(\.|[a-zA-Z0-9_]([a-zA-Z0-9_.-]{0,252}))$/, 'must be a domain'))
    .optional(),
  /** Resolver options replacing the host's (podman --dns-option). No whitespace: one option each. */
  dnsOptions: z.array(z.string().regex(/^[a-zA-Z0-9_.:-]{1,64}$/, 'must be one resolver option')).optional(),
});
export type DnsOptions = z.infer<typeof DnsOptionsSchema>;

export interface ParsedResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

/** Parses resolv.conf: nameserver, search/domain (last wins, as in glibc), options. */
export function parseResolvConf(text: string): ParsedResolvConf {
  const out: ParsedResolvConf = { nameservers: [], search: [], options: [] };
  for (const line of text.split('\n')) {
    const f = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) out.nameservers.push(f[1]);
    else if (f[0] === 'search' || f[0] === 'domain') out.search = f.slice(1).filter(Boolean);
    else if (f[0] === 'options') out.options.push(...f.slice(1).filter(Boolean));
  }
  return out;
}

function isLoopback(ns: string): boolean {
  const ip = parseIp(ns.replace(/%.*$/, ''));
  if (!ip) return false;
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}

/** podman's fallback when nothing usable is left (written into the file only). */
const FALLBACK_V4 = ['8.8.8.8', '8.8.4.4'];
const FALLBACK_V6 = ['2001:4860:4860::8888', '2001:4860:4860::8844'];

/**
 * The container's resolv.conf, by podman's rules: `dns` replaces the host's nameservers; without
 * it, the host's are used minus loopback ones (127.x, ::1) when the container has its own netns
 * (they would point at the container itself), minus IPv6 ones when it has no IPv6; when none is
 * left, podman's public fallback is written. Search domains and options likewise.
 */
export function renderResolvConf(
  host: ParsedResolvConf,
  o: DnsOptions & { ownNetns: boolean; ipv6: boolean },
): string {
  let ns = o.dns?.length ? [...o.dns] : host.nameservers.filter((n) => !(o.ownNetns && isLoopback(n)));
  if (!o.dns?.length && !o.ipv6) ns = ns.filter((n) => parseIp(n.replace(/%.*$/, ''))?.family !== 6);
  if (ns.length === 0) ns = o.ipv6 ? [...FALLBACK_V4, ...FALLBACK_V6] : [...FALLBACK_V4];
  const search = o.dnsSearch?.length ? (o.dnsSearch.includes('.') ? [] : o.dnsSearch) : host.search;
  const options = o.dnsOptions?.length ? o.dnsOptions : host.options;
  const lines: string[] = [];
  if (search.length) lines.push(`search ${search.join(' ')}`);
  for (const n of ns) lines.push(`nameserver ${n}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
