/**
 * Reading an image out of the store (push, save, copy to another transport).
 *
 * The store keeps layers unpacked, not their compressed blobs, so the source presents the image
 * as an OCI manifest with UNCOMPRESSED layers: each layer's digest is its diffID and its bytes
 * are the store's `layerTar()` (the original tar rebuilt byte for byte from the layer's files).
 * The config, and so the image ID, is unchanged; the manifest digest differs from the pulled one
 * unless that one already had uncompressed layers (then its stored bytes are returned as is).
 * copy() compresses for destinations that want it (`compression: 'gzip'`).
 *
 * Verification: getBlob() does not verify; copy() verifies every blob's digest (and a rebuilt
 * tar that no longer matches its diffID fails there with DigestMismatchError).
 */
import { Readable } from 'node:stream';
import type { ImageRecord, LayerRecord } from '@libpod-ts/storage';
import { digestBytes } from '../../digest/digest.js';
import { NotFoundError } from '../../errors.js';
import { MediaTypes } from '../../manifest/media-types.js';
import { parseImageConfig } from '../../manifest/parse.js';
import type { Descriptor } from '../../manifest/schemas.js';
import type { BlobStream, ImageSource, ManifestBlob, OperationOptions } from '../../types.js';
import { Closable } from '../common/source-base.js';
import type { StorageReference } from './reference.js';

export class StorageSource extends Closable implements ImageSource {
  private manifest: ManifestBlob | undefined;

  private constructor(
    readonly reference: StorageReference,
    private readonly image: ImageRecord,
    private readonly config: Buffer,
    private readonly layers: LayerRecord[],
  ) {
    super();
  }

  static async open(ref: StorageReference, _options?: OperationOptions): Promise<StorageSource> {
    let image: ImageRecord;
    try {
      image = await ref.store.lookupImage(ref.lookupKey());
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_IMAGE_NOT_FOUND') {
        throw new NotFoundError(ref.toString(), { cause: err });
      }
      throw err;
    }
    if (ref.id && ref.named && !image.names.includes(ref.named.toString())) {
      throw new NotFoundError(`${ref.toString()} (image ${ref.id} is not named ${ref.named.toString()})`);
    }
    const config = await ref.store.imageBlob(image.id, 'config');
    const layers = await Promise.all(image.layers.map((id) => ref.store.getLayer(id)));
    return new StorageSource(ref, image, config, layers);
  }

  protected async doClose(): Promise<void> {}

  async getManifest(instanceDigest?: string, _options?: OperationOptions): Promise<ManifestBlob> {
    this.manifest ??= await this.buildManifest();
    if (instanceDigest !== undefined && instanceDigest !== digestBytes(this.manifest.bytes)) {
      throw new NotFoundError(`${this.reference.toString()} instance ${instanceDigest}`);
    }
    return this.manifest;
  }

  private async buildManifest(): Promise<ManifestBlob> {
    const layerDescs: Descriptor[] = this.layers.map((l) => ({
      mediaType: MediaTypes.ociLayout,
      digest: l.diffID!,
      size: l.uncompressedSize ?? 1024,
    }));
    // The stored manifest is served when it already describes exactly these blobs.
    if (this.image.manifestDigest && this.image.blobs.includes('manifest')) {
      const stored = await this.reference.store.imageBlob(this.image.id, 'manifest');
      try {
        const m = JSON.parse(stored.toString('utf8')) as { layers?: Descriptor[]; config?: Descriptor };
        const same =
          m.config?.digest === `sha256:${this.image.id}` &&
          m.layers?.length === layerDescs.length &&
          m.layers.every((d, i) => d.digest === layerDescs[i]!.digest);
        if (same && this.image.manifestMediaType)
          return { bytes: stored, mediaType: this.image.manifestMediaType };
      } catch {
        // fall through to a generated manifest
      }
    }
    const cfg = parseImageConfig(this.config, `config of ${this.reference.toString()}`);
    const diffIDs = cfg.rootfs.diff_ids;
    if (diffIDs.length !== layerDescs.length || diffIDs.some((d, i) => d !== layerDescs[i]!.digest)) {
      throw new NotFoundError(
        `${this.reference.toString()}: stored layers do not match the config's diff_ids`,
      );
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: {
        mediaType: MediaTypes.ociConfig,
        digest: `sha256:${this.image.id}`,
        size: this.config.length,
      },
      layers: layerDescs,
    };
    return { bytes: Buffer.from(JSON.stringify(manifest)), mediaType: MediaTypes.ociManifest };
  }

  async getBlob(
    descriptor: Descriptor,
    options?: OperationOptions & { offset?: number },
  ): Promise<BlobStream> {
    options?.signal?.throwIfAborted();
    const offset = options?.offset ?? 0;
    if (descriptor.digest === `sha256:${this.image.id}`) {
      return { stream: Readable.from([this.config.subarray(offset)]), size: this.config.length };
    }
    const layer = this.layers.find((l) => l.diffID === descriptor.digest);
    if (!layer) throw new NotFoundError(`${this.reference.toString()} blob ${descriptor.digest}`);
    const tar = await this.reference.store.layerTar(layer.id);
    return { stream: offset > 0 ? skip(tar, offset) : tar, size: layer.uncompressedSize ?? -1 };
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (
      descriptor.digest === `sha256:${this.image.id}` ||
      this.layers.some((l) => l.diffID === descriptor.digest)
    );
  }
}

function skip(src: Readable, n: number): Readable {
  let left = n;
  return Readable.from(
    (async function* () {
      for await (const c of src) {
        const b = c as Buffer;
        if (left >= b.length) {
          left -= b.length;
          continue;
        }
        yield b.subarray(left);
        left = 0;
      }
    })(),
  );
}
