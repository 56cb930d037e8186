import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestBytes, readCapped, VerifyingStream } from '../digest/digest.js';
import {
  AbortedError,
  DigestMismatchError,
  ImageError,
  NoMatchingPlatformError,
  UnsupportedError,
} from '../errors.js';
import {
  compressionOfLayerMediaType,
  type LayerCompression,
  layerMediaType,
  MediaTypes,
} from '../manifest/media-types.js';
import {
  convertIndex,
  convertManifest,
  formatPlatform,
  listPlatforms,
  MAX_CONFIG_SIZE,
  type ParsedImageManifest,
  type ParsedIndex,
  parseImageConfig,
  parseManifest,
  selectPlatform,
} from '../manifest/parse.js';
import type { Descriptor, Platform } from '../manifest/schemas.js';
import type {
  BlobKind,
  CopyProgressEvent,
  DesiredCompression,
  ImageDestination,
  ImageReference,
  ImageSource,
  SystemContext,
} from '../types.js';
import { compressor, decompressionStages } from './compression.js';

export interface CopyOptions {
  /** Context for opening the source (auth, TLS, registries.conf). Defaults to `ctx`. */
  sourceCtx?: SystemContext;
  /** Context for opening the destination. Defaults to `ctx`. */
  destinationCtx?: SystemContext;
  ctx?: SystemContext;
  signal?: AbortSignal;
  /** Receives every progress event (see CopyProgressEvent). Exceptions thrown by it are ignored. */
  onProgress?: (event: CopyProgressEvent) => void;
  /** Parallel layer transfers (default 6, like skopeo). */
  concurrency?: number;
  /** From an index: every instance (`'all'`) or the one for `platform` (default, the host). */
  instances?: 'all' | 'platform';
  platform?: Partial<Platform>;
  /** Layer compression to produce; default: what the destination wants ('preserve' for most). */
  compression?: DesiredCompression;
  /** Recompress even when the source already has the requested compression. */
  forceCompression?: boolean;
  compressionLevel?: number;
  /** Manifest format to write (default: keep, converting only when the destination requires it). */
  manifestFormat?: 'oci' | 'docker';
  /** Fail instead of changing the image digest (no conversion, no recompression). */
  preserveDigests?: boolean;
  /** Minimum interval between blob-progress events per blob, ms (default 100). */
  progressIntervalMs?: number;
}

export interface CopyResult {
  /** Digest of the top-level manifest written. */
  manifestDigest: string;
  mediaType: string;
  manifest: Uint8Array;
}

interface Ctx {
  src: ImageSource;
  dest: ImageDestination;
  srcRef: ImageReference;
  opts: CopyOptions;
  signal: AbortSignal | undefined;
  emit: (e: CopyProgressEvent) => void;
  /** Blob copies in flight/done by source digest, so instances sharing layers copy them once. */
  blobs: Map<string, Promise<Descriptor>>;
  limit: <T>(fn: () => Promise<T>) => Promise<T>;
}

function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

function checkAbort(signal: AbortSignal | undefined, object: string): void {
  if (signal?.aborted) throw new AbortedError(object, { cause: signal.reason });
}

/** Copies the image `srcRef` names to `destRef`. See the module comment for the guarantees. */
export async function copy(
  srcRef: ImageReference,
  destRef: ImageReference,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const signal = options.signal;
  const emit = (e: CopyProgressEvent) => {
    try {
      options.onProgress?.(e);
    } catch {
      // A progress consumer never breaks a copy.
    }
  };
  checkAbort(signal, `copy ${srcRef.toString()}`);
  emit({ type: 'copy-start', source: srcRef.toString(), destination: destRef.toString() });
  const src = await srcRef.newSource(options.sourceCtx ?? options.ctx, { signal });
  try {
    const dest = await destRef.newDestination(options.destinationCtx ?? options.ctx, { signal });
    try {
      const c: Ctx = {
        src,
        dest,
        srcRef,
        opts: options,
        signal,
        emit,
        blobs: new Map(),
        limit: limiter(Math.max(1, options.concurrency ?? 6)),
      };
      let result: CopyResult;
      try {
        result = await copyTop(c);
      } catch (err) {
        // Streams report cancellation as Node's AbortError; callers get one typed error.
        if (signal?.aborted && !(err instanceof AbortedError)) {
          throw new AbortedError(`copy to ${destRef.toString()}`, { cause: err });
        }
        throw err;
      }
      checkAbort(signal, `copy to ${destRef.toString()}`);
      await dest.commit({ signal });
      emit({ type: 'copy-done', manifestDigest: result.manifestDigest, mediaType: result.mediaType });
      return result;
    } finally {
      await dest.close();
    }
  } finally {
    await src.close();
  }
}

/**
 * Like copy(), but yields the progress events as an async iterable; the iteration ends when the
 * copy finished and throws its error if it failed. `result` resolves with the CopyResult.
 */
export function copyWithProgress(
  srcRef: ImageReference,
  destRef: ImageReference,
  options: Omit<CopyOptions, 'onProgress'> = {},
): AsyncIterable<CopyProgressEvent> & { result: Promise<CopyResult> } {
  const queue: CopyProgressEvent[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: unknown;
  const result = copy(srcRef, destRef, {
    ...options,
    onProgress: (e) => {
      queue.push(e);
      wake?.();
    },
  });
  result.then(
    () => {
      finished = true;
      wake?.();
    },
    (err) => {
      failure = err;
      finished = true;
      wake?.();
    },
  );
  // The iterable reports the failure; `result` must not also be an unhandled rejection.
  result.catch(() => {});
  return {
    result,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (finished) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    },
  };
}

async function copyTop(c: Ctx): Promise<CopyResult> {
  const top = await c.src.getManifest(undefined, { signal: c.signal });
  const object = `manifest of ${c.srcRef.toString()}`;
  const parsed = parseManifest(top.bytes, top.mediaType, object);
  const topDigest = digestBytes(top.bytes);
  c.emit({
    type: 'manifest-resolved',
    digest: topDigest,
    mediaType: parsed.mediaType,
    instances: parsed.kind === 'index' ? parsed.manifests.length : 1,
  });
  if (parsed.kind === 'manifest') return copySingle(c, top.bytes, parsed, false);
  if (c.opts.instances === 'all') {
    if (!c.dest.supportsIndex) {
      throw new UnsupportedError(
        c.dest.reference.toString(),
        'destination cannot store multi-platform images',
      );
    }
    return copyIndex(c, top.bytes, parsed);
  }
  const chosen = selectPlatform(parsed, c.opts.platform ?? (c.opts.sourceCtx ?? c.opts.ctx)?.platform);
  if (!chosen) {
    throw new NoMatchingPlatformError(
      object,
      formatPlatform({ ...(c.opts.platform ?? {}) }) || 'host',
      listPlatforms(parsed),
    );
  }
  c.emit({ type: 'instance-start', digest: chosen.digest, platform: chosen.platform });
  const inst = await c.src.getManifest(chosen.digest, { signal: c.signal });
  const instParsed = parseManifest(inst.bytes, inst.mediaType, `manifest ${chosen.digest}`);
  if (instParsed.kind !== 'manifest') throw new UnsupportedError(object, 'nested indexes are not supported');
  return copySingle(c, inst.bytes, instParsed, false);
}

async function copyIndex(c: Ctx, bytes: Uint8Array, idx: ParsedIndex): Promise<CopyResult> {
  const newDescs: Descriptor[] = [];
  let changed = false;
  for (const d of idx.manifests) {
    checkAbort(c.signal, c.dest.reference.toString());
    c.emit({ type: 'instance-start', digest: d.digest, platform: d.platform });
    const inst = await c.src.getManifest(d.digest, { signal: c.signal });
    const p = parseManifest(inst.bytes, inst.mediaType, `manifest ${d.digest}`);
    if (p.kind !== 'manifest')
      throw new UnsupportedError(`manifest ${d.digest}`, 'nested indexes are not supported');
    const r = await copySingle(c, inst.bytes, p, true);
    const nd: Descriptor = {
      ...d,
      mediaType: r.mediaType,
      digest: r.manifestDigest,
      size: r.manifest.length,
    };
    if (nd.digest !== d.digest || nd.mediaType !== d.mediaType) changed = true;
    newDescs.push(nd);
  }
  const wantIndexType = indexTypeFor(c, idx, newDescs);
  let outBytes = bytes;
  let outType = idx.mediaType;
  if (changed || wantIndexType !== idx.mediaType) {
    if (c.opts.preserveDigests)
      throw new UnsupportedError(c.dest.reference.toString(), 'copy would change the index digest');
    outBytes = convertIndex(idx, wantIndexType, newDescs);
    outType = wantIndexType;
  }
  await c.dest.putManifest(outBytes, outType, undefined, { signal: c.signal });
  const digest = digestBytes(outBytes);
  c.emit({ type: 'manifest-written', digest, mediaType: outType, instance: false });
  return { manifestDigest: digest, mediaType: outType, manifest: outBytes };
}

function indexTypeFor(c: Ctx, idx: ParsedIndex, instances: Descriptor[]): string {
  const supported = c.dest.supportedManifestMediaTypes();
  let want = idx.mediaType;
  if (c.opts.manifestFormat === 'oci') want = MediaTypes.ociIndex;
  if (c.opts.manifestFormat === 'docker') want = MediaTypes.dockerManifestList;
  // A list of OCI manifests is an OCI index; Docker lists hold Docker manifests only.
  if (instances.some((d) => d.mediaType === MediaTypes.ociManifest)) want = MediaTypes.ociIndex;
  if (supported.length && !supported.includes(want)) {
    want = supported.includes(MediaTypes.ociIndex) ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
  }
  return want;
}

async function readConfig(c: Ctx, desc: Descriptor): Promise<Buffer> {
  const object = `config ${desc.digest} of ${c.srcRef.toString()}`;
  const { stream } = await c.src.getBlob(desc, { signal: c.signal });
  const v = new VerifyingStream({ digest: desc.digest, size: desc.size, object });
  stream.on('error', (e) => v.destroy(e));
  return readCapped(stream.pipe(v), MAX_CONFIG_SIZE, object);
}

async function copySingle(
  c: Ctx,
  bytes: Uint8Array,
  m: ParsedImageManifest,
  asInstance: boolean,
): Promise<CopyResult> {
  const configBytes = await readConfig(c, m.config);
  const isImage =
    m.config.mediaType === MediaTypes.ociConfig || m.config.mediaType === MediaTypes.dockerConfig;
  const config = isImage ? parseImageConfig(configBytes, `config ${m.config.digest}`) : undefined;
  const diffIDs = config?.rootfs.diff_ids ?? [];
  if (config && diffIDs.length !== m.layers.length) {
    throw new ImageError(
      'ERR_INVALID_MANIFEST',
      `image ${c.srcRef.toString()}: config lists ${diffIDs.length} diffIDs for ${m.layers.length} layers`,
    );
  }

  // Target format: what the destination accepts, or what the caller asked for.
  const supported = c.dest.supportedManifestMediaTypes();
  let format: 'oci' | 'docker' = m.format;
  if (c.opts.manifestFormat) format = c.opts.manifestFormat;
  const wantComp = c.opts.compression ?? c.dest.desiredLayerCompression;
  if (wantComp === 'zstd') format = 'oci';
  const typeOf = (f: 'oci' | 'docker') => (f === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest);
  if (supported.length && !supported.includes(typeOf(format))) {
    format = supported.includes(MediaTypes.ociManifest) ? 'oci' : 'docker';
  }

  // Config first (destinations such as docker-archive need it before layers).
  const configDesc = await copyBlobOnce(c, m.config, 'config', async () => {
    const { Readable } = await import('node:stream');
    return c.dest.putBlob(
      Readable.from([configBytes]),
      { mediaType: m.config.mediaType, digest: m.config.digest, size: m.config.size },
      { signal: c.signal, isConfig: true },
    );
  });

  const layerDescs = await Promise.all(
    m.layers.map((layer, i) => c.limit(() => copyLayer(c, layer, diffIDs[i], wantComp, format))),
  );

  const layersChanged = layerDescs.some(
    (d, i) => d.digest !== m.layers[i]!.digest || d.mediaType !== m.layers[i]!.mediaType,
  );
  let outBytes: Uint8Array = bytes;
  let outType = m.mediaType;
  if (layersChanged || format !== m.format || configDesc.digest !== m.config.digest) {
    if (c.opts.preserveDigests) {
      throw new UnsupportedError(
        c.dest.reference.toString(),
        'copy would change the manifest digest (conversion or recompression)',
      );
    }
    const rewritten: ParsedImageManifest = { ...m, layers: layerDescs };
    outType = typeOf(format);
    outBytes = convertManifest(rewritten, outType, `manifest of ${c.srcRef.toString()}`);
  }
  const digest = digestBytes(outBytes);
  await c.dest.putManifest(outBytes, outType, asInstance ? digest : undefined, { signal: c.signal });
  c.emit({ type: 'manifest-written', digest, mediaType: outType, instance: asInstance });
  return { manifestDigest: digest, mediaType: outType, manifest: outBytes };
}

function copyBlobOnce(
  c: Ctx,
  desc: Descriptor,
  kind: BlobKind,
  put: () => Promise<Descriptor>,
): Promise<Descriptor> {
  const key = `${kind}:${desc.digest}`;
  let p = c.blobs.get(key);
  if (!p) {
    p = (async () => {
      const reuse = await c.dest.tryReusingBlob(desc, { signal: c.signal, source: c.srcRef });
      if (reuse.reused) {
        c.emit({ type: 'blob-skipped', kind, digest: desc.digest, size: desc.size, reason: reuse.how });
        return reuse.descriptor;
      }
      c.emit({ type: 'blob-start', kind, digest: desc.digest, size: desc.size });
      const stored = await put();
      c.emit({
        type: 'blob-verified',
        kind,
        digest: desc.digest,
        size: desc.size,
        storedDigest: stored.digest,
      });
      c.emit({
        type: 'blob-done',
        kind,
        digest: desc.digest,
        size: desc.size,
        storedDigest: stored.digest,
        storedSize: stored.size,
      });
      return stored;
    })();
    c.blobs.set(key, p);
  }
  return p;
}

async function copyLayer(
  c: Ctx,
  layer: Descriptor,
  diffID: string | undefined,
  want: DesiredCompression,
  format: 'oci' | 'docker',
): Promise<Descriptor> {
  checkAbort(c.signal, `layer ${layer.digest}`);
  const srcComp = compressionOfLayerMediaType(layer.mediaType);
  if (want === 'compress') want = srcComp === 'none' ? 'gzip' : 'preserve';
  const target: LayerCompression | undefined =
    want === 'preserve' || srcComp === undefined || (want === srcComp && !c.opts.forceCompression)
      ? undefined
      : want;
  const object = `layer ${layer.digest} of ${c.srcRef.toString()}`;
  const interval = c.opts.progressIntervalMs ?? 100;
  let last = 0;
  const progress = (n: number) => {
    const now = Date.now();
    if (now - last < interval && n !== layer.size) return;
    last = now;
    c.emit({
      type: 'blob-progress',
      kind: 'layer',
      digest: layer.digest,
      bytesDone: n,
      bytesTotal: layer.size,
    });
  };

  if (target === undefined) {
    // Same bytes: the destination can reuse or receive the blob as is.
    const mediaType =
      format === 'docker' && layer.mediaType.startsWith('application/vnd.oci.')
        ? layerMediaType('docker', srcComp ?? 'gzip')
        : format === 'oci' && layer.mediaType.startsWith('application/vnd.docker.')
          ? layerMediaType('oci', srcComp ?? 'gzip')
          : layer.mediaType;
    const stored = await copyBlobOnce(c, layer, 'layer', async () => {
      // The destination verifies digest and size (ImageDestination contract); hashing here too
      // would only add a second pass over every byte.
      const { stream } = await c.src.getBlob(layer, { signal: c.signal });
      return c.dest.putBlob(
        stream,
        { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
        { signal: c.signal, onProgress: progress, diffID: c.dest.needsDiffIDs ? diffID : undefined },
      );
    });
    return { ...stored, mediaType };
  }

  // Recompression: verify the source digest, the diffID of the uncompressed stream, then compress.
  const key = `layer:${layer.digest}->${target}`;
  let p = c.blobs.get(key);
  if (!p) {
    p = (async () => {
      c.emit({ type: 'blob-start', kind: 'layer', digest: layer.digest, size: layer.size });
      const dec = await decompressionStages(srcComp!, object);
      const { stream } = await c.src.getBlob(layer, { signal: c.signal });
      const v = new VerifyingStream({ digest: layer.digest, size: layer.size, object, onProgress: progress });
      const diff = new VerifyingStream({ digest: diffID, object: `uncompressed ${object} (diffID)` });
      const comp = compressor(target, object, c.opts.compressionLevel);
      const out = new PassThrough({ highWaterMark: 1 << 16 });
      const stages: NodeJS.ReadWriteStream[] = [v, ...dec, diff, comp];
      const piping = pipeline([stream, ...stages, out], { signal: c.signal });
      piping.catch(() => {});
      let stored: Descriptor;
      try {
        stored = await c.dest.putBlob(
          out,
          { mediaType: layerMediaType(format, target) },
          { signal: c.signal, diffID },
        );
        await piping;
      } catch (err) {
        out.destroy();
        const perr = await piping.then(
          () => undefined,
          (e: unknown) => e,
        );
        throw perr instanceof DigestMismatchError || perr instanceof ImageError ? perr : err;
      }
      c.emit({
        type: 'blob-verified',
        kind: 'layer',
        digest: layer.digest,
        size: layer.size,
        storedDigest: stored.digest,
      });
      c.emit({
        type: 'blob-done',
        kind: 'layer',
        digest: layer.digest,
        size: layer.size,
        storedDigest: stored.digest,
        storedSize: stored.size,
      });
      return { ...stored, mediaType: layerMediaType(format, target) };
    })();
    c.blobs.set(key, p);
  }
  return p;
}
