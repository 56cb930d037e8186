import { z } from 'zod';

/** Podman's network name grammar. */
export const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Linux interface names: at most 15 bytes, no '/', ':' or whitespace. */
export const IFNAME_RE = /^[a-zA-Z0-9_.-]{1,15}$/;

export const SubnetOptionsSchema = z.object({
  /** CIDR, host bits zero: "10.213.0.0/24", "fd00:213::/64". */
  subnet: z.string(),
  /** Defaults to the first host address for non-internal bridge networks. */
  gateway: z.string().optional(),
  /** CIDR inside `subnet` that addresses are leased from (podman --ip-range). */
  range: z.string().optional(),
});
export type SubnetOptions = z.infer<typeof SubnetOptionsSchema>;

export const CreateNetworkOptionsSchema = z.object({
  name: z.string().regex(NETWORK_NAME_RE, 'must match [a-zA-Z0-9][a-zA-Z0-9_.-]*').max(200),
  driver: z.enum(['bridge', 'macvlan']).default('bridge'),
  /** Empty: a free /24 from 10.89.0.0/16 (and a /64 from fd00::/8 with ipv6), like podman. */
  subnets: z.array(SubnetOptionsSchema).default([]),
  ipv6: z.boolean().default(false),
  /** No gateway, no default route, no masquerade: containers reach only each other. */
  internal: z.boolean().default(false),
  mtu: z.number().int().min(68).max(65535).optional(),
  labels: z.record(z.string(), z.string()).default({}),
  /** Name resolution between containers of this network (hosts-file based, see docs). */
  dns: z.boolean().default(true),
  /** Bridge interface name (bridge driver); default: the next free cni-podmanN. */
  bridge: z.string().regex(IFNAME_RE, 'must be a Linux interface name (1-15 chars)').optional(),
  /** Host interface the macvlan attaches to (macvlan driver, required). */
  parent: z.string().regex(IFNAME_RE, 'must be a Linux interface name (1-15 chars)').optional(),
  macvlanMode: z.enum(['bridge', 'private', 'vepa', 'passthru']).optional(),
});
export type CreateNetworkOptions = z.input<typeof CreateNetworkOptionsSchema>;
export type ParsedCreateNetworkOptions = z.output<typeof CreateNetworkOptionsSchema>;

/** A network as `inspect` reports it (the fields of `podman network inspect`, camel-cased). */
export const NetworkInfoSchema = z.object({
  name: z.string(),
  /** sha256 of the name, as podman's CNI backend derives it. */
  id: z.string(),
  driver: z.string(),
  networkInterface: z.string().optional(),
  created: z.date(),
  subnets: z.array(
    z.object({
      subnet: z.string(),
      gateway: z.string().optional(),
      leaseRange: z.object({ startIp: z.string().optional(), endIp: z.string().optional() }).optional(),
    }),
  ),
  ipv6Enabled: z.boolean(),
  internal: z.boolean(),
  dnsEnabled: z.boolean(),
  labels: z.record(z.string(), z.string()),
  options: z.record(z.string(), z.string()),
  ipamOptions: z.record(z.string(), z.string()),
  /** Where the definition lives and whether this library may change it. */
  file: z.string(),
  readOnly: z.boolean(),
  /** The conflist as stored. */
  conflist: z.record(z.string(), z.unknown()),
});
export type NetworkInfo = z.infer<typeof NetworkInfoSchema>;

/** The subset of a CNI network configuration list that this library reads. */
export const ConfListSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string(),
  disableCheck: z.boolean().optional(),
  plugins: z.array(z.looseObject({ type: z.string() })).min(1),
});
export type ConfList = z.infer<typeof ConfListSchema>;
