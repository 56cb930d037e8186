/**
 * `oci-archive:<path>[:<ref>]` — a tar of an OCI image layout. Reading extracts the layout's
 * files (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`, nothing else) into a private temp
 * directory removed by close(). Writing builds a layout in a temp directory (adding to the
 * images already in the archive) and, on commit, streams it into `<path>.tmp-*` with index.json
 * last, then renames it over `<path>`: an interrupted write never leaves a valid-looking archive.
 */
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../../manifest/schemas.js';
import type {
  BlobInfo,
  ImageDestination,
  ImageReference,
  ImageSource,
  NamedReferenceLike,
  OperationOptions,
  PutBlobOptions,
  ReuseResult,
  SystemContext,
  Transport,
} from '../../types.js';
import { exists, tempName } from '../common/files.js';
import { extractTar, type TarInput, writeTar } from '../common/tar.js';
import { findInIndex, readLayoutIndex } from '../oci-layout/layout.js';
import { OciLayoutDestination, OciLayoutSource, splitPathAndRef } from '../oci-layout/transport.js';

const LAYOUT_FILE = /^(oci-layout|index\.json|blobs\/(sha256|sha512)\/[a-f0-9]{64,128})$/;

async function extractLayout(
  archive: string,
  ctx: SystemContext,
  object: string,
  signal?: AbortSignal,
): Promise<string> {
  const dir = await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'libpod-ts-oci-archive-'));
  try {
    await extractTar(archive, dir, (n) => LAYOUT_FILE.test(n), object, signal);
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export class OciArchiveReference implements ImageReference {
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

  async newSource(ctx: SystemContext = {}, options: OperationOptions = {}): Promise<ImageSource> {
    const dir = await extractLayout(this.path, ctx, this.toString(), options.signal);
    try {
      const desc = findInIndex(await readLayoutIndex(dir), this.refName, this.toString());
      return new ArchiveSource(this, dir, desc);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async newDestination(ctx: SystemContext = {}, options: OperationOptions = {}): Promise<ImageDestination> {
    const dir = (await exists(this.path))
      ? await extractLayout(this.path, ctx, this.toString(), options.signal)
      : await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'libpod-ts-oci-archive-'));
    return new ArchiveDestination(this, dir, this.refName);
  }
}

class ArchiveSource extends OciLayoutSource {
  private readonly dir: string;
  constructor(ref: ImageReference, dir: string, desc: Descriptor) {
    super(ref, dir, desc);
    this.dir = dir;
  }
  protected override async doClose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

class ArchiveDestination extends OciLayoutDestination {
  private readonly dir: string;
  private readonly archive: string;
  private ready: Promise<void> | undefined;
  constructor(ref: OciArchiveReference, dir: string, refName: string) {
    super(ref, dir, refName);
    this.dir = dir;
    this.archive = ref.path;
  }
  private init(): Promise<void> {
    this.ready ??= import('../oci-layout/layout.js').then((m) => m.initLayout(this.dir));
    return this.ready;
  }
  override async tryReusingBlob(d: Descriptor): Promise<ReuseResult> {
    await this.init();
    return super.tryReusingBlob(d);
  }
  override async putBlob(stream: Readable, blob: BlobInfo, options?: PutBlobOptions): Promise<Descriptor> {
    await this.init();
    return super.putBlob(stream, blob, options);
  }
  override async commit(options: OperationOptions = {}): Promise<void> {
    await this.init();
    await super.commit();
    const entries: TarInput[] = [{ name: 'oci-layout', path: join(this.dir, 'oci-layout') }];
    for (const alg of await readdir(join(this.dir, 'blobs'))) {
      for (const f of (await readdir(join(this.dir, 'blobs', alg))).sort()) {
        if (f.startsWith('.')) continue;
        entries.push({
          name: relative(this.dir, join(this.dir, 'blobs', alg, f)),
          path: join(this.dir, 'blobs', alg, f),
        });
      }
    }
    entries.push({ name: 'index.json', path: join(this.dir, 'index.json') });
    const tmp = tempName(dirname(this.archive), `.${this.archive.split('/').pop()}.tmp-`);
    try {
      await writeTar(entries, tmp, options.signal);
      await rename(tmp, this.archive);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
  protected override async doClose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function ociArchiveTransport(): Transport {
  const t: Transport = {
    name: 'oci-archive',
    parseReference(s: string): ImageReference {
      const { path, ref } = splitPathAndRef(s, 'oci-archive');
      return new OciArchiveReference(t, path, ref);
    },
  };
  return t;
}
