/**
 * The contracts of @libpod-ts/image, modelled on containers/image's `types/types.go`.
 *
 * An image lives somewhere named by an {@link ImageReference} (a transport plus a
 * transport-specific string, e.g. `docker://quay.io/a/b:1` or `oci:/srv/layout:tag`).
 * A reference opens an {@link ImageSource} to read, or an {@link ImageDestination} to write.
 * `copy()` is the only code that moves data between them; it relies on exactly what is written here,
 * so every implementation (including `containers-storage:` in another package) must keep these
 * contracts. Each transport implements them under `src/transports/<name>/`.
 *
 * Ownership: whoever calls `newSource()`/`newDestination()` owns the object and MUST call
 * `close()` (in a `finally`); `close()` is idempotent. Both also implement `Symbol.asyncDispose`.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Platform } from './manifest/schemas.js';

/**
 * Options shared by every transport (containers/image calls this SystemContext). All fields are
 * optional; defaults are the system files a Podman user expects.
 */
export interface SystemContext {
  /** containers-auth.json to read credentials from; default $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json. */
  authFilePath?: string;
  /** Docker config.json; default ~/.docker/config.json. Set to '' to disable. */
  dockerConfigPath?: string;
  /** Explicit credentials for the registry of this operation; override every file. */
  credentials?: { username: string; password: string } | { identityToken: string };
  /** Directories holding `<host[:port]>/{ca.crt,*.cert,*.key}`; default /etc/containers/certs.d, /etc/docker/certs.d. */
  certsDirs?: readonly string[];
  /** Extra CA certificates (PEM) trusted for every registry in addition to the system CAs. */
  extraCA?: readonly (string | Buffer)[];
  /** registries.conf path; default /etc/containers/registries.conf (absent file = no config). */
  registriesConfPath?: string;
  /** Registries (`host[:port]`) reached over plain HTTP / unverified TLS, in addition to registries.conf `insecure = true`. */
  insecureRegistries?: readonly string[];
  /** Directory for temporary files (archives being assembled); default os.tmpdir(). */
  tmpDir?: string;
  /** User-Agent header sent to registries. */
  userAgent?: string;
  /** Abort a body read when no byte arrives for this long (default 30 000 ms). */
  idleTimeoutMs?: number;
  /** Retries on 5xx/connection reset with exponential backoff (default 3). */
  retries?: number;
  /** Platform to choose from an index when a single image is needed; default the host. */
  platform?: Partial<Platform>;
}

/** Options accepted by every long operation. */
export interface OperationOptions {
  signal?: AbortSignal;
}

/**
 * Names an image in one transport. Immutable and cheap: parsing a reference never does I/O.
 */
export interface ImageReference {
  /** The transport that parsed this reference. */
  readonly transport: Transport;
  /** The reference without the transport prefix; `transport.parseReference()` of it yields an equal reference. */
  stringWithinTransport(): string;
  /** `<transport>:<stringWithinTransport()>` (for docker: `docker://...`). Never contains credentials. */
  toString(): string;
  /**
   * The registry-style name this image has (for docker: the reference itself; for oci-archive /
   * docker-archive: the tag stored with it, if any). Used to name images in destinations that
   * store names (docker-archive, oci `ref.name`).
   */
  dockerReference(): NamedReferenceLike | undefined;
  /**
   * Opens the image for reading. MAY do I/O (connect, authenticate, read index.json); rejects with
   * a typed ImageError (e.g. NotFoundError) when the image cannot be found.
   */
  newSource(ctx?: SystemContext, options?: OperationOptions): Promise<ImageSource>;
  /**
   * Opens the location for writing. Nothing becomes visible to readers before `commit()`;
   * a destination closed without `commit()` leaves the location as it was (modulo verified,
   * content-addressed blobs, which are harmless).
   */
  newDestination(ctx?: SystemContext, options?: OperationOptions): Promise<ImageDestination>;
}

/** Minimal view of a parsed distribution reference (see `src/reference/`). */
export interface NamedReferenceLike {
  /** Fully qualified `domain/path`, e.g. `docker.io/library/busybox`. */
  readonly name: string;
  readonly tag?: string | undefined;
  readonly digest?: string | undefined;
  toString(): string;
}

/** A manifest as bytes plus the media type it was served with (or detected from its content). */
export interface ManifestBlob {
  /** Exact bytes: the digest of an image is the digest of these bytes, so they are never re-serialised. */
  bytes: Uint8Array;
  mediaType: string;
}

/** A blob being read: the stream plus its size (-1 if the source does not know). */
export interface BlobStream {
  stream: Readable;
  /** Total size of the blob (not of the remaining bytes when `offset` was given); -1 if unknown. */
  size: number;
}

/**
 * Reads one image (or index) from a location.
 *
 * Contract:
 * - `getManifest()` without `instanceDigest` returns the manifest the reference names, which MAY be
 *   an index. With `instanceDigest`, it returns that instance of the index. Sources MUST refuse
 *   manifests over 4 MiB and MUST verify the bytes against `instanceDigest` (or the reference's
 *   digest) before returning them.
 * - `getBlob()` returns a stream of the blob's bytes starting at `offset` (default 0). Sources
 *   SHOULD verify size and digest while streaming when they read from the network or from an archive
 *   they did not write; `copy()` verifies again regardless, so a source MAY leave verification to
 *   the caller (it must then document it). The stream errors (never ends early silently) when the
 *   data is truncated. The caller destroys the stream if it stops reading.
 * - Concurrent `getBlob()` calls are allowed (copy() reads several layers at once).
 */
export interface ImageSource extends AsyncDisposable {
  readonly reference: ImageReference;
  getManifest(instanceDigest?: string, options?: OperationOptions): Promise<ManifestBlob>;
  getBlob(descriptor: Descriptor, options?: OperationOptions & { offset?: number }): Promise<BlobStream>;
  /** Whether the blob exists here, without reading it. Optional: copy() does not need it. */
  hasBlob?(descriptor: Descriptor, options?: OperationOptions): Promise<boolean>;
  /** Idempotent; aborts reads still in flight. */
  close(): Promise<void>;
}

/**
 * What a destination wants done with layer compression: keep the source's ('preserve'), gzip
 * only layers that are uncompressed ('compress', what registries get by default, as in
 * containers/image), or one specific compression for every layer.
 */
export type DesiredCompression = 'preserve' | 'compress' | 'gzip' | 'zstd' | 'none';

/** Information about a blob about to be written; `digest`/`size` are unknown when copy() recompresses. */
export interface BlobInfo {
  mediaType: string;
  /** Expected digest; when set, putBlob MUST verify it. When unset, putBlob computes it. */
  digest?: string;
  /** Expected size in bytes, or -1/undefined when unknown; when set, putBlob MUST verify it. */
  size?: number;
  annotations?: Record<string, string>;
}

export interface PutBlobOptions extends OperationOptions {
  /** Called with the number of bytes consumed so far (throttling is the destination's choice). */
  onProgress?: (bytesDone: number) => void;
  /** The blob is the image config (destinations that store configs separately care). */
  isConfig?: boolean;
  /** Uncompressed digest (diffID) the layer must have; destinations that decompress MUST verify it. */
  diffID?: string;
}

export type ReuseResult =
  | { reused: false }
  | { reused: true; descriptor: Descriptor; how: 'exists' | 'mounted' };

export interface TryReuseOptions extends OperationOptions {
  /** The source the blob comes from; a registry destination uses it for a cross-repository mount. */
  source?: ImageReference;
}

/**
 * Writes one image (or index) to a location.
 *
 * Call order (copy() follows it): any number of `tryReusingBlob()`/`putBlob()` (concurrently, for
 * distinct blobs; config blob included), then `putManifest()` for each instance of an index
 * (with `instanceDigest`) and then the top-level manifest (without), then `commit()`, then `close()`.
 *
 * Contract:
 * - `putBlob()` MUST verify the digest (and size, when given) before the blob is visible to any
 *   reader; on any failure (mismatch, stream error, abort) it MUST delete what it wrote and reject.
 *   It resolves with the descriptor actually stored (digest and size as computed).
 * - `tryReusingBlob()` never writes image content; it answers whether the blob already exists (or
 *   was mounted from another repository) so copy() can skip the transfer.
 * - `putManifest()` stores bytes exactly as given; the destination MAY verify them against
 *   `instanceDigest`.
 * - `commit()` makes the image visible atomically: before it, readers see the old state (or no
 *   image); after it resolves, the whole image. A destination closed without commit discards the
 *   image (content-addressed blobs may stay).
 */
export interface ImageDestination extends AsyncDisposable {
  readonly reference: ImageReference;
  /** Manifest media types this destination can store, preferred first; empty = any. */
  supportedManifestMediaTypes(): readonly string[];
  /** Whether indexes (multi-platform images) can be stored. */
  readonly supportsIndex: boolean;
  /** Compression the destination wants layers in; 'preserve' keeps the source's. */
  readonly desiredLayerCompression: DesiredCompression;
  /** Whether copy() must compute and verify diffIDs (destinations that unpack layers set this). */
  readonly needsDiffIDs: boolean;
  tryReusingBlob(descriptor: Descriptor, options?: TryReuseOptions): Promise<ReuseResult>;
  putBlob(stream: Readable, blob: BlobInfo, options?: PutBlobOptions): Promise<Descriptor>;
  putManifest(
    bytes: Uint8Array,
    mediaType: string,
    instanceDigest?: string,
    options?: OperationOptions,
  ): Promise<void>;
  commit(options?: OperationOptions): Promise<void>;
  /** Idempotent; without a prior commit() it discards everything not content-addressed. */
  close(): Promise<void>;
}

/**
 * A transport: one way images are stored (`docker`, `oci`, `oci-archive`, `docker-archive`,
 * `dir`, `containers-storage`). Transports are registered explicitly in a
 * {@link TransportRegistry}; importing this package registers nothing anywhere.
 */
export interface Transport {
  /** The prefix before `:` in image names. */
  readonly name: string;
  /** Parses the part after `<name>:`; throws InvalidReferenceError. Never does I/O. */
  parseReference(reference: string): ImageReference;
}

/** Transports by name; created with `createTransportRegistry()`. */
export interface TransportRegistry {
  register(transport: Transport): void;
  get(name: string): Transport | undefined;
  names(): string[];
  /** Parses `<transport>:<reference>` (e.g. `docker://busybox`, `oci:/tmp/l:tag`). Throws UnknownTransportError / InvalidReferenceError. */
  parseImageName(imageName: string): ImageReference;
}

/** Kind of blob a progress event is about. */
export type BlobKind = 'layer' | 'config';

/**
 * Progress events emitted by copy(), in order for each blob:
 * `blob-start` -> `blob-progress`* -> `blob-verified` -> `blob-done`, or `blob-skipped` alone.
 * Digests refer to the source blob (`digest`) and, once known, to what was stored (`storedDigest`).
 * Events never contain credentials or URLs with credentials.
 */
export type CopyProgressEvent =
  | { type: 'copy-start'; source: string; destination: string }
  | { type: 'manifest-resolved'; digest: string; mediaType: string; instances: number }
  | { type: 'instance-start'; digest: string; platform?: Platform | undefined }
  | { type: 'blob-start'; kind: BlobKind; digest: string; size: number }
  | { type: 'blob-progress'; kind: BlobKind; digest: string; bytesDone: number; bytesTotal: number }
  | { type: 'blob-skipped'; kind: BlobKind; digest: string; size: number; reason: 'exists' | 'mounted' }
  | { type: 'blob-verified'; kind: BlobKind; digest: string; size: number; storedDigest: string }
  | {
      type: 'blob-done';
      kind: BlobKind;
      digest: string;
      size: number;
      storedDigest: string;
      storedSize: number;
    }
  | { type: 'manifest-written'; digest: string; mediaType: string; instance: boolean }
  | { type: 'copy-done'; manifestDigest: string; mediaType: string };
