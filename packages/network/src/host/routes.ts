import { readFile } from 'node:fs/promises';
import type { Cidr } from '../ip/cidr.js';

export interface HostRoute {
  route: Cidr;
  dev: string;
}

/**
 * The host's non-default routes (main table) from /proc, no subprocess: a new network's subnet
 * must not overlap them or its traffic would shadow the host's (podman checks the same).
 */
export async function hostRoutes(): Promise<HostRoute[]> {
  const out: HostRoute[] = [];
  const v4 = await readFile('/proc/net/route', 'utf8').catch(() => '');
  for (const line of v4.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // The kernel prints IPv4 fields as little-endian hex words.
    const le = (h: string) => BigInt(`0x${(h.match(/../g) ?? []).reverse().join('') || '0'}`);
    const dst = le(f[1]!);
    const prefix = le(f[7]!).toString(2).replace(/0/g, '').length;
    if (prefix === 0) continue;
    out.push({ route: { family: 4, network: dst, prefix }, dev: f[0]! });
  }
  const v6 = await readFile('/proc/net/ipv6_route', 'utf8').catch(() => '');
  for (const line of v6.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const prefix = Number.parseInt(f[1]!, 16);
    const dev = f[9]!;
    // Skip default, host (/128), multicast and link-local routes: they say nothing about subnets in use.
    if (prefix === 0 || prefix === 128 || dev === 'lo' || f[0]!.startsWith('ff') || f[0]!.startsWith('fe80'))
      continue;
    out.push({ route: { family: 6, network: BigInt(`0x${f[0]}`), prefix }, dev });
  }
  return out;
}
