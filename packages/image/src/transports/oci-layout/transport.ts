/**
 * `oci:<path>[:<ref>]` — an OCI image layout directory. `<ref>` names an index.json entry by its
 * `org.opencontainers.image.ref.name` annotation; without it, a source takes the only image and
 * a destination adds an unnamed entry. The path is split at the first ':' (as containers/image).
 */
import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { digestBytes, parseDigest, verifyBytes } from '../../digest/digest.js';
import { InvalidReferenceError, NotFoundError } from '../../errors.js';
import { detectManifestMediaType, MAX_MANIFEST_SIZE } from '../../manifest/parse.js';
import type { Descriptor } from '../../manifest/schemas.js';
import type {
  BlobInfo,
  BlobStream,
  DesiredCompression,
  ImageDestination,
  ImageReference,
  ImageSource,
  ManifestBlob,
  NamedReferenceLike,
  OperationOptions,
  PutBlobOptions,
  ReuseResult,
  SystemContext,
  Transport,
} from '../../types.js';
import { openBlobFile, readSmallFile, writeVerifiedBlob } from '../common/files.js';
import { Closable } from '../common/source-base.js';
import { blobPath, findInIndex, initLayout, readLayoutIndex, updateLayoutIndex } from './layout.js';

const REF_NAME_RE = /^[A-Za-z0-9._:@/+-]*$/;

export class OciLayoutReference implements ImageReference {
  readonly transport: Transport;
  readonly path: string;
  readonly refName: string;

  constructor(transport: Transport, path: string, refName: string) {
    this.transport = transport;
    this.path = path;
    this.refName = refName;
  }

  stringWithinTransport(): string {
    return this.refName ? `${this.path}:${this.refName}` : this.path;
  }

  toString(): string {
    return `${this.transport.name}:${this.stringWithinTransport()}`;
  }

  dockerReference(): NamedReferenceLike | undefined {
    return undefined;
  }

  async newSource(_ctx?: SystemContext, _options?: OperationOptions): Promise<ImageSource> {
    const index = await readLayoutIndex(this.path);
    const desc = findInIndex(index, this.refName, this.toString());
    return new OciLayoutSource(this, this.path, desc);
  }

  async newDestination(_ctx?: SystemContext, _options?: OperationOptions): Promise<ImageDestination> {
    await initLayout(this.path);
    return new OciLayoutDestination(this, this.path, this.refName);
  }
}

/** Reads images from a layout root; `top` is the index.json descriptor chosen. Exported for oci-archive. */
export class OciLayoutSource extends Closable implements ImageSource {
  readonly reference: ImageReference;
  private readonly root: string;
  private readonly top: Descriptor;

  constructor(reference: ImageReference, root: string, top: Descriptor) {
    super();
    this.reference = reference;
    this.root = root;
    this.top = top;
  }

  async getManifest(instanceDigest?: string): Promise<ManifestBlob> {
    const digest = instanceDigest ?? this.top.digest;
    const object = `manifest ${digest} in ${this.reference.toString()}`;
    let bytes: Buffer;
    try {
      bytes = await readSmallFile(blobPath(this.root, digest), MAX_MANIFEST_SIZE, object);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(object, { cause: err });
      throw err;
    }
    verifyBytes(bytes, digest, object);
    const declared = instanceDigest ? '' : this.top.mediaType;
    return { bytes, mediaType: detectManifestMediaType(bytes, declared, object) };
  }

  async getBlob(
    descriptor: Descriptor,
    options: OperationOptions & { offset?: number } = {},
  ): Promise<BlobStream> {
    return openBlobFile(
      blobPath(this.root, descriptor.digest),
      `blob ${descriptor.digest} in ${this.reference.toString()}`,
      options,
    );
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    try {
      await stat(blobPath(this.root, descriptor.digest));
      return true;
    } catch {
      return false;
    }
  }

  protected async doClose(): Promise<void> {}
}

/** Writes into a layout root. Exported for oci-archive, which commits a staging layout. */
export class OciLayoutDestination extends Closable implements ImageDestination {
  readonly reference: ImageReference;
  readonly supportsIndex = true;
  readonly desiredLayerCompression: DesiredCompression = 'preserve';
  readonly needsDiffIDs = false;
  private readonly root: string;
  private readonly refName: string;
  private top: Descriptor | undefined;

  constructor(reference: ImageReference, root: string, refName: string) {
    super();
    this.reference = reference;
    this.root = root;
    this.refName = refName;
  }

  supportedManifestMediaTypes(): readonly string[] {
    // OCI layouts may hold Docker schema 2 manifests too (skopeo writes them unconverted).
    return [];
  }

  async tryReusingBlob(descriptor: Descriptor): Promise<ReuseResult> {
    try {
      const st = await stat(blobPath(this.root, descriptor.digest));
      if (st.isFile() && (descriptor.size < 0 || st.size === descriptor.size)) {
        return {
          reused: true,
          descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: st.size },
          how: 'exists',
        };
      }
    } catch {
      // not present
    }
    return { reused: false };
  }

  async putBlob(stream: Readable, blob: BlobInfo, options: PutBlobOptions = {}): Promise<Descriptor> {
    const alg = blob.digest ? parseDigest(blob.digest).algorithm : 'sha256';
    const dir = `${this.root}/blobs/${alg}`;
    await mkdir(dir, { recursive: true });
    const r = await writeVerifiedBlob(stream, dir, (d) => blobPath(this.root, d), {
      digest: blob.digest,
      size: blob.size,
      object: `blob ${blob.digest ?? '(new)'} into ${this.reference.toString()}`,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const d: Descriptor = { mediaType: blob.mediaType, digest: r.digest, size: r.size };
    if (blob.annotations) d.annotations = blob.annotations;
    return d;
  }

  async putManifest(bytes: Uint8Array, mediaType: string, instanceDigest?: string): Promise<void> {
    const digest = digestBytes(bytes);
    if (instanceDigest && instanceDigest !== digest)
      verifyBytes(bytes, instanceDigest, `manifest for ${this.reference.toString()}`);
    await this.putBlob(Readable.from([Buffer.from(bytes)]), {
      mediaType,
      digest: instanceDigest ?? digest,
      size: bytes.length,
    });
    if (!instanceDigest) this.top = { mediaType, digest, size: bytes.length };
  }

  async commit(): Promise<void> {
    if (!this.top)
      throw new InvalidReferenceError(this.reference.toString(), 'commit() before putManifest()');
    await updateLayoutIndex(this.root, this.top, this.refName);
  }

  protected async doClose(): Promise<void> {}
}

/** Splits `path[:ref]` at the first ':'. */
export function splitPathAndRef(s: string, transportName: string): { path: string; ref: string } {
  const i = s.indexOf(':');
  const path = i === -1 ? s : s.slice(0, i);
  const ref = i === -1 ? '' : s.slice(i + 1);
  if (!path) throw new InvalidReferenceError(`${transportName}:${s}`, 'empty path');
  if (ref && (!REF_NAME_RE.test(ref) || ref.length > 255)) {
    throw new InvalidReferenceError(`${transportName}:${s}`, 'invalid image name in layout');
  }
  return { path: resolve(path), ref };
}

export function ociLayoutTransport(): Transport {
  const t: Transport = {
    name: 'oci',
    parseReference(s: string): ImageReference {
      const { path, ref } = splitPathAndRef(s, 'oci');
      return new OciLayoutReference(t, path, ref);
    },
  };
  return t;
}
