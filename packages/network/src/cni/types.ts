import { z } from 'zod';

/** CNI_COMMAND values. STATUS exists from spec 1.1.0; GC is not used here. */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS';

export const CniInterfaceSchema = z.looseObject({
  name: z.string(),
  mac: z.string().optional(),
  mtu: z.number().optional(),
  sandbox: z.string().optional(),
});

export const CniIpSchema = z.looseObject({
  address: z.string(),
  gateway: z.string().optional(),
  interface: z.number().int().optional(),
  /** Only in 0.3.x / 0.4.0 results. */
  version: z.string().optional(),
});

export const CniRouteSchema = z.looseObject({ dst: z.string(), gw: z.string().optional() });

export const CniDnsSchema = z.looseObject({
  nameservers: z.array(z.string()).optional(),
  domain: z.string().optional(),
  search: z.array(z.string()).optional(),
  options: z.array(z.string()).optional(),
});

/** A success result of spec 0.3.0 .. 1.0.0 (the `version` field on ips tolerated). */
export const CniResultSchema = z.looseObject({
  cniVersion: z.string(),
  interfaces: z.array(CniInterfaceSchema).optional(),
  ips: z.array(CniIpSchema).optional(),
  routes: z.array(CniRouteSchema).optional(),
  dns: CniDnsSchema.optional(),
});
export type CniResult = z.infer<typeof CniResultSchema>;

/** The error object a plugin prints on stdout when it exits non-zero. */
export const CniErrorSchema = z.looseObject({
  cniVersion: z.string().optional(),
  code: z.number().int(),
  msg: z.string(),
  details: z.string().optional(),
});
export type CniErrorObject = z.infer<typeof CniErrorSchema>;

export const CniVersionResultSchema = z.looseObject({
  cniVersion: z.string(),
  supportedVersions: z.array(z.string()),
});
export type CniVersionResult = z.infer<typeof CniVersionResultSchema>;

/** Spec well-known error codes. */
export const CNI_ERROR_CODES = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  PLUGIN_NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
} as const;

/** What a container-network attachment is invoked with (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string;
  /** Path of the netns; '' on DEL when the namespace is already gone. */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs, e.g. [['IgnoreUnknown','1'], ['MAC','..']]. */
  args: [string, string][];
  /** runtimeConfig values, passed to plugins that declare the capability. */
  capabilityArgs: Record<string, unknown>;
}
