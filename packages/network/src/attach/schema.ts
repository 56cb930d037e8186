import { z } from 'zod';
import { IFNAME_RE, NETWORK_NAME_RE } from '../config/schema.js';
import { DnsOptionsSchema } from '../dns/resolv.js';
import { parseIp } from '../ip/cidr.js';
import { PortMappingSchema } from '../ports/ports.js';

/** Container ids and names as the cache file names and CNI_CONTAINERID accept them. */
export const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const MAC_RE = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export const NetworkRequestSchema = z.object({
  name: z.string().regex(NETWORK_NAME_RE),
  /** Static address (host-local `ips` capability); must lie in one of the network's subnets. */
  ip: z.string().optional(),
  /** Static MAC (CNI_ARGS MAC=, applied by the tuning plugin). */
  mac: z.string().regex(MAC_RE, 'must be a MAC address like 02:42:ac:11:00:02').optional(),
  /** Extra names other containers on this network resolve to this container. */
  aliases: z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)).default([]),
  /** Interface name in the container; default eth0, eth1, ... in request order. */
  interface: z.string().regex(IFNAME_RE).optional(),
});
export type NetworkRequest = z.input<typeof NetworkRequestSchema>;

/** RFC 1123 host names; nothing that could start a new line or field in /etc/hosts. */
const HOSTNAME_RE =
  /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export const HostsRequestSchema = z.object({
  /** The file the runtime bind-mounts as /etc/hosts; written now and kept current. */
  path: z.string().optional(),
  hostname: z.string().regex(HOSTNAME_RE, 'must be a host name').max(253).optional(),
  /** "name:ip" entries (podman --add-host). */
  extraHosts: z
    .array(
      z.string().refine((e) => {
        const i = e.indexOf(':');
        return i > 0 && HOSTNAME_RE.test(e.slice(0, i)) && parseIp(e.slice(i + 1)) !== undefined;
      }, 'must be "name:ip"'),
    )
    .default([]),
});

export const AttachRequestSchema = z.object({
  containerId: z.string().regex(CONTAINER_ID_RE, 'must match [a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}'),
  /** The container name other containers resolve (default: the id). */
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)
    .optional(),
  netnsPath: z.string().min(1),
  networks: z.array(NetworkRequestSchema).min(1),
  /** Applied on the first network of the list (podman publishes on one network too). */
  portMappings: z.array(PortMappingSchema).default([]),
  hosts: HostsRequestSchema.optional(),
});
export type AttachRequest = z.input<typeof AttachRequestSchema>;

/** Network mode of a container, as podman's --network. */
export const NetnsModeSchema = z.discriminatedUnion('mode', [
  /** A new netns attached to `networks` (default: the default network). */
  z.object({ mode: z.literal('bridge') }),
  /** A new netns with only lo up. */
  z.object({ mode: z.literal('none') }),
  /** The host's netns: nothing is created. */
  z.object({ mode: z.literal('host') }),
  /** Another container's netns; the caller resolved the id to its path. */
  z.object({ mode: z.literal('container'), path: z.string().min(1) }),
  /** An existing netns by path (podman ns:<path>). */
  z.object({ mode: z.literal('ns'), path: z.string().min(1) }),
]);
export type NetnsMode = z.infer<typeof NetnsModeSchema>;

export const SetupRequestSchema = z.object({
  containerId: z.string().regex(CONTAINER_ID_RE),
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)
    .optional(),
  netns: NetnsModeSchema.default({ mode: 'bridge' }),
  /** Default: the default network. Ignored unless mode is bridge. */
  networks: z.array(NetworkRequestSchema).optional(),
  portMappings: z.array(PortMappingSchema).default([]),
  hosts: HostsRequestSchema.optional(),
  /** Where to write the container's resolv.conf (written in place when it exists). */
  resolvConfPath: z.string().optional(),
  dns: DnsOptionsSchema.optional(),
});
export type SetupRequest = z.input<typeof SetupRequestSchema>;

/** One interface of an attachment, from the CNI result. */
export interface AttachedInterface {
  network: string;
  ifName: string;
  mac?: string | undefined;
  /** CIDR form, e.g. "10.213.0.5/24". */
  addresses: string[];
  gateways: string[];
}

export interface AttachResult {
  interfaces: AttachedInterface[];
  /** Plain addresses over every network. */
  ips: string[];
  ports: import('../ports/ports.js').ResolvedPort[];
}

export interface SetupResult extends AttachResult {
  /** The netns path for the runtime config; undefined in host mode. */
  netnsPath: string | undefined;
  mode: NetnsMode['mode'];
}
