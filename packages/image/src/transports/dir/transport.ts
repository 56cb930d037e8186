/**
 * `dir:<path>` — skopeo's directory format: `version` ("Directory Transport Version: 1.1"),
 * `manifest.json`, instance manifests `<hex>.manifest.json`, and blobs named by their sha256 hex
 * (`<alg>-<hex>` for other algorithms).
 *
 * Writing happens in a sibling staging directory; commit() swaps it into place (old contents are
 * removed only then), so readers never see a mix. A non-empty target without a `version` file is
 * refused rather than deleted.
 */
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { parseDigest, verifyBytes } from '../../digest/digest.js';
import { ImageError, InvalidReferenceError, NotFoundError } from '../../errors.js';
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
import { openBlobFile, readSmallFile, writeFileAtomic, writeVerifiedBlob } from '../common/files.js';
import { Closable } from '../common/source-base.js';

const VERSION = 'Directory Transport Version: 1.1\n';

function blobName(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return algorithm === 'sha256' ? hex : `${algorithm}-${hex}`;
}

function manifestName(instanceDigest?: string): string {
  return instanceDigest ? `${parseDigest(instanceDigest).hex}.manifest.json` : 'manifest.json';
}

export class DirReference implements ImageReference {
  readonly transport: Transport;
  readonly path: string;
  constructor(transport: Transport, path: string) {
    this.transport = transport;
    this.path = path;
  }
  stringWithinTransport(): string {
    return this.path;
  }
  toString(): string {
    return `dir:${this.path}`;
  }
  dockerReference(): NamedReferenceLike | undefined {
    return undefined;
  }
  async newSource(_ctx?: SystemContext, _o?: OperationOptions): Promise<ImageSource> {
    try {
      await stat(join(this.path, 'manifest.json'));
    } catch (err) {
      throw new NotFoundError(`${this.toString()} (no manifest.json)`, { cause: err });
    }
    return new DirSource(this);
  }
  async newDestination(_ctx?: SystemContext, _o?: OperationOptions): Promise<ImageDestination> {
    let entries: string[] = [];
    try {
      entries = await readdir(this.path);
    } catch {
      // absent: created on commit
    }
    if (entries.length > 0 && !entries.includes('version')) {
      throw new ImageError(
        'ERR_DESTINATION_NOT_EMPTY',
        `${this.toString()}: directory is not empty and is not a dir: image`,
      );
    }
    await mkdir(dirname(this.path), { recursive: true });
    const staging = await mkdtemp(join(dirname(this.path), `.${basename(this.path)}.staging-`));
    return new DirDestination(this, staging);
  }
}

class DirSource extends Closable implements ImageSource {
  readonly reference: DirReference;
  constructor(ref: DirReference) {
    super();
    this.reference = ref;
  }
  async getManifest(instanceDigest?: string): Promise<ManifestBlob> {
    const object = `manifest ${instanceDigest ?? ''} in ${this.reference.toString()}`;
    let bytes: Buffer;
    try {
      bytes = await readSmallFile(
        join(this.reference.path, manifestName(instanceDigest)),
        MAX_MANIFEST_SIZE,
        object,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(object, { cause: err });
      throw err;
    }
    if (instanceDigest) verifyBytes(bytes, instanceDigest, object);
    return { bytes, mediaType: detectManifestMediaType(bytes, '', object) };
  }
  async getBlob(d: Descriptor, options: OperationOptions & { offset?: number } = {}): Promise<BlobStream> {
    return openBlobFile(
      join(this.reference.path, blobName(d.digest)),
      `blob ${d.digest} in ${this.reference.toString()}`,
      options,
    );
  }
  protected async doClose(): Promise<void> {}
}

class DirDestination extends Closable implements ImageDestination {
  readonly reference: DirReference;
  readonly supportsIndex = true;
  readonly desiredLayerCompression: DesiredCompression = 'preserve';
  readonly needsDiffIDs = false;
  private readonly staging: string;
  private hasTop = false;
  private committed = false;

  constructor(ref: DirReference, staging: string) {
    super();
    this.reference = ref;
    this.staging = staging;
  }
  supportedManifestMediaTypes(): readonly string[] {
    return [];
  }
  async tryReusingBlob(): Promise<ReuseResult> {
    return { reused: false };
  }
  async putBlob(stream: Readable, blob: BlobInfo, options: PutBlobOptions = {}): Promise<Descriptor> {
    const r = await writeVerifiedBlob(stream, this.staging, (d) => join(this.staging, blobName(d)), {
      digest: blob.digest,
      size: blob.size,
      object: `blob ${blob.digest ?? '(new)'} into ${this.reference.toString()}`,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    return { mediaType: blob.mediaType, digest: r.digest, size: r.size };
  }
  async putManifest(bytes: Uint8Array, _mt: string, instanceDigest?: string): Promise<void> {
    if (instanceDigest) verifyBytes(bytes, instanceDigest, `manifest for ${this.reference.toString()}`);
    await writeFileAtomic(join(this.staging, manifestName(instanceDigest)), bytes);
    if (!instanceDigest) this.hasTop = true;
  }
  async commit(): Promise<void> {
    if (!this.hasTop)
      throw new InvalidReferenceError(this.reference.toString(), 'commit() before putManifest()');
    await writeFileAtomic(join(this.staging, 'version'), VERSION);
    const target = this.reference.path;
    const trash = `${this.staging}.old`;
    let moved = false;
    try {
      await rename(target, trash);
      moved = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await rename(this.staging, target);
    this.committed = true;
    if (moved) await rm(trash, { recursive: true, force: true });
  }
  protected async doClose(): Promise<void> {
    if (!this.committed) await rm(this.staging, { recursive: true, force: true });
  }
}

export function dirTransport(): Transport {
  const t: Transport = {
    name: 'dir',
    parseReference(s: string): ImageReference {
      if (!s) throw new InvalidReferenceError('dir:', 'empty path');
      return new DirReference(t, resolve(s));
    },
  };
  return t;
}

/** Contents of the `version` file skopeo writes. */
export const DIR_VERSION = VERSION;
