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
