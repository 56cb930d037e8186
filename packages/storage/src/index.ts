export { StorageError } from './errors.js';
// --- layers: safe paths, archives, drivers ---
export {
  DriverOperationError,
  DriverUnavailableError,
  InvalidWhiteoutError,
  LayerLimitError,
  MalformedArchiveError,
  TooManySymlinksError,
  UnsafeLayerEntryError,
} from './errors.js';
export {
  MAX_SYMLINK_HOPS,
  type ResolveInRootOptions,
  resolveInRoot,
  resolveInRootSync,
} from './fs/resolve-in-root.js';
export { DEFAULT_LIMITS, type LayerLimits } from './archive/limits.js';
export { createDriver, DRIVER_NAMES } from './drivers/registry.js';
export type {
  ApplyDiffOptions,
  ApplyDiffProgress,
  Change,
  Driver,
  DriverName,
  DriverOptions,
  MountOptions,
  ProbeResult,
} from './drivers/types.js';
