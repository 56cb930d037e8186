/**
 * Offline OCI image builder for tests, demos and benchmarks, made from /bin/busybox
 * (busybox-static). It writes an OCI image layout (oci-layout, index.json, blobs/sha256) with its
 * own tiny tar and digest code (tar-stream + node:crypto), independent of @libpod-ts/image, so its
 * output can serve as an oracle for the code under test.
 *
 * Output is reproducible: the same options give the same digests (fixed mtimes, sorted entries,
 * deterministic "random" data from an AES-CTR keystream seeded by the layer's options).
 * Layers are streamed to disk; a multi-GiB random layer does not sit in memory.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export const BUSYBOX_PATH = '/bin/busybox';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** A file system entry in a layer. Paths are relative to the image root ('/x' and 'x' both mean /x). */
export type RigFile =
  | {
      path: string;
      type?: 'file';
      content: string | Buffer;
      mode?: number;
      uid?: number;
      gid?: number;
      mtime?: Date;
    }
  | { path: string; type: 'dir'; mode?: number; uid?: number; gid?: number; mtime?: Date }
  | { path: string; type: 'symlink'; target: string; uid?: number; gid?: number }
  /** A hard link; `target` is the path (in this layer) it links to. */
  | { path: string; type: 'hardlink'; target: string }
  /** An OCI whiteout: removes `path` from lower layers (written as `.wh.<name>`). */
  | { path: string; type: 'whiteout' }
  /** An opaque-directory marker: hides lower-layer contents of the directory `path`. */
  | { path: string; type: 'opaque' };

export type RigLayer =
  /** /bin/busybox, applet symlinks, the usual top-level dirs, /etc/passwd and /etc/group. */
  | { kind: 'busybox'; applets?: 'all' | 'minimal' | string[] }
  | { kind: 'files'; files: RigFile[] }
  /** One file of `bytes` incompressible, seeded (reproducible) bytes. */
  | { kind: 'random'; bytes: number; path?: string; seed?: string }
  /** `count` files of `size` seeded bytes each, in sub-dirs of at most 1000 files under `dir`. */
  | { kind: 'many-files'; count: number; size?: number; dir?: string; seed?: string }
  /**
   * Tar headers written verbatim, in order, with no path clean-up and no parent dirs added: for
   * hostile-layer tests (`../x`, absolute names, links out, duplicates, whiteout tricks).
   */
  | { kind: 'raw'; entries: RawTarEntry[] };

export interface RawTarEntry {
  name: string;
  type?: 'file' | 'link' | 'symlink' | 'directory' | 'character-device' | 'block-device' | 'fifo';
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  /** File content (type 'file' only). */
  content?: string | Buffer;
  /** PAX extended header records for this entry (e.g. `{ 'SCHILY.xattr.user.x': 'y' }`). */
  pax?: Record<string, string>;
}

export interface RigUser {
  name: string;
  uid: number;
  gid: number;
  home?: string;
  shell?: string;
}

export interface RigGroup {
  name: string;
  gid: number;
  members?: string[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageConfigOptions {
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  workingDir?: string;
  labels?: Record<string, string>;
  /** e.g. ['80/tcp', '53/udp'] */
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
}

export interface BuildImageOptions {
  /** OCI layout directory; created if missing, may already hold other images. */
  dir: string;
  /** Stored as the `org.opencontainers.image.ref.name` annotation in index.json. Default 'latest'. */
  tag?: string;
  /** Default: one busybox layer with the minimal applet set. */
  layers?: RigLayer[];
  /** Default 'gzip'. */
  compression?: 'gzip' | 'none';
  /** zlib level for gzip layers (default 6; 1 is much faster for benchmark-sized layers). */
  gzipLevel?: number;
  /** Default linux/amd64. */
  platform?: Platform;
  config?: ImageConfigOptions;
  /** /etc/passwd entries written by the busybox layer. Default: DEFAULT_USERS. */
  users?: RigUser[];
  groups?: RigGroup[];
  /** Config `created` and the mtime of every entry. Default 2024-01-01T00:00:00Z. */
  created?: string;
  author?: string;
  manifestAnnotations?: Record<string, string>;
  /** Aborts between tar entries and between 1 MiB chunks of random data; the partial blob is removed. */
  signal?: AbortSignal;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar. */
  diffID: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
}

export interface BuiltImage {
  dir: string;
  tag: string | undefined;
  /** `oci:<dir>:<tag>`, a skopeo/containers-image reference. */
  reference: string;
  manifestDescriptor: Descriptor;
  manifestDigest: string;
  manifest: OciManifest;
  configDigest: string;
  config: OciConfig;
  layers: BuiltLayer[];
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface OciConfig {
  created: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: Array<{ created: string; created_by: string; comment?: string }>;
}

export const DEFAULT_USERS: RigUser[] = [
  { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh' },
  { name: 'daemon', uid: 1, gid: 1, home: '/usr/sbin', shell: '/bin/false' },
  { name: 'rig', uid: 1000, gid: 1000, home: '/home/rig', shell: '/bin/sh' },
  { name: 'rig2', uid: 1001, gid: 1001, home: '/home/rig2', shell: '/bin/sh' },
  { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent', shell: '/bin/false' },
];

export const DEFAULT_GROUPS: RigGroup[] = [
  { name: 'root', gid: 0 },
  { name: 'daemon', gid: 1 },
  { name: 'wheel', gid: 10, members: ['rig'] },
  { name: 'rig', gid: 1000 },
  { name: 'rig2', gid: 1001 },
  { name: 'rigshared', gid: 2000, members: ['rig', 'rig2'] },
  { name: 'nogroup', gid: 65534 },
];

/** Applets of the 'minimal' set: enough for shells, scripts and simple network checks. */
export const MINIMAL_APPLETS = [
  'bin/sh',
  'bin/ash',
  'bin/cat',
  'bin/echo',
  'bin/ls',
  'bin/mkdir',
  'bin/rm',
  'bin/sleep',
  'bin/true',
  'bin/false',
  'bin/cp',
  'bin/mv',
  'bin/ln',
  'bin/chmod',
  'bin/chown',
  'bin/date',
  'bin/hostname',
  'bin/ps',
  'bin/kill',
  'bin/touch',
  'bin/grep',
  'bin/sed',
  'bin/uname',
  'bin/stat',
  'bin/sync',
  'bin/mount',
  'bin/umount',
  'bin/ping',
  'bin/pwd',
  'bin/printenv',
  'usr/bin/env',
  'usr/bin/id',
  'usr/bin/whoami',
  'usr/bin/head',
  'usr/bin/tail',
  'usr/bin/wc',
  'usr/bin/test',
  'usr/bin/[',
  'usr/bin/printf',
  'usr/bin/nc',
  'usr/bin/wget',
  'usr/bin/top',
  'usr/bin/du',
  'usr/bin/find',
  'usr/bin/xargs',
  'usr/bin/md5sum',
  'usr/bin/sha256sum',
  'usr/bin/nslookup',
  'usr/bin/timeout',
  'usr/bin/tee',
  'usr/bin/yes',
  'usr/bin/seq',
  'usr/bin/dd',
  'usr/bin/cut',
  'sbin/ip',
  'sbin/ifconfig',
  'sbin/route',
  'sbin/init',
  'usr/sbin/httpd',
];

const DEFAULT_CREATED = '2024-01-01T00:00:00Z';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let appletCache: string[] | undefined;
/** Paths (relative, e.g. `bin/sh`) of every applet the installed busybox provides. */
export function busyboxApplets(): string[] {
  appletCache ??= execFileSync(BUSYBOX_PATH, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.includes('..'));
  return appletCache;
}

/** Writes `data` into an AES-256-CTR keystream: fast, incompressible and reproducible per seed. */
function keystream(seed: string) {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zero = Buffer.alloc(1 << 20);
  return (n: number): Buffer => cipher.update(n === zero.length ? zero : zero.subarray(0, n));
}

class HashCount extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

type Header = Partial<tar.Header> & { name: string };
type Sink = ReturnType<tar.Pack['entry']>;
type Entry = { header: Header; body?: Buffer | ((w: Sink) => Promise<void>) };

const norm = (p: string) => p.replace(/^\/+/, '').replace(/\/+$/, '');

function passwdOf(users: RigUser[]): string {
  return users
    .map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home ?? '/'}:${u.shell ?? '/bin/sh'}\n`)
    .join('');
}
function groupOf(groups: RigGroup[]): string {
  return groups.map((g) => `${g.name}:x:${g.gid}:${(g.members ?? []).join(',')}\n`).join('');
}

async function busyboxEntries(
  layer: Extract<RigLayer, { kind: 'busybox' }>,
  opts: BuildImageOptions,
  mtime: Date,
): Promise<Entry[]> {
  const all = busyboxApplets();
  const wanted =
    layer.applets === 'all'
      ? all
      : Array.isArray(layer.applets)
        ? layer.applets.map(norm)
        : MINIMAL_APPLETS.filter((a) => all.includes(a));
  const dir = (name: string, mode = 0o755): Entry => ({ header: { name, type: 'directory', mode, mtime } });
  const users = opts.users ?? DEFAULT_USERS;
  const out: Entry[] = [
    dir('bin'),
    dir('dev'),
    dir('etc'),
    dir('home'),
    dir('proc', 0o555),
    dir('root', 0o700),
    dir('run'),
    dir('sbin'),
    dir('sys', 0o555),
    dir('tmp', 0o1777),
    dir('usr'),
    dir('usr/bin'),
    dir('usr/sbin'),
    dir('var'),
    dir('var/tmp', 0o1777),
  ];
  for (const u of users) {
    const home = u.home ? norm(u.home) : '';
    if (home.startsWith('home/')) {
      out.push({ header: { name: home, type: 'directory', mode: 0o755, uid: u.uid, gid: u.gid, mtime } });
    }
  }
  const bb = await readFile(BUSYBOX_PATH);
  out.push({ header: { name: 'bin/busybox', type: 'file', mode: 0o755, size: bb.length, mtime }, body: bb });
  for (const a of wanted) {
    if (a === 'bin/busybox') continue;
    out.push({ header: { name: a, type: 'symlink', linkname: '/bin/busybox', mode: 0o777, mtime } });
  }
  const file = (name: string, content: string, mode = 0o644): Entry => {
    const b = Buffer.from(content);
    return { header: { name, type: 'file', mode, size: b.length, mtime }, body: b };
  };
  out.push(file('etc/passwd', passwdOf(users)));
  out.push(file('etc/group', groupOf(opts.groups ?? DEFAULT_GROUPS)));
  return withParents(out, mtime);
}

function fileEntries(files: RigFile[], mtime: Date): Entry[] {
  return files.map((f): Entry => {
    const p = norm(f.path);
    switch (f.type) {
      case 'dir':
        return {
          header: {
            name: p,
            type: 'directory',
            mode: f.mode ?? 0o755,
            uid: f.uid ?? 0,
            gid: f.gid ?? 0,
            mtime: f.mtime ?? mtime,
          },
        };
      case 'symlink':
        return {
          header: {
            name: p,
            type: 'symlink',
            linkname: f.target,
            mode: 0o777,
            uid: f.uid ?? 0,
            gid: f.gid ?? 0,
            mtime,
          },
        };
      case 'hardlink':
        return { header: { name: p, type: 'link', linkname: norm(f.target), mode: 0o644, mtime } };
      case 'whiteout':
      case 'opaque': {
        const i = p.lastIndexOf('/');
        const parent = i < 0 ? '' : `${p.slice(0, i)}/`;
        const name = f.type === 'opaque' ? `${p}/.wh..wh..opq` : `${parent}.wh.${p.slice(i + 1)}`;
        return { header: { name, type: 'file', mode: 0o644, size: 0, mtime } };
      }
      default: {
        const b = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
        return {
          header: {
            name: p,
            type: 'file',
            mode: f.mode ?? 0o644,
            uid: f.uid ?? 0,
            gid: f.gid ?? 0,
            size: b.length,
            mtime: f.mtime ?? mtime,
          },
          body: b,
        };
      }
    }
  });
}

/** Parent directories that the entries need but do not declare, so every tool can extract the layer. */
function withParents(entries: Entry[], mtime: Date): Entry[] {
  const declared = new Set(
    entries.filter((e) => e.header.type === 'directory').map((e) => norm(e.header.name)),
  );
  const out: Entry[] = [];
  for (const e of entries) {
    const parts = norm(e.header.name).split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!declared.has(d)) {
        declared.add(d);
        out.push({ header: { name: d, type: 'directory', mode: 0o755, mtime } });
      }
    }
    out.push(e);
  }
  return out;
}

function layerEntries(
  layer: RigLayer,
  index: number,
  opts: BuildImageOptions,
  mtime: Date,
): Promise<Entry[]> | Entry[] {
  switch (layer.kind) {
    case 'busybox':
      return busyboxEntries(layer, opts, mtime);
    case 'files':
      return withParents(fileEntries(layer.files, mtime), mtime);
    case 'random': {
      const path = norm(layer.path ?? `random/layer${index}.bin`);
      const next = keystream(layer.seed ?? `rig-random:${index}:${path}:${layer.bytes}`);
      const body = async (w: Sink) => {
        for (let left = layer.bytes; left > 0; ) {
          const n = Math.min(left, 1 << 20);
          left -= n;
          opts.signal?.throwIfAborted();
          if (!w.write(next(n))) await new Promise<void>((r) => w.once('drain', () => r()));
        }
      };
      return withParents(
        [{ header: { name: path, type: 'file', mode: 0o644, size: layer.bytes, mtime }, body }],
        mtime,
      );
    }
    case 'raw':
      return layer.entries.map((e): Entry => {
        const body = e.content === undefined ? undefined : Buffer.from(e.content);
        const header: Header = {
          name: e.name,
          type: e.type ?? 'file',
          mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
          uid: e.uid ?? 0,
          gid: e.gid ?? 0,
          mtime: e.mtime ?? mtime,
          ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
          ...(e.devmajor !== undefined ? { devmajor: e.devmajor } : {}),
          ...(e.devminor !== undefined ? { devminor: e.devminor } : {}),
          ...(e.pax ? { pax: e.pax } : {}),
          ...(body ? { size: body.length } : {}),
        };
        return body ? { header, body } : { header };
      });
    case 'many-files': {
      const base = norm(layer.dir ?? `many${index}`);
      const size = layer.size ?? 64;
      const next = keystream(layer.seed ?? `rig-many:${index}:${base}:${layer.count}:${size}`);
      const out: Entry[] = [{ header: { name: base, type: 'directory', mode: 0o755, mtime } }];
      for (let i = 0; i < layer.count; i++) {
        if (i % 1000 === 0) {
          out.push({ header: { name: `${base}/d${i / 1000}`, type: 'directory', mode: 0o755, mtime } });
        }
        out.push({
          header: { name: `${base}/d${Math.floor(i / 1000)}/f${i}`, type: 'file', mode: 0o644, size, mtime },
          body: next(size),
        });
      }
      return withParents(out, mtime);
    }
  }
}

async function writeEntry(pack: tar.Pack, e: Entry): Promise<void> {
  const body = e.body;
  if (typeof body === 'function') {
    await new Promise<void>((resolve, reject) => {
      const w = pack.entry(e.header, (err) => (err ? reject(err) : resolve()));
      body(w).then(
        () => w.end(undefined),
        (err: unknown) => {
          // The caller destroys the whole pack; the entry's own error event needs no listener.
          w.on('error', () => {});
          w.destroy(err as Error);
          reject(err);
        },
      );
    });
    return;
  }
  await new Promise<void>((resolve, reject) => {
    pack.entry(e.header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

/** Moves a finished temp file to blobs/sha256/<hex> (or drops it when the blob already exists). */
async function commitBlob(dir: string, tmp: string, hex: string): Promise<void> {
  const final = join(dir, 'blobs', 'sha256', hex);
  try {
    await stat(final);
    await rm(tmp, { force: true });
  } catch {
    await rename(tmp, final);
  }
}

async function writeJsonBlob(
  dir: string,
  value: unknown,
): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  const tmp = join(dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
  await writeFile(tmp, bytes);
  await commitBlob(dir, tmp, hex);
  return { digest: `sha256:${hex}`, size: bytes.length, bytes };
}

async function writeLayer(
  dir: string,
  entries: Entry[],
  compression: 'gzip' | 'none',
  gzipLevel: number,
  signal?: AbortSignal,
): Promise<BuiltLayer> {
  const tmp = join(dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
  const pack = tar.pack();
  const tarHash = new HashCount();
  const blobHash = new HashCount();
  const stages: NodeJS.ReadWriteStream[] =
    compression === 'gzip' ? [tarHash, createGzip({ level: gzipLevel }), blobHash] : [tarHash, blobHash];
  let done: Promise<void> | undefined;
  try {
    done = pipeline([pack as unknown as NodeJS.ReadableStream, ...stages, createWriteStream(tmp)]);
    // Awaited below (or in the catch); this only keeps an early failure from being unhandled.
    done.catch(() => {});
    for (const e of entries) {
      signal?.throwIfAborted();
      await writeEntry(pack, e);
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done?.catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  const hex = blobHash.hash.digest('hex');
  await commitBlob(dir, tmp, hex);
  return {
    mediaType: compression === 'gzip' ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layerTar,
    digest: `sha256:${hex}`,
    size: blobHash.bytes,
    diffID: `sha256:${tarHash.hash.digest('hex')}`,
    tarSize: tarHash.bytes,
  };
}

const layoutLocks = new Map<string, Promise<unknown>>();
/** Serialises index.json updates per layout dir within this process. */
async function withLayoutLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = layoutLocks.get(dir) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  layoutLocks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (layoutLocks.get(dir) === tail) layoutLocks.delete(dir);
  }
}

async function ensureLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Adds `desc` to index.json under `tag`, replacing an entry with the same tag. */
async function tagInIndex(dir: string, desc: Descriptor, tag: string): Promise<void> {
  await withLayoutLock(dir, async () => {
    const path = join(dir, 'index.json');
    let index: { schemaVersion: 2; mediaType: string; manifests: Descriptor[] };
    try {
      index = JSON.parse(await readFile(path, 'utf8'));
    } catch {
      index = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] };
    }
    index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
    index.manifests.push({ ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: tag } });
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, `${JSON.stringify(index, null, 2)}\n`);
    await rename(tmp, path);
  });
}

function imageConfig(opts: BuildImageOptions, diffIDs: string[], layers: RigLayer[]): OciConfig {
  const c = opts.config ?? {};
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = opts.created ?? DEFAULT_CREATED;
  const inner: Record<string, unknown> = { Env: c.env ?? [DEFAULT_PATH] };
  if (c.user !== undefined) inner.User = c.user;
  if (c.entrypoint) inner.Entrypoint = c.entrypoint;
  inner.Cmd = c.cmd ?? (c.entrypoint ? undefined : ['sh']);
  if (inner.Cmd === undefined) delete inner.Cmd;
  if (c.workingDir !== undefined) inner.WorkingDir = c.workingDir;
  if (c.labels) inner.Labels = c.labels;
  if (c.exposedPorts) inner.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p, {}]));
  if (c.volumes) inner.Volumes = Object.fromEntries(c.volumes.map((v) => [v, {}]));
  if (c.stopSignal) inner.StopSignal = c.stopSignal;
  return {
    created,
    ...(opts.author ? { author: opts.author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: inner,
    rootfs: { type: 'layers', diff_ids: diffIDs },
    history: layers.map((l) => ({ created, created_by: `libpod-ts test rig: ${l.kind} layer` })),
  };
}

async function buildManifest(opts: BuildImageOptions): Promise<Omit<BuiltImage, 'tag' | 'reference'>> {
  const dir = opts.dir;
  await ensureLayout(dir);
  const mtime = new Date(opts.created ?? DEFAULT_CREATED);
  const layers = opts.layers ?? [{ kind: 'busybox' }];
  const built: BuiltLayer[] = [];
  for (const [i, layer] of layers.entries()) {
    const entries = await layerEntries(layer, i, opts, mtime);
    built.push(await writeLayer(dir, entries, opts.compression ?? 'gzip', opts.gzipLevel ?? 6, opts.signal));
  }
  const config = imageConfig(
    opts,
    built.map((l) => l.diffID),
    layers,
  );
  const cfg = await writeJsonBlob(dir, config);
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: cfg.digest, size: cfg.size },
    layers: built.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(opts.manifestAnnotations ? { annotations: opts.manifestAnnotations } : {}),
  };
  const m = await writeJsonBlob(dir, manifest);
  const manifestDescriptor: Descriptor = {
    mediaType: MEDIA_TYPES.manifest,
    digest: m.digest,
    size: m.size,
  };
  return {
    dir,
    manifestDescriptor,
    manifestDigest: m.digest,
    manifest,
    configDigest: cfg.digest,
    config,
    layers: built,
  };
}

/** Builds one image into an OCI layout and tags it in index.json. */
export async function buildBusyboxImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const tag = opts.tag ?? 'latest';
  const img = await buildManifest(opts);
  await tagInIndex(opts.dir, img.manifestDescriptor, tag);
  return { ...img, tag, reference: `oci:${opts.dir}:${tag}` };
}

export interface MultiPlatformOptions extends Omit<BuildImageOptions, 'platform'> {
  /** Default: linux/amd64, linux/arm64/v8, linux/arm/v7. Other arches reuse this host's busybox. */
  platforms?: Platform[];
}

export interface BuiltIndex {
  dir: string;
  tag: string;
  reference: string;
  indexDigest: string;
  indexDescriptor: Descriptor;
  index: { schemaVersion: 2; mediaType: string; manifests: Descriptor[] };
  images: BuiltImage[];
}

/** Builds one manifest per platform (untagged) and an image index over them, tagged `tag`. */
export async function buildMultiPlatformIndex(opts: MultiPlatformOptions): Promise<BuiltIndex> {
  const tag = opts.tag ?? 'latest';
  const platforms = opts.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ];
  const images: BuiltImage[] = [];
  for (const platform of platforms) {
    const img = await buildManifest({ ...opts, platform });
    images.push({ ...img, tag: undefined, reference: `oci:${opts.dir}@${img.manifestDigest}` });
  }
  const index = {
    schemaVersion: 2 as const,
    mediaType: MEDIA_TYPES.index,
    manifests: images.map((img, i) => ({ ...img.manifestDescriptor, platform: platforms[i]! })),
  };
  const blob = await writeJsonBlob(opts.dir, index);
  const indexDescriptor: Descriptor = { mediaType: MEDIA_TYPES.index, digest: blob.digest, size: blob.size };
  await tagInIndex(opts.dir, indexDescriptor, tag);
  return {
    dir: opts.dir,
    tag,
    reference: `oci:${opts.dir}:${tag}`,
    indexDigest: blob.digest,
    indexDescriptor,
    index,
    images,
  };
}
