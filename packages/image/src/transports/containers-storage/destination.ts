/**
 * Writing an image into the store (pull, load, copy from any transport).
 *
 * Layers are extracted WHILE they stream in: no blob is staged on disk. A layer can only be
 * applied on top of its parent, so the destination needs to know where each blob goes in the
 * chain. copy() writes the config first; its `rootfs.diff_ids` give every layer's position and
 * chainID, and each layer blob arrives with its diffID (`needsDiffIDs`). Every layer's ID is the
 * hex of its chainID, so a child's parent ID is known before the parent exists. On overlay, all
 * blobs are applied at once (each into its own upper dir) and completed in chain order; on vfs
 * (which copies the parent first) a blob for position i waits, its stream paused so the download
 * is back-pressured rather than buffered, until position i-1 is complete. Positions that share a
 * diffID with an earlier one (copy() sends a repeated blob once) are created from that layer's
 * rebuilt tar.
 *
 * Skipping: tryReusingBlob() answers "exists" when the store has a layer made from that
 * compressed blob at the right chain position; putBlob() also finds a complete layer by chainID
 * and then does not read the stream.
 *
 * Crash and failure: every layer is created under a store lease; commit() writes the image record
 * (which then holds the top layer) and releases the lease; close() without commit releases the
 * lease, which deletes the layers nothing else uses. A killed process's lease is released by the
 * next openStore().
 */
import { type Readable, Transform } from 'node:stream';
import type { Store } from '@libpod-ts/storage';
import { digestBytes, readCapped, verifyBytes } from '../../digest/digest.js';
import { DigestMismatchError, ImageError, SizeMismatchError, UnsupportedError } from '../../errors.js';
import { MediaTypes } from '../../manifest/media-types.js';
import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, parseImageConfig } from '../../manifest/parse.js';
import type { Descriptor } from '../../manifest/schemas.js';
import type {
  BlobInfo,
  DesiredCompression,
  ImageDestination,
  OperationOptions,
  PutBlobOptions,
  ReuseResult,
  TryReuseOptions,
} from '../../types.js';
import { Closable } from '../common/source-base.js';
import type { StorageReference } from './reference.js';

interface Slot {
  diffID: string;
  chainID: string;
  claimed: boolean;
  layerId: Promise<string>;
  resolve: (id: string) => void;
  reject: (err: unknown) => void;
}

function newSlot(diffID: string, chainID: string): Slot {
  let resolve!: (id: string) => void;
  let reject!: (err: unknown) => void;
  const layerId = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  layerId.catch(() => undefined);
  return { diffID, chainID, claimed: false, layerId, resolve, reject };
}

export class StorageDestination extends Closable implements ImageDestination {
  readonly supportsIndex = false;
  readonly desiredLayerCompression: DesiredCompression = 'preserve';
  readonly needsDiffIDs = true;
  private readonly store: Store;
  private config: Buffer | undefined;
  private slots: Slot[] = [];
  private manifest: { bytes: Buffer; mediaType: string } | undefined;
  private lease: Promise<string> | undefined;
  private readonly work = new Set<Promise<unknown>>();
  private committed = false;

  constructor(readonly reference: StorageReference) {
    super();
    this.store = reference.store;
  }

  supportedManifestMediaTypes(): readonly string[] {
    return [MediaTypes.ociManifest, MediaTypes.dockerManifest];
  }

  private getLease(): Promise<string> {
    this.lease ??= this.store.createLease();
    return this.lease;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    const done = () => this.work.delete(p);
    p.then(done, done);
    return p;
  }

  async tryReusingBlob(descriptor: Descriptor, options?: TryReuseOptions): Promise<ReuseResult> {
    options?.signal?.throwIfAborted();
    if (!this.config) return { reused: false };
    const candidates = await this.store.layersByBlobDigest(descriptor.digest);
    for (const cand of candidates) {
      const positions = this.slots.filter((s) => !s.claimed && s.diffID === cand.diffID);
      if (positions.length === 0) continue;
      const found: Array<[Slot, string]> = [];
      for (const slot of positions) {
        // Only layers named by their chainID: a pull's layer IDs are predictable (see putLayer).
        const l = await this.store.getLayer(chainHex(slot.chainID)).catch(() => undefined);
        if (!l) return { reused: false };
        found.push([slot, l.id]);
      }
      const lease = await this.getLease();
      for (const [slot, id] of found) {
        await this.store.leaseLayer(lease, id);
        slot.claimed = true;
        slot.resolve(id);
      }
      return { reused: true, descriptor, how: 'exists' };
    }
    return { reused: false };
  }

  async putBlob(stream: Readable, blob: BlobInfo, options: PutBlobOptions = {}): Promise<Descriptor> {
    if (options.isConfig) return this.putConfig(stream, blob);
    return this.track(this.putLayer(stream, blob, options));
  }

  private async putConfig(stream: Readable, blob: BlobInfo): Promise<Descriptor> {
    const object = `config ${blob.digest ?? ''} for ${this.reference.toString()}`;
    const bytes = await readCapped(stream, MAX_CONFIG_SIZE, object);
    if (blob.digest) verifyBytes(bytes, blob.digest, object);
    if (blob.size !== undefined && blob.size >= 0 && blob.size !== bytes.length) {
      throw new SizeMismatchError({ object, expected: blob.size, actual: bytes.length });
    }
    const cfg = parseImageConfig(bytes, object);
    // Loaded here, not at import: copies that never touch a store never load storage's graph
    // (~12 MiB of RSS: level, the xattr addon). The caller's open Store already loaded it.
    const { chainIdOf } = await import('@libpod-ts/storage');
    this.config = bytes;
    let chain: string | undefined;
    this.slots = cfg.rootfs.diff_ids.map((d) => {
      chain = chainIdOf(chain, d);
      return newSlot(d, chain);
    });
    return { mediaType: blob.mediaType, digest: digestBytes(bytes), size: bytes.length };
  }

  private async putLayer(stream: Readable, blob: BlobInfo, options: PutBlobOptions): Promise<Descriptor> {
    const object = `layer ${blob.digest ?? ''} for ${this.reference.toString()}`;
    if (!this.config) {
      stream.destroy();
      throw new UnsupportedError(this.reference.toString(), 'layers must come after the image config');
    }
    const diffID = options.diffID;
    if (!diffID) {
      stream.destroy();
      throw new UnsupportedError(this.reference.toString(), `${object}: the diffID is needed to place it`);
    }
    const index = this.slots.findIndex((s) => !s.claimed && s.diffID === diffID);
    if (index < 0) {
      // The same content is already being written at every position that needs it.
      stream.destroy();
      const any = this.slots.find((s) => s.diffID === diffID);
      if (!any)
        throw new ImageError('ERR_INVALID_MANIFEST', `${object}: diffID ${diffID} is not in the config`);
      await any.layerId;
      return { mediaType: blob.mediaType, digest: blob.digest ?? diffID, size: blob.size ?? -1 };
    }
    const slot = this.slots[index]!;
    slot.claimed = true;
    try {
      // overlay applies each layer into its own upper dir, so layers can be written at once and
      // completed in order; vfs copies the parent first, so it waits for it.
      const parallel = this.store.driver.name === 'overlay' && index > 0;
      const prev = index > 0 ? this.slots[index - 1]! : undefined;
      const parent = parallel ? chainHex(prev!.chainID) : await prev?.layerId;
      const lease = await this.getLease();
      let size = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          size += chunk.length;
          options.onProgress?.(size);
          cb(null, chunk);
        },
      });
      stream.on('error', (e) => counter.destroy(e));
      // The store hashes the blob (off the main thread for large gzip layers) and calls
      // verifyInput before the layer becomes complete: a blob with the wrong digest never shows.
      const { layer, created, input } = await this.store.createLayer({
        parent,
        tar: stream.pipe(counter),
        expectedDiffID: diffID,
        id: chainHex(slot.chainID),
        lease,
        signal: options.signal,
        verifyInput: ({ digest, size }) => {
          if (blob.digest && blob.digest !== digest) {
            throw new DigestMismatchError({ object, expected: blob.digest, actual: digest });
          }
          if (blob.size !== undefined && blob.size >= 0 && blob.size !== size) {
            throw new SizeMismatchError({ object, expected: blob.size, actual: size });
          }
        },
        ...(parallel ? { parentPending: prev!.layerId } : {}),
      });
      if (created && input) {
        const { digest, size } = input;
        await this.store.recordBlobDigest(layer.id, digest, size);
        slot.resolve(layer.id);
        this.createDuplicates(diffID, layer.id, options.signal);
        return { mediaType: blob.mediaType, digest, size };
      }
      // Someone else (another pull) wrote this layer: the blob is not needed; stop its download.
      stream.destroy();
      slot.resolve(layer.id);
      this.createDuplicates(diffID, layer.id, options.signal);
      return { mediaType: blob.mediaType, digest: blob.digest ?? diffID, size: blob.size ?? -1 };
    } catch (err) {
      stream.destroy();
      slot.reject(err);
      throw err;
    }
  }

  /** Later positions with the same diffID get the same content, from the layer just written. */
  private createDuplicates(diffID: string, source: string, signal: AbortSignal | undefined): void {
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (slot.claimed || slot.diffID !== diffID) continue;
      slot.claimed = true;
      const prev = i > 0 ? this.slots[i - 1]!.layerId : Promise.resolve(undefined);
      void this.track(
        (async () => {
          try {
            const parent = await prev;
            const { layer } = await this.store.createLayer({
              parent,
              tar: await this.store.layerTar(source),
              expectedDiffID: diffID,
              id: chainHex(slot.chainID),
              lease: await this.getLease(),
              signal,
            });
            slot.resolve(layer.id);
          } catch (err) {
            slot.reject(err);
          }
        })(),
      );
    }
  }

  async putManifest(bytes: Uint8Array, mediaType: string, _instanceDigest?: string, _o?: OperationOptions) {
    if (bytes.length > MAX_MANIFEST_SIZE) {
      throw new ImageError('ERR_TOO_LARGE', `manifest for ${this.reference.toString()} is too large`);
    }
    this.manifest = { bytes: Buffer.from(bytes), mediaType };
  }

  async commit(options?: OperationOptions): Promise<void> {
    if (!this.config) throw new UnsupportedError(this.reference.toString(), 'commit without an image config');
    const missing = this.slots.findIndex((s) => !s.claimed);
    if (missing >= 0) {
      throw new ImageError(
        'ERR_INCOMPLETE_IMAGE',
        `${this.reference.toString()}: layer ${missing} was never written`,
      );
    }
    const layerIds = await Promise.all(this.slots.map((s) => s.layerId));
    const named = this.reference.named;
    const manifestDigest = this.manifest ? digestBytes(this.manifest.bytes) : undefined;
    await this.store.createImage({
      config: this.config,
      manifest: this.manifest?.bytes,
      manifestMediaType: this.manifest?.mediaType,
      topLayer: layerIds.at(-1) ?? null,
      names: named ? [named.toString()] : [],
      digests: named && manifestDigest ? [`${named.nameOnly().toString()}@${manifestDigest}`] : [],
      signal: options?.signal,
    });
    this.committed = true;
    if (this.lease) await this.store.releaseLease(await this.lease);
    this.lease = undefined;
  }

  protected async doClose(): Promise<void> {
    // Wake blobs still waiting for a parent that will never come, then let the rest finish.
    for (const s of this.slots) s.reject(new ImageError('ERR_CLOSED', `${this.reference.toString()} closed`));
    await Promise.allSettled([...this.work]);
    if (this.lease && !this.committed) {
      const lease = await this.lease.catch(() => undefined);
      if (lease) await this.store.releaseLease(lease);
    }
  }
}

function chainHex(chainID: string): string {
  return chainID.slice(chainID.indexOf(':') + 1);
}
