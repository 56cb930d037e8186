import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  type BuiltIndex,
  buildBusyboxImage,
  buildMultiPlatformIndex,
  DEFAULT_USERS,
  inspectWithSkopeo,
  makeTempDir,
  pullWithSkopeo,
  pushWithSkopeo,
  removeTempDir,
  startRegistry,
} from './index.js';
import { loadImageSpecValidator } from './schemas.js';

const blobPath = (dir: string, digest: string) =>
  join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function sha256File(path: string, gunzip = false): Promise<string> {
  const h = createHash('sha256');
  const src = createReadStream(path);
  if (gunzip) await pipeline(src, createGunzip(), h);
  else await pipeline(src, h);
  return `sha256:${h.digest('hex')}`;
}

async function tarEntries(path: string, gzip: boolean) {
  const out: Array<{
    name: string;
    type: string;
    linkname: string | null;
    mode: number;
    uid: number;
    size: number;
  }> = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    out.push({ name: h.name, type: h.type, linkname: h.linkname, mode: h.mode, uid: h.uid, size: h.size });
    stream.on('end', () => next());
    stream.resume();
  });
  const src = createReadStream(path);
  await (gzip
    ? pipeline(src, createGunzip(), ex as unknown as NodeJS.WritableStream)
    : pipeline(src, ex as unknown as NodeJS.WritableStream));
  return out;
}

let work: string;
let image: BuiltImage;
let multi: BuiltIndex;

beforeAll(async () => {
  work = await makeTempDir('images-test');
  image = await buildBusyboxImage({
    dir: join(work, 'layout'),
    tag: 'full',
    layers: [
      { kind: 'busybox', applets: 'all' },
      {
        kind: 'files',
        files: [
          { path: '/srv/app/hello.txt', content: 'hello\n', mode: 0o640, uid: 1000, gid: 1000 },
          { path: '/srv/app/link', type: 'symlink', target: 'hello.txt' },
          { path: '/srv/app/hard', type: 'hardlink', target: '/srv/app/hello.txt' },
          { path: '/srv/empty', type: 'dir', mode: 0o700 },
        ],
      },
      {
        kind: 'files',
        files: [
          { path: '/srv/app/link', type: 'whiteout' },
          { path: '/srv/empty', type: 'opaque' },
        ],
      },
      { kind: 'random', bytes: 3 * 1024 * 1024 + 7, path: '/data/blob.bin' },
      { kind: 'many-files', count: 1500, size: 32, dir: '/many' },
    ],
    config: {
      env: ['PATH=/bin:/usr/bin', 'RIG=1'],
      entrypoint: ['/bin/sh', '-c'],
      cmd: ['id'],
      user: 'rig',
      workingDir: '/srv/app',
      labels: { 'org.example.kind': 'rig' },
      exposedPorts: ['8080/tcp', '53/udp'],
      volumes: ['/data'],
      stopSignal: 'SIGTERM',
    },
    manifestAnnotations: { 'org.opencontainers.image.title': 'rig' },
  });
  multi = await buildMultiPlatformIndex({ dir: join(work, 'layout'), tag: 'multi', compression: 'none' });
});
afterAll(async () => {
  await removeTempDir(work);
});

describe('offline busybox OCI image builder', () => {
  const schemas = loadImageSpecValidator();
  const missing = 'missing' in schemas ? schemas.missing : undefined;
  if (missing) console.warn(`skipping image-spec schema validation: ${missing}`);

  it.skipIf(missing !== undefined)(
    'writes a layout that validates against the OCI image-spec schemas',
    async () => {
      if ('missing' in schemas) return;
      const dir = image.dir;
      const layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
      expect(schemas.validate('layout', layout)).toEqual([]);
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(schemas.validate('index', index)).toEqual([]);
      for (const desc of index.manifests) {
        const doc = JSON.parse(await readFile(blobPath(dir, desc.digest), 'utf8'));
        const isIndex = desc.mediaType === 'application/vnd.oci.image.index.v1+json';
        expect(schemas.validate(isIndex ? 'index' : 'manifest', doc)).toEqual([]);
        const manifests = isIndex ? doc.manifests : [desc];
        for (const m of manifests) {
          const manifest = JSON.parse(await readFile(blobPath(dir, m.digest), 'utf8'));
          expect(schemas.validate('manifest', manifest)).toEqual([]);
          const config = JSON.parse(await readFile(blobPath(dir, manifest.config.digest), 'utf8'));
          expect(schemas.validate('config', config)).toEqual([]);
        }
      }
    },
  );

  it('names every blob by its sha256 and records true sizes and diffIDs', async () => {
    const dir = image.dir;
    for (const name of await readdir(join(dir, 'blobs', 'sha256'))) {
      expect(await sha256File(join(dir, 'blobs', 'sha256', name))).toBe(`sha256:${name}`);
    }
    for (const [i, l] of image.layers.entries()) {
      expect(image.manifest.layers[i]!.size).toBe((await lstat(blobPath(dir, l.digest))).size);
      expect(await sha256File(blobPath(dir, l.digest), true)).toBe(l.diffID);
    }
    expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffID));
    expect(image.config.history).toHaveLength(image.layers.length);
  });

  it('puts the requested config into the image config', () => {
    expect(image.config.architecture).toBe('amd64');
    expect(image.config.config).toEqual({
      Env: ['PATH=/bin:/usr/bin', 'RIG=1'],
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['id'],
      User: 'rig',
      WorkingDir: '/srv/app',
      Labels: { 'org.example.kind': 'rig' },
      ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
      Volumes: { '/data': {} },
      StopSignal: 'SIGTERM',
    });
  });

  it('writes the requested entries, whiteouts and parent dirs into the layer tars', async () => {
    const base = await tarEntries(blobPath(image.dir, image.layers[0]!.digest), true);
    const byName = new Map(base.map((e) => [e.name, e]));
    expect(byName.get('bin/busybox')).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byName.get('bin/sh')).toMatchObject({ type: 'symlink', linkname: '/bin/busybox' });
    expect(byName.get('tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(base.length).toBeGreaterThan(250);
    const files = await tarEntries(blobPath(image.dir, image.layers[1]!.digest), true);
    expect(files.map((e) => [e.name, e.type])).toEqual([
      ['srv', 'directory'],
      ['srv/app', 'directory'],
      ['srv/app/hello.txt', 'file'],
      ['srv/app/link', 'symlink'],
      ['srv/app/hard', 'link'],
      ['srv/empty', 'directory'],
    ]);
    expect(files[2]).toMatchObject({ mode: 0o640, uid: 1000 });
    const wh = await tarEntries(blobPath(image.dir, image.layers[2]!.digest), true);
    expect(wh.map((e) => e.name)).toEqual([
      'srv',
      'srv/app',
      'srv/app/.wh.link',
      'srv/empty',
      'srv/empty/.wh..wh..opq',
    ]);
    const many = await tarEntries(blobPath(image.dir, image.layers[4]!.digest), true);
    expect(many.filter((e) => e.type === 'file')).toHaveLength(1500);
    expect(image.layers[3]!.size).toBeGreaterThan(3 * 1024 * 1024);
  });

  it('writes raw (hostile) tar entries verbatim, without clean-up or parent dirs', async () => {
    const evil = await buildBusyboxImage({
      dir: join(work, 'evil'),
      compression: 'none',
      layers: [
        {
          kind: 'raw',
          entries: [
            { name: '../escape', content: 'x' },
            { name: '/etc/abs', content: 'y' },
            { name: 'link', type: 'symlink', linkname: '/etc' },
            { name: 'link/passwd', content: 'z' },
            { name: 'f', content: 'with xattr', pax: { 'SCHILY.xattr.user.rig': 'yes' } },
          ],
        },
      ],
    });
    const entries = await tarEntries(blobPath(evil.dir, evil.layers[0]!.digest), false);
    expect(entries.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['../escape', 'file', null],
      ['/etc/abs', 'file', null],
      ['link', 'symlink', '/etc'],
      ['link/passwd', 'file', null],
      ['f', 'file', null],
    ]);
  });

  it('stops on abort mid-layer and leaves no partial blob', async () => {
    const dir = join(work, 'aborted');
    const ac = new AbortController();
    const build = buildBusyboxImage({
      dir,
      layers: [{ kind: 'random', bytes: 512 * 1024 * 1024 }],
      compression: 'none',
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 50);
    await expect(build).rejects.toThrow(/abort/i);
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
  });

  it('is reproducible: the same options give the same digests', async () => {
    const dir = join(work, 'repro');
    const opts = { dir, layers: [{ kind: 'busybox' as const }, { kind: 'random' as const, bytes: 100_000 }] };
    const a = await buildBusyboxImage({ ...opts, tag: 'a' });
    const b = await buildBusyboxImage({ ...opts, tag: 'b' });
    expect(a.manifestDigest).toBe(b.manifestDigest);
    const c = await buildBusyboxImage({ ...opts, tag: 'c', config: { cmd: ['true'] } });
    expect(c.manifestDigest).not.toBe(a.manifestDigest);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(
      index.manifests.map(
        (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'],
      ),
    ).toEqual(['a', 'b', 'c']);
  });

  it('builds a multi-platform index whose manifests differ only by platform', () => {
    expect(multi.index.manifests.map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    expect(new Set(multi.images.map((i) => i.manifestDigest)).size).toBe(3);
    expect(new Set(multi.images.map((i) => i.layers[0]!.digest)).size).toBe(1);
    expect(multi.images[0]!.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
  });

  it('is unpacked by umoci into a runtime bundle with the image config applied', async () => {
    const bundle = join(work, 'bundle');
    await execa('umoci', ['unpack', '--image', `${image.dir}:full`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    expect(await readlink(join(rootfs, 'bin/sh'))).toBe('/bin/busybox');
    expect(await readFile(join(rootfs, 'srv/app/hello.txt'), 'utf8')).toBe('hello\n');
    await expect(lstat(join(rootfs, 'srv/app/link'))).rejects.toThrow(/ENOENT/);
    expect((await lstat(join(rootfs, 'srv/app/hard'))).nlink).toBe(2);
    expect((await lstat(join(rootfs, 'data/blob.bin'))).size).toBe(3 * 1024 * 1024 + 7);
    const passwd = await readFile(join(rootfs, 'etc/passwd'), 'utf8');
    for (const u of DEFAULT_USERS) expect(passwd).toContain(`${u.name}:x:${u.uid}:${u.gid}:`);
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
    expect(spec.process.user).toMatchObject({ uid: 1000, gid: 1000 });
    expect(spec.process.args).toEqual(['/bin/sh', '-c', 'id']);
    expect(spec.process.cwd).toBe('/srv/app');
    expect(spec.process.env).toContain('RIG=1');
  });

  it('pushes a multi-platform index with skopeo --all and reads it back', async () => {
    const reg = await startRegistry({ tls: true, auth: 'basic' });
    try {
      const ref = await pushWithSkopeo(multi.dir, 'multi', reg, { repo: 'rig/multi' });
      const raw = await inspectWithSkopeo(ref, reg, { raw: true });
      expect(raw).toEqual(multi.index);
      await pullWithSkopeo(ref, reg, join(work, 'multi-back'), 'm');
      const back = JSON.parse(await readFile(join(work, 'multi-back', 'index.json'), 'utf8'));
      expect(back.manifests[0].digest).toBe(multi.indexDigest);
    } finally {
      await reg.stop();
    }
  });
});
