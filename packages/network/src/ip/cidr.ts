/**
 * IP addresses and CIDR subnets as bigints, for validation, overlap checks and address picking.
 *
 * Grammar accepted (strict, no zone ids, no leading zeros in IPv4 octets):
 *   ipv4   = d "." d "." d "." d        (d = 0..255, decimal)
 *   ipv6   = RFC 4291 text form, with at most one "::" and an optional trailing dotted IPv4
 *   cidr   = (ipv4 "/" 0..32) | (ipv6 "/" 0..128)
 */

export interface IpAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  /** The network address (host bits cleared). */
  readonly network: bigint;
  readonly prefix: number;
}

const V4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseV4(s: string): bigint | undefined {
  if (!V4_RE.test(s)) return undefined;
  let v = 0n;
  for (const part of s.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function parseV6(input: string): bigint | undefined {
  if (input.length > 45 || !/^[0-9a-fA-F:.]+$/.test(input)) return undefined;
  let s = input;
  if (s.includes('.')) {
    // A trailing dotted IPv4 part stands for the last two 16-bit groups.
    const lastColon = s.lastIndexOf(':');
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let groups: bigint[];
  if (halves.length === 2) {
    if (head.length + rest.length > 7) return undefined;
    groups = [...head, ...Array<bigint>(8 - head.length - rest.length).fill(0n), ...rest];
  } else {
    if (head.length !== 8) return undefined;
    groups = head;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | g;
  return v;
}

/** Parses an IPv4 or IPv6 address; undefined when malformed. */
export function parseIp(s: string): IpAddress | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  if (s.includes(':')) {
    const v6 = parseV6(s);
    if (v6 !== undefined) return { family: 6, value: v6 };
  }
  return undefined;
}

export function bits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const b = BigInt(bits(family));
  return ((1n << b) - 1n) ^ ((1n << (b - BigInt(prefix))) - 1n);
}

/**
 * Parses "addr/prefix". With `strict`, host bits must be zero (a subnet, not an address with
 * its prefix); otherwise they are cleared.
 */
export function parseCidr(s: string, strict = false): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  const network = ip.value & mask(ip.family, prefix);
  if (strict && network !== ip.value) return undefined;
  return { family: ip.family, network, prefix };
}

/** The address inside a CIDR string ("10.0.0.5/24" -> 10.0.0.5). */
export function cidrAddress(s: string): IpAddress | undefined {
  const slash = s.indexOf('/');
  return parseIp(slash < 0 ? s : s.slice(0, slash));
}

export function formatIp(a: IpAddress): string {
  if (a.family === 4) {
    const v = a.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

export function lastAddress(c: Cidr): bigint {
  return c.network | ((1n << BigInt(bits(c.family) - c.prefix)) - 1n);
}

export function contains(c: Cidr, a: IpAddress): boolean {
  return c.family === a.family && a.value >= c.network && a.value <= lastAddress(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/** The n-th address of the subnet (1 = first host address, the usual gateway). */
export function nthAddress(c: Cidr, n: number): IpAddress {
  return { family: c.family, value: c.network + BigInt(n) };
}
