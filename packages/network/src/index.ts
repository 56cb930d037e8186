export { type AttachmentRecord, AttachmentRecordSchema } from './attach/records.js';
export {
  type AttachedInterface,
  type AttachRequest,
  AttachRequestSchema,
  type AttachResult,
  type NetnsMode,
  NetnsModeSchema,
  type NetworkRequest,
  NetworkRequestSchema,
  type SetupRequest,
  SetupRequestSchema,
  type SetupResult,
} from './attach/schema.js';
export { buildConfList, CNI_VERSION, networkId } from './config/conflist.js';
export {
  type ConfList,
  ConfListSchema,
  type CreateNetworkOptions,
  CreateNetworkOptionsSchema,
  type NetworkInfo,
  NetworkInfoSchema,
} from './config/schema.js';
export { type CacheEntry, CacheEntrySchema } from './cni/cache.js';
export {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  type PluginStatus,
  statusNetworkList,
} from './cni/chain.js';
export { invokePlugin, pluginVersion } from './cni/exec.js';
export { DEFAULT_PLUGIN_DIRS, findPlugin } from './cni/plugins.js';
export {
  CNI_ERROR_CODES,
  type CniErrorObject,
  CniErrorSchema,
  type CniResult,
  CniResultSchema,
  type CniVersionResult,
  type RuntimeConf,
} from './cni/types.js';
export { renderHosts } from './dns/hosts.js';
export { type DnsOptions, DnsOptionsSchema, parseResolvConf, renderResolvConf } from './dns/resolv.js';
export {
  AddressUnavailableError,
  CniPluginError,
  CniResultError,
  HostCommandError,
  InvalidConfigListError,
  InvalidNetworkInputError,
  NetnsError,
  NetworkError,
  NetworkExistsError,
  NetworkInUseError,
  NetworkNotFoundError,
  NetworkReadOnlyError,
  NotAttachedError,
  PluginNotFoundError,
  PortInUseError,
  SubnetOverlapError,
} from './errors.js';
export { masqChainName, pruneSharedChains } from './host/iptables.js';
export {
  type CleanupReport,
  NetworkManager,
  type NetworkManagerOptions,
  NetworkManagerOptionsSchema,
  type TeardownReport,
} from './manager.js';
export { NetnsDir } from './netns/netns.js';
export { type HeldPorts, holdPorts } from './ports/hold.js';
export { type PortMapping, PortMappingSchema, type ResolvedPort } from './ports/ports.js';
