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
export {
  type ApplyLayerOptions,
  type ApplyLayerResult,
  applyLayer,
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
} from './archive/apply.js';
export {
  type Compression,
  createLayerGunzip,
  type DecompressOptions,
  decompress,
  detectCompression,
  INFLATE_CHUNK_SIZE,
  INFLATE_INPUT_BATCH,
  InflateInputBatcher,
} from './archive/decompress.js';
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
// --- store: openStore, records, locking, check/repair ---
export {
  AmbiguousImageError,
  ContainerNotFoundError,
  CorruptRecordError,
  DiffIDMismatchError,
  DuplicateIdError,
  ImageInUseError,
  ImageNotFoundError,
  InvalidStoreArgumentError,
  LayerInUseError,
  LayerMountedError,
  LayerNotFoundError,
  NameInUseError,
  StoreClosedError,
  StoreConfigError,
  StoreLockTimeoutError,
} from './errors.js';
export { openStore, Store, type StoreOptions } from './store/store.js';
export type { CreateLayerOptions, CreateLayerResult, LayerProgress } from './store/layers.js';
export type { StreamDigest } from './archive/gunzip-worker.js';
export { EMPTY_TAR_DIFFID } from './store/layers.js';
export type { CreateImageOptions, DeleteImageResult, HistoryEntry } from './store/images.js';
export type {
  CreateContainerOptions,
  DeleteContainerOptions,
  MountLayerOptions,
} from './store/containers.js';
export type { CheckReport, Problem, ProblemKind, RepairReport } from './store/check.js';
export { chainIdOf } from './store/context.js';
export {
  type ContainerRecord,
  ContainerRecordSchema,
  type ImageRecord,
  ImageRecordSchema,
  type LayerRecord,
  LayerRecordSchema,
  type LeaseRecord,
  LeaseRecordSchema,
  type MountRecord,
  MountRecordSchema,
} from './store/records.js';
export { type Owner, OwnerSchema } from './store/owner.js';
// --- end store ---
