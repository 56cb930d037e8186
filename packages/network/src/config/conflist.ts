import { createHash } from 'node:crypto';
import { type Cidr, cidrAddress, formatIp, lastAddress, parseCidr } from '../ip/cidr.js';
import type { ConfList, NetworkInfo } from './schema.js';

/** The CNI spec version written into new conflists (all plugins of containernetworking 1.x speak it). */
export const CNI_VERSION = '1.0.0';

export interface ResolvedSubnet {
  subnet: Cidr;
  gateway?: string | undefined;
  rangeStart?: string | undefined;
  rangeEnd?: string | undefined;
}

export interface ConfListSpec {
  name: string;
  driver: 'bridge' | 'macvlan';
  subnets: ResolvedSubnet[];
  internal: boolean;
  mtu?: number | undefined;
  labels: Record<string, string>;
  dns: boolean;
  bridge?: string | undefined;
  parent?: string | undefined;
  macvlanMode?: string | undefined;
}

/** podman's CNI network id: the sha256 of the name. */
export function networkId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/**
 * Builds a conflist in the shape podman 4's CNI backend writes (bridge/macvlan + host-local with
 * `ranges`, portmap, firewall, tuning; labels and options under `args`), with cniVersion 1.0.0.
 * Our own settings that podman has no field for live under `args.libpod_ts_options`, which
 * podman ignores.
 */
export function buildConfList(spec: ConfListSpec): ConfList {
  const routes: { dst: string }[] = [];
  if (!spec.internal) {
    if (spec.subnets.some((s) => s.subnet.family === 4)) routes.push({ dst: '0.0.0.0/0' });
    if (spec.subnets.some((s) => s.subnet.family === 6)) routes.push({ dst: '::/0' });
  }
  const ranges = spec.subnets.map((s) => {
    const r: Record<string, string> = {
      subnet: `${formatIp({ family: s.subnet.family, value: s.subnet.network })}/${s.subnet.prefix}`,
    };
    if (s.rangeStart) r.rangeStart = s.rangeStart;
    if (s.rangeEnd) r.rangeEnd = s.rangeEnd;
    if (s.gateway) r.gateway = s.gateway;
    return [r];
  });
  const ipam: Record<string, unknown> = { type: 'host-local' };
  if (routes.length) ipam.routes = routes;
  ipam.ranges = ranges;

  const args: Record<string, Record<string, string>> = {};
  if (Object.keys(spec.labels).length) args.podman_labels = spec.labels;
  const options: Record<string, string> = {};
  if (spec.mtu !== undefined) options.mtu = String(spec.mtu);
  if (spec.driver === 'macvlan' && spec.parent) options.parent = spec.parent;
  if (spec.macvlanMode) options.mode = spec.macvlanMode;
  if (Object.keys(options).length) args.podman_options = options;
  args.libpod_ts_options = { dns: String(spec.dns), internal: String(spec.internal) };

  const plugins: { type: string; [k: string]: unknown }[] = [];
  if (spec.driver === 'bridge') {
    const bridge: { type: string; [k: string]: unknown } = {
      type: 'bridge',
      bridge: spec.bridge,
      isGateway: !spec.internal,
    };
    if (!spec.internal) bridge.ipMasq = true;
    if (spec.mtu !== undefined) bridge.mtu = spec.mtu;
    bridge.hairpinMode = true;
    bridge.ipam = ipam;
    bridge.capabilities = { ips: true };
    plugins.push(
      bridge,
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall', backend: '' },
      { type: 'tuning' },
    );
  } else {
    const mv: { type: string; [k: string]: unknown } = { type: 'macvlan', master: spec.parent };
    if (spec.macvlanMode) mv.mode = spec.macvlanMode;
    if (spec.mtu !== undefined) mv.mtu = spec.mtu;
    mv.ipam = ipam;
    mv.capabilities = { ips: true };
    plugins.push(mv);
  }
  return { args, cniVersion: CNI_VERSION, name: spec.name, plugins } as ConfList;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strRecord = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v) ?? {})) if (typeof x === 'string') out[k] = x;
  return out;
};

/** The main (interface-creating) plugin of a conflist: the first one with an `ipam` or a known driver. */
export function mainPlugin(conf: ConfList): Json {
  return (conf.plugins.find(
    (p) => obj((p as Json).ipam) || ['bridge', 'macvlan', 'ipvlan', 'ptp'].includes(p.type),
  ) ?? conf.plugins[0]) as Json;
}

/** Derives podman-inspect-like information from any conflist (ours, podman's or hand-written). */
export function describeConfList(
  conf: ConfList,
  meta: { file: string; created: Date; readOnly: boolean },
): NetworkInfo {
  const main = mainPlugin(conf);
  const ipam = obj(main.ipam) ?? {};
  const args = obj((conf as Json).args) ?? {};
  const ours = strRecord(args.libpod_ts_options);
  const subnets: NetworkInfo['subnets'] = [];
  const rangeSets: unknown[] = Array.isArray(ipam.ranges) ? ipam.ranges : [];
  for (const set of rangeSets) {
    for (const r of Array.isArray(set) ? set : []) {
      const rr = obj(r);
      const subnet = str(rr?.subnet);
      if (!rr || !subnet) continue;
      const entry: NetworkInfo['subnets'][number] = { subnet };
      if (str(rr.gateway)) entry.gateway = str(rr.gateway);
      if (str(rr.rangeStart) || str(rr.rangeEnd)) {
        entry.leaseRange = {};
        if (str(rr.rangeStart)) entry.leaseRange.startIp = str(rr.rangeStart);
        if (str(rr.rangeEnd)) entry.leaseRange.endIp = str(rr.rangeEnd);
      }
      subnets.push(entry);
    }
  }
  // Old single-subnet host-local form.
  if (str(ipam.subnet))
    subnets.push({ subnet: str(ipam.subnet)!, ...(str(ipam.gateway) ? { gateway: str(ipam.gateway) } : {}) });
  const hasDefaultRoute =
    Array.isArray(ipam.routes) &&
    ipam.routes.some((r) => ['0.0.0.0/0', '::/0'].includes(str(obj(r)?.dst) ?? ''));
  const internal =
    ours.internal !== undefined
      ? ours.internal === 'true'
      : main.type === 'bridge'
        ? main.isGateway !== true && main.ipMasq !== true
        : !hasDefaultRoute;
  const info: NetworkInfo = {
    name: conf.name,
    id: networkId(conf.name),
    driver: main.type === 'bridge' || main.type === 'macvlan' ? main.type : String(main.type),
    created: meta.created,
    subnets,
    ipv6Enabled: subnets.some((s) => cidrAddress(s.subnet)?.family === 6),
    internal,
    // podman reports DNS on when the dnsname plugin is in the chain; ours is a hosts-file registry.
    dnsEnabled: ours.dns !== undefined ? ours.dns === 'true' : conf.plugins.some((p) => p.type === 'dnsname'),
    labels: strRecord(args.podman_labels),
    options: strRecord(args.podman_options),
    ipamOptions: { driver: str(ipam.type) ?? 'none' },
    file: meta.file,
    readOnly: meta.readOnly,
    conflist: conf as Json,
  };
  const iface = str(main.bridge) ?? str(main.master);
  if (iface) info.networkInterface = iface;
  return info;
}

/** All subnets of a conflist's main plugin, parsed (malformed ones skipped). */
export function confListSubnets(conf: ConfList): Cidr[] {
  const out: Cidr[] = [];
  const info = describeConfList(conf, { file: '', created: new Date(0), readOnly: true });
  for (const s of info.subnets) {
    const c = parseCidr(s.subnet);
    if (c) out.push(c);
  }
  return out;
}

/** The first and last leasable address of a range CIDR (IPv4 skips network and broadcast). */
export function rangeBounds(range: Cidr): { start: string; end: string } {
  const last = lastAddress(range);
  const start = range.network + 1n;
  const end = range.family === 4 && range.prefix < 31 ? last - 1n : last;
  return {
    start: formatIp({ family: range.family, value: start }),
    end: formatIp({ family: range.family, value: end }),
  };
}
