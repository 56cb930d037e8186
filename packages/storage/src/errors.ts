/**
 * Errors of @libpod-ts/storage: a closed set of classes, each with a stable `code` that callers
 * branch on (`err.code === 'ERR_...'`), which works even when two copies of the package are loaded.
 * Messages name the object and the cause; the underlying error is chained as `cause`.
 */
export class StorageError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

// --- layers: path resolution, archives, drivers (fs/, archive/, drivers/) ---

/** A path needed more than 40 symlink hops inside a root (a loop, or a hostile chain). */
export class TooManySymlinksError extends StorageError {
  constructor(
    readonly path: string,
    readonly root: string,
  ) {
    super('ERR_TOO_MANY_SYMLINKS', `resolving ${JSON.stringify(path)} inside ${root}: more than 40 symlinks`);
  }
}

/** The layer archive is not a valid tar / compressed stream (truncated, bad header, bad checksum). */
export class MalformedArchiveError extends StorageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED_ARCHIVE', `malformed layer archive: ${message}`, options);
  }
}

/** A layer entry would write, link or delete outside its layer, or through a link it must not follow. */
export class UnsafeLayerEntryError extends StorageError {
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super('ERR_UNSAFE_LAYER_ENTRY', `layer entry ${JSON.stringify(entry)} refused: ${reason}`);
  }
}

/** A whiteout entry has an invalid name (`.wh.`, `.wh..`, `.wh...`) or targets something it must not. */
export class InvalidWhiteoutError extends StorageError {
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super('ERR_INVALID_WHITEOUT', `whiteout ${JSON.stringify(entry)} refused: ${reason}`);
  }
}

/** A configured cap (extended header size, path length, entry count, bytes) was exceeded. */
export class LayerLimitError extends StorageError {
  constructor(
    readonly limit: string,
    readonly max: number,
    detail: string,
  ) {
    super('ERR_LAYER_LIMIT', `layer exceeds ${limit} (max ${max}): ${detail}`);
  }
}

/** A storage driver cannot run on this host; `reason` says why (from probe()). */
export class DriverUnavailableError extends StorageError {
  constructor(
    readonly driver: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_DRIVER_UNAVAILABLE', `storage driver ${driver} cannot run here: ${reason}`, options);
  }
}

/** A driver operation (mount, copy, mknod, ...) failed; the message names the layer and the step. */
export class DriverOperationError extends StorageError {
  constructor(
    readonly driver: string,
    readonly layer: string,
    step: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_DRIVER_OPERATION', `${driver} driver: ${step} of layer ${layer} failed`, options);
  }
}

// --- store: records, locking, layers/images/containers (store/) ---

/** The store's metadata database stayed locked by other users longer than the lock timeout. */
export class StoreLockTimeoutError extends StorageError {
  constructor(
    readonly root: string,
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_STORE_LOCK_TIMEOUT',
      `store ${root}: metadata database still locked after ${waitedMs} ms`,
      options,
    );
  }
}

/** An operation was called on a store after close(). */
export class StoreClosedError extends StorageError {
  constructor(readonly root: string) {
    super('ERR_STORE_CLOSED', `store ${root} is closed`);
  }
}

/** The store on disk cannot be used as asked (other driver, newer layout version, corrupt database). */
export class StoreConfigError extends StorageError {
  constructor(
    readonly root: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_STORE_CONFIG', `store ${root}: ${reason}`, options);
  }
}

/** A stored record failed validation (corrupted or written by an incompatible version). */
export class CorruptRecordError extends StorageError {
  constructor(
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_CORRUPT_RECORD', `store record ${JSON.stringify(key)} is invalid`, options);
  }
}

/** No layer with this ID (or the layer is still being written / being deleted). */
export class LayerNotFoundError extends StorageError {
  constructor(
    readonly layer: string,
    reason = 'no such layer',
  ) {
    super('ERR_LAYER_NOT_FOUND', `layer ${layer}: ${reason}`);
  }
}

/** The layer is used by child layers, images, containers, leases or mounts; `users` names them. */
export class LayerInUseError extends StorageError {
  constructor(
    readonly layer: string,
    readonly users: string[],
  ) {
    super('ERR_LAYER_IN_USE', `layer ${layer} is in use by ${users.slice(0, 5).join(', ')}`);
  }
}

/** The uncompressed layer did not hash to the diffID the caller expected; the layer was removed. */
export class DiffIDMismatchError extends StorageError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('ERR_DIFFID_MISMATCH', `layer diffID mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A layer, image or container with this ID already exists. */
export class DuplicateIdError extends StorageError {
  constructor(
    readonly kind: 'layer' | 'image' | 'container',
    readonly id: string,
  ) {
    super('ERR_DUPLICATE_ID', `${kind} ${id} already exists`);
  }
}

/** The name is already used by another image or container. */
export class NameInUseError extends StorageError {
  constructor(
    readonly inUse: string,
    readonly owner: string,
  ) {
    super('ERR_NAME_IN_USE', `name ${JSON.stringify(inUse)} is already used by ${owner}`);
  }
}

/** No image matches this name, ID (prefix) or digest. */
export class ImageNotFoundError extends StorageError {
  constructor(readonly ref: string) {
    super('ERR_IMAGE_NOT_FOUND', `image ${JSON.stringify(ref)} not found in the store`);
  }
}

/** An ID prefix or short name matches more than one image. */
export class AmbiguousImageError extends StorageError {
  constructor(
    readonly ref: string,
    readonly candidates: string[],
  ) {
    super('ERR_AMBIGUOUS_IMAGE', `image ${JSON.stringify(ref)} matches ${candidates.length} images`);
  }
}

/** The image is used by containers and cannot be deleted. */
export class ImageInUseError extends StorageError {
  constructor(
    readonly image: string,
    readonly containers: string[],
  ) {
    super('ERR_IMAGE_IN_USE', `image ${image} is used by containers ${containers.slice(0, 5).join(', ')}`);
  }
}

/** No container with this ID or name. */
export class ContainerNotFoundError extends StorageError {
  constructor(readonly ref: string) {
    super('ERR_CONTAINER_NOT_FOUND', `container ${JSON.stringify(ref)} not found in the store`);
  }
}

/** The container's layer is mounted and the operation needs it unmounted (or `force`). */
export class LayerMountedError extends StorageError {
  constructor(
    readonly layer: string,
    readonly count: number,
  ) {
    super('ERR_LAYER_MOUNTED', `layer ${layer} is mounted ${count} time(s)`);
  }
}

/** An argument (ID, name, digest) is malformed. */
export class InvalidStoreArgumentError extends StorageError {
  constructor(
    readonly argument: string,
    reason: string,
  ) {
    super('ERR_INVALID_ARGUMENT', `invalid ${argument}: ${reason}`);
  }
}
// --- end store ---
