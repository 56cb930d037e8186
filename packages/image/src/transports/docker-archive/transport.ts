/**
 * `docker-archive:<path>[:<name:tag>|:@<index>]` — the `docker save` format: `manifest.json`
 * (a list of {Config, RepoTags, Layers}), `repositories`, the config as `<hex>.json` and each
 * layer as an uncompressed tar (`<hex>.tar` when we write; any path when we read).
 *
 * Reading extracts the referenced files into a private temp dir (removed by close()) and
 * presents a Docker schema 2 manifest; an uncompressed layer's digest is its diffID from the
 * config (copy() verifies it while streaming), a compressed layer is hashed.
 * Writing stages files in a temp dir and, on commit, streams the archive into `<path>.tmp-*`
 * and renames it. Several images go into one archive through `DockerArchiveWriter`.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { Digester, digestBytes, parseDigest } from '../../digest/digest.js';
import {
  ImageError,
  InvalidLayoutError,
  InvalidReferenceError,
  NotFoundError,
  UnsupportedError,
} from '../../errors.js';
import { MAX_CONFIG_SIZE, parseImageConfig, parseManifest } from '../../manifest/parse.js';
import { MediaTypes } from '../../manifest/media-types.js';
import type { Descriptor } from '../../manifest/schemas.js';
import { type ImageName, parseNormalizedNamed } from '../../reference/parse.js';
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
import { openBlobFile, readSmallFile, tempName, writeVerifiedBlob } from '../common/files.js';
import { Closable } from '../common/source-base.js';
import { detectCompression } from '../../copy/compression.js';
import { extractTar, type TarInput, writeTar } from '../common/tar.js';

const ManifestJsonSchema = z.array(
  z.object({
    Config: z.string(),
    RepoTags: z.array(z.string()).nullish(),
    Layers: z.array(z.string()),
  }),
);
type ManifestJson = z.infer<typeof ManifestJsonSchema>;

type Selector = { kind: 'name'; name: ImageName } | { kind: 'index'; index: number } | { kind: 'none' };

export class DockerArchiveReference implements ImageReference {
  readonly transport: Transport;
  readonly path: string;
  readonly selector: Selector;
  /** Set when the reference comes from a DockerArchiveWriter (several images, one archive). */
  readonly writer: DockerArchiveWriter | undefined;

  constructor(transport: Transport, path: string, selector: Selector, writer?: DockerArchiveWriter) {
    this.transport = transport;
    this.path = path;
    this.selector = selector;
    this.writer = writer;
  }
  stringWithinTransport(): string {
    const s = this.selector;
    return s.kind === 'name'
      ? `${this.path}:${s.name.familiarString()}`
      : s.kind === 'index'
        ? `${this.path}:@${s.index}`
        : this.path;
  }
  toString(): string {
    return `docker-archive:${this.stringWithinTransport()}`;
  }
  dockerReference(): NamedReferenceLike | undefined {
    return this.selector.kind === 'name' ? this.selector.name : undefined;
  }

  async newSource(ctx: SystemContext = {}, options: OperationOptions = {}): Promise<ImageSource> {
    const object = this.toString();
    const dir = await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'libpod-ts-docker-archive-'));
    try {
      await extractTar(this.path, dir, (n) => n === 'manifest.json', object, options.signal);
      let raw: unknown;
      try {
        raw = JSON.parse(
          (await readSmallFile(join(dir, 'manifest.json'), MAX_CONFIG_SIZE, object)).toString('utf8'),
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new InvalidLayoutError(object, 'archive has no manifest.json');
        if (err instanceof ImageError) throw err;
        throw new InvalidLayoutError(object, 'manifest.json is not JSON', { cause: err });
      }
      const parsed = ManifestJsonSchema.safeParse(raw);
      if (!parsed.success) throw new InvalidLayoutError(object, 'manifest.json has an unexpected structure');
      const item = pick(parsed.data, this.selector, object);
      const wanted = new Set([item.Config, ...item.Layers]);
      await rm(join(dir, 'manifest.json'));
      await extractTar(this.path, dir, (n) => wanted.has(n), object, options.signal);
      return await DockerArchiveSource.open(this, dir, item);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async newDestination(ctx: SystemContext = {}, _options: OperationOptions = {}): Promise<ImageDestination> {
    if (this.selector.kind === 'index')
      throw new InvalidReferenceError(this.toString(), 'cannot write to an @index');
    const writer = this.writer ?? (await DockerArchiveWriter.create(this.path, ctx, true));
    return new DockerArchiveDestination(this, writer);
  }
}

function pick(items: ManifestJson, sel: Selector, object: string): ManifestJson[number] {
  if (sel.kind === 'index') {
    const it = items[sel.index];
    if (!it) throw new NotFoundError(`${object}: no image #${sel.index} (archive has ${items.length})`);
    return it;
  }
  if (sel.kind === 'name') {
    const want = sel.name.toString();
    const it = items.find((i) =>
      (i.RepoTags ?? []).some((t) => {
        try {
          return parseNormalizedNamed(t).toString() === want;
        } catch {
          return false;
        }
      }),
    );
    if (!it) throw new NotFoundError(`${object}: no image tagged ${sel.name.familiarString()}`);
    return it;
  }
  if (items.length !== 1) {
    throw new InvalidLayoutError(
      object,
      `archive holds ${items.length} images; name one (:<name:tag> or :@<index>)`,
    );
  }
  return items[0]!;
}

class DockerArchiveSource extends Closable implements ImageSource {
  readonly reference: ImageReference;
  private readonly dir: string;
  private readonly manifest: Buffer;
  private readonly files: Map<string, string>;

  private constructor(ref: ImageReference, dir: string, manifest: Buffer, files: Map<string, string>) {
    super();
    this.reference = ref;
    this.dir = dir;
    this.manifest = manifest;
    this.files = files;
  }

  static async open(
    ref: ImageReference,
    dir: string,
    item: ManifestJson[number],
  ): Promise<DockerArchiveSource> {
    const object = ref.toString();
    const configBytes = await readSmallFile(
      join(dir, item.Config),
      MAX_CONFIG_SIZE,
      `${object} config`,
    ).catch((err) => {
      throw new InvalidLayoutError(object, `missing config ${item.Config}`, { cause: err });
    });
    const config = parseImageConfig(configBytes, `${object} config`);
    if (config.rootfs.diff_ids.length !== item.Layers.length) {
      throw new InvalidLayoutError(object, 'config diff_ids and manifest.json layers differ in number');
    }
    const files = new Map<string, string>();
    const configDigest = digestBytes(configBytes);
    files.set(configDigest, join(dir, item.Config));
    const layers: Descriptor[] = [];
    for (const [i, l] of item.Layers.entries()) {
      const p = join(dir, l);
      let size: number;
      try {
        size = (await stat(p)).size;
      } catch (err) {
        throw new InvalidLayoutError(object, `missing layer ${l}`, { cause: err });
      }
      const fh = await open(p, 'r');
      const head = Buffer.alloc(4);
      try {
        await fh.read(head, 0, 4, 0);
      } finally {
        await fh.close();
      }
      const comp = detectCompression(head);
      let digest: string;
      if (comp === 'none') {
        digest = config.rootfs.diff_ids[i]!;
      } else {
        const d = new Digester();
        for await (const c of createReadStream(p)) d.update(c as Buffer);
        digest = d.digest();
      }
      files.set(digest, p);
      layers.push({
        mediaType:
          comp === 'gzip'
            ? MediaTypes.dockerLayerGzip
            : comp === 'zstd'
              ? MediaTypes.ociLayerZstd
              : 'application/vnd.docker.image.rootfs.diff.tar',
        digest,
        size,
      });
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: layers.some((l) => l.mediaType === MediaTypes.ociLayerZstd)
          ? MediaTypes.ociManifest
          : MediaTypes.dockerManifest,
        config: { mediaType: MediaTypes.dockerConfig, size: configBytes.length, digest: configDigest },
        layers,
      }),
    );
    return new DockerArchiveSource(ref, dir, manifest, files);
  }

  async getManifest(instanceDigest?: string): Promise<ManifestBlob> {
    if (instanceDigest)
      throw new NotFoundError(`${this.reference.toString()}: no manifest ${instanceDigest}`);
    const mt = JSON.parse(this.manifest.toString()).mediaType as string;
    return { bytes: this.manifest, mediaType: mt };
  }

  async getBlob(d: Descriptor, options: OperationOptions & { offset?: number } = {}): Promise<BlobStream> {
    const p = this.files.get(d.digest);
    if (!p) throw new NotFoundError(`blob ${d.digest} in ${this.reference.toString()}`);
    return openBlobFile(p, `blob ${d.digest} in ${this.reference.toString()}`, options);
  }

  protected async doClose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

interface WrittenImage {
  configFile: string;
  layerFiles: string[];
  tags: string[];
}

/**
 * Accumulates several images for one docker-archive file; `close()` (or the commit of a
 * single-image destination) writes the archive atomically. Obtain references with `reference()`.
 */
export class DockerArchiveWriter {
  readonly path: string;
  private readonly staging: string;
  private readonly images: WrittenImage[] = [];
  private readonly transport: Transport;
  /** A writer made implicitly for one `docker-archive:` destination writes on that commit. */
  readonly single: boolean;
  private done = false;

  private constructor(path: string, staging: string, single: boolean) {
    this.path = path;
    this.staging = staging;
    this.single = single;
    this.transport = dockerArchiveTransport();
  }

  static async create(path: string, ctx: SystemContext = {}, single = false): Promise<DockerArchiveWriter> {
    const staging = await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'libpod-ts-docker-archive-'));
    return new DockerArchiveWriter(resolve(path), staging, single);
  }

  /** A destination reference writing `name` (e.g. `busybox:1`) into this archive. */
  reference(name?: string): DockerArchiveReference {
    const sel: Selector = name
      ? { kind: 'name', name: parseNormalizedNamed(name).withDefaultTag() }
      : { kind: 'none' };
    return new DockerArchiveReference(this.transport, this.path, sel, this);
  }

  get stagingDir(): string {
    return this.staging;
  }

  addImage(img: WrittenImage): void {
    this.images.push(img);
  }

  /** Writes the archive (manifest.json and repositories last) and removes the staging dir. */
  async commit(signal?: AbortSignal): Promise<void> {
    if (this.done) throw new ImageError('ERR_CLOSED', `docker-archive writer for ${this.path} is closed`);
    const manifestJson = this.images.map((i) => ({
      Config: i.configFile,
      RepoTags: i.tags,
      Layers: i.layerFiles,
    }));
    const repositories: Record<string, Record<string, string>> = {};
    const files = new Set<string>();
    for (const img of this.images) {
      files.add(img.configFile);
      for (const l of img.layerFiles) files.add(l);
      for (const t of img.tags) {
        const n = parseNormalizedNamed(t);
        const last = img.layerFiles.at(-1)?.replace(/\.tar$/, '') ?? '';
        repositories[n.familiarName()] = {
          ...(repositories[n.familiarName()] ?? {}),
          [n.tag ?? 'latest']: last,
        };
      }
    }
    const entries: TarInput[] = [...files].sort().map((f) => ({ name: f, path: join(this.staging, f) }));
    entries.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifestJson)) });
    entries.push({ name: 'repositories', data: Buffer.from(JSON.stringify(repositories)) });
    const tmp = tempName(dirname(this.path), '.docker-archive.tmp-');
    try {
      await writeTar(entries, tmp, signal);
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await this.close();
  }

  /** Discards the staging dir (after commit, or to abandon the archive). Idempotent. */
  async close(): Promise<void> {
    this.done = true;
    await rm(this.staging, { recursive: true, force: true });
  }
}

class DockerArchiveDestination extends Closable implements ImageDestination {
  readonly reference: DockerArchiveReference;
  readonly supportsIndex = false;
  readonly desiredLayerCompression: DesiredCompression = 'none';
  readonly needsDiffIDs = false;
  private readonly writer: DockerArchiveWriter;
  private manifest: { configFile: string; layerFiles: string[] } | undefined;

  constructor(ref: DockerArchiveReference, writer: DockerArchiveWriter) {
    super();
    this.reference = ref;
    this.writer = writer;
  }
  supportedManifestMediaTypes(): readonly string[] {
    return [MediaTypes.dockerManifest];
  }
  async tryReusingBlob(d: Descriptor): Promise<ReuseResult> {
    for (const name of [`${parseDigest(d.digest).hex}.tar`, `${parseDigest(d.digest).hex}.json`]) {
      try {
        const st = await stat(join(this.writer.stagingDir, name));
        if (st.size === d.size) return { reused: true, descriptor: { ...d }, how: 'exists' };
      } catch {
        // absent
      }
    }
    return { reused: false };
  }
  async putBlob(stream: Readable, blob: BlobInfo, options: PutBlobOptions = {}): Promise<Descriptor> {
    const dir = this.writer.stagingDir;
    const ext = options.isConfig ? 'json' : 'tar';
    const r = await writeVerifiedBlob(stream, dir, (d) => join(dir, `${parseDigest(d).hex}.${ext}`), {
      digest: blob.digest,
      size: blob.size,
      object: `blob ${blob.digest ?? '(new)'} into ${this.reference.toString()}`,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    return { mediaType: blob.mediaType, digest: r.digest, size: r.size };
  }
  async putManifest(bytes: Uint8Array, mediaType: string, instanceDigest?: string): Promise<void> {
    if (instanceDigest)
      throw new UnsupportedError(
        this.reference.toString(),
        'docker-archive cannot store multi-platform images',
      );
    const m = parseManifest(bytes, mediaType, `manifest for ${this.reference.toString()}`);
    if (m.kind !== 'manifest')
      throw new UnsupportedError(this.reference.toString(), 'docker-archive cannot store an index');
    for (const l of m.layers) {
      if (!/diff\.tar$|layer\.v1\.tar$/.test(l.mediaType)) {
        throw new UnsupportedError(
          this.reference.toString(),
          `layer ${l.digest} is compressed (${l.mediaType}); docker-archive stores uncompressed layers`,
        );
      }
    }
    this.manifest = {
      configFile: `${parseDigest(m.config.digest).hex}.json`,
      layerFiles: m.layers.map((l) => `${parseDigest(l.digest).hex}.tar`),
    };
  }
  async commit(options: OperationOptions = {}): Promise<void> {
    if (!this.manifest)
      throw new ImageError('ERR_INTERNAL', `${this.reference.toString()}: commit() before putManifest()`);
    const sel = this.reference.selector;
    const tags = sel.kind === 'name' ? [sel.name.familiarString()] : [];
    this.writer.addImage({ ...this.manifest, tags });
    if (this.writer.single) await this.writer.commit(options.signal);
  }
  protected async doClose(): Promise<void> {
    if (this.writer.single) await this.writer.close();
  }
}

function parseSelector(s: string, full: string): Selector {
  if (!s) return { kind: 'none' };
  if (s.startsWith('@')) {
    const n = Number(s.slice(1));
    if (!Number.isInteger(n) || n < 0 || !/^\d+$/.test(s.slice(1)))
      throw new InvalidReferenceError(full, 'invalid @index');
    return { kind: 'index', index: n };
  }
  const name = parseNormalizedNamed(s);
  if (name.digest) throw new InvalidReferenceError(full, 'docker-archive references cannot contain a digest');
  return { kind: 'name', name: name.withDefaultTag() };
}

export function dockerArchiveTransport(): Transport {
  const t: Transport = {
    name: 'docker-archive',
    parseReference(s: string): ImageReference {
      const i = s.indexOf(':');
      const path = i === -1 ? s : s.slice(0, i);
      if (!path) throw new InvalidReferenceError(`docker-archive:${s}`, 'empty path');
      return new DockerArchiveReference(
        t,
        resolve(path),
        parseSelector(i === -1 ? '' : s.slice(i + 1), `docker-archive:${s}`),
      );
    },
  };
  return t;
}
