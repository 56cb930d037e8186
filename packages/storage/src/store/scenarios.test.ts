/**
 * The store's shared scenario suite: every driver (overlay, vfs) runs the same store scenarios on
 * the real host. A driver that cannot run here skips with its probe() reason printed.
 */
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs/promises';
import { TarReader } from '../archive/tar-reader.js';
import { createDriver } from '../drivers/registry.js';
import type { DriverName } from '../drivers/types.js';
import { MetaDb } from './db.js';
import { type Store, openStore } from './store.js';
import { digestOf, gz, makeTar, streamOf } from './testing/tars.js';

async function tarNames(s: NodeJS.ReadableStream): Promise<string[]> {
  const r = new TarReader(s as never, { maxExtendedHeader: 1 << 20, maxPathLength: 4096 });
  const out: string[] = [];
  for (let e = await r.next(); e; e = await r.next()) out.push(e.name.replace(/\/$/, ''));
  return out;
}

describe.each(['overlay', 'vfs'] as DriverName[])('store on %s', (driverName) => {
  let dir: string;
  let store: Store;
  let skip: string | undefined;
  const mounted: Array<[Store, string]> = [];
  const open = () => openStore({ root: join(dir, 'root'), runRoot: join(dir, 'run'), driver: driverName });

  beforeEach(async () => {
    dir = await makeTempDir(`store-${driverName}`);
    const p = await createDriver(driverName, { home: join(dir, 'probe') }).probe();
    skip = p.ok ? undefined : p.reason;
    if (skip) console.warn(`skipping store scenarios on ${driverName}: ${skip}`);
    else store = await open();
  });
  afterEach(async () => {
    for (const [s, c] of mounted.splice(0)) await s.unmount(c, { force: true }).catch(() => undefined);
    await store?.close();
    await removeTempDir(dir);
  });

  async function baseImage(): Promise<{ imageId: string; top: string }> {
    const t1 = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/sh', content: '#!fake', mode: 0o755 },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
      { name: 'etc/motd', content: 'hello' },
      { name: 'var/', type: 'directory' },
      { name: 'var/run', type: 'symlink', linkname: '/run' },
    ]);
    const t2 = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.motd', content: '' },
      { name: 'etc/hostname', content: 'layer2' },
    ]);
    const l1 = await store.createLayer({ tar: streamOf(gz(t1)), expectedDiffID: digestOf(t1) });
    const l2 = await store.createLayer({
      parent: l1.layer.id,
      tar: streamOf(t2),
      expectedDiffID: digestOf(t2),
    });
    const img = await store.createImage({
      config: Buffer.from(
        JSON.stringify({ os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(t1), digestOf(t2)] } }),
      ),
      topLayer: l2.layer.id,
      names: ['localhost/scenario:1'],
    });
    return { imageId: img.id, top: l2.layer.id };
  }

  it('container rootfs: whiteouts applied, writes land in the container layer, changes and diff', async (ctx) => {
    if (skip) return ctx.skip(skip);
    await baseImage();
    const c = await store.createContainer({ name: 'sc', image: 'scenario:1' });
    const root = await store.mount('sc');
    mounted.push([store, 'sc']);
    expect(await fs.readFile(join(root, 'etc/passwd'), 'utf8')).toContain('root:x:0:0');
    expect(await fs.readFile(join(root, 'etc/hostname'), 'utf8')).toBe('layer2');
    await expect(fs.stat(join(root, 'etc/motd'))).rejects.toThrow();
    expect(await fs.readlink(join(root, 'var/run'))).toBe('/run');
    await fs.writeFile(join(root, 'etc/new'), 'new');
    await fs.writeFile(join(root, 'etc/passwd'), 'changed');
    await fs.rm(join(root, 'bin/sh'));
    // A second store object (as another process would) shares the mount count.
    const other = await open();
    try {
      expect(await other.mount(c.id)).toBe(root);
      expect(await other.mountCount('sc')).toBe(2);
      expect(await other.unmount('sc')).toBe(1);
    } finally {
      await other.close();
    }
    expect(await store.unmount('sc')).toBe(0);
    mounted.pop();
    const changes = await store.changes('sc');
    const byPath = Object.fromEntries(changes.map((ch) => [ch.path, ch.kind]));
    expect(byPath['/etc/new']).toBe('added');
    expect(byPath['/etc/passwd']).toBe('modified');
    expect(byPath['/bin/sh']).toBe('deleted');
    const names = await tarNames(await store.diff('sc'));
    expect(names).toContain('etc/new');
    expect(names).toContain('etc/passwd');
    expect(names).toContain('bin/.wh.sh');
    await store.deleteContainer('sc');
    await store.deleteImage('scenario:1');
    expect(await store.listLayers()).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
  });

  it('layerTar rebuilds the exact applied tar (sha256 = diffID), also with long names and links', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
    const t1 = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/a', content: 'A'.repeat(70_000) },
      { name: 'etc/empty', content: '' },
      { name: 'etc/link', type: 'symlink', linkname: '/etc/a' },
      { name: `${'d'.repeat(120)}/`, type: 'directory' },
      { name: long, content: 'long name content' },
    ]);
    const t2 = await makeTar([
      { name: 'etc/.wh.a', content: '' },
      { name: 'etc/b', content: 'b' },
    ]);
    const l1 = await store.createLayer({ tar: streamOf(gz(t1)), expectedDiffID: digestOf(t1) });
    const l2 = await store.createLayer({
      parent: l1.layer.id,
      tar: streamOf(t2),
      expectedDiffID: digestOf(t2),
    });
    const collect = async (r: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      for await (const c of r) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    expect(digestOf(await collect(await store.layerTar(l1.layer.id)))).toBe(digestOf(t1));
    expect(digestOf(await collect(await store.layerTar(l2.layer.id)))).toBe(digestOf(t2));
    // A file changed behind the store's back: the rebuilt tar no longer matches (never silently).
    await fs.writeFile(join(store.driver.layerDir(l1.layer.id), 'etc/a'), 'B'.repeat(70_000));
    expect(digestOf(await collect(await store.layerTar(l1.layer.id)))).not.toBe(digestOf(t1));
    await store.deleteLayer(l2.layer.id);
    await store.deleteLayer(l1.layer.id);
    expect((await store.check()).problems).toEqual([]);
  });

  it('an image with 128 layers mounts', async (ctx) => {
    if (skip) return ctx.skip(skip);
    let parent: string | undefined;
    const lease = await store.createLease();
    for (let i = 0; i < 128; i++) {
      const t = await makeTar([{ name: `f${i}`, content: String(i) }]);
      const { layer } = await store.createLayer({
        parent,
        tar: streamOf(t),
        expectedDiffID: digestOf(t),
        lease,
      });
      parent = layer.id;
    }
    await store.createImage({
      config: Buffer.from('{"os":"linux","n":128}'),
      topLayer: parent!,
      names: ['localhost/deep:1'],
    });
    await store.releaseLease(lease);
    await store.createContainer({ name: 'deep', image: 'deep:1' });
    const root = await store.mount('deep');
    mounted.push([store, 'deep']);
    expect(await fs.readFile(join(root, 'f0'), 'utf8')).toBe('0');
    expect(await fs.readFile(join(root, 'f127'), 'utf8')).toBe('127');
    await store.unmount('deep');
    mounted.pop();
    await store.deleteContainer('deep');
    const r = await store.deleteImage('deep:1');
    expect(r.deletedLayers.length).toBe(128);
    expect((await store.check()).problems).toEqual([]);
  });

  it('mount counts from before a reboot are stale: check reports them, repair drops them', async (ctx) => {
    if (skip) return ctx.skip(skip);
    await baseImage();
    const c = await store.createContainer({ name: 'rb', image: 'scenario:1' });
    await store.mount('rb');
    mounted.push([store, 'rb']);
    // Simulate the reboot: the kernel forgot the mount, the record still counts it.
    await store.driver.unmount(c.layerId);
    mounted.pop();
    await store.close();
    const db = new MetaDb(join(dir, 'root', 'db'), { lingerMs: 0 });
    await db.transaction(async (tx) => {
      tx.put(`M/${c.layerId}`, { count: 1, boot: 'an-earlier-boot', path: '/x' });
    });
    store = await open();
    // The boot marker matches (same boot), so open leaves it; check sees the stale stamp.
    expect(await store.mountCount('rb')).toBe(0);
    const report = await store.check();
    expect(report.problems.map((p) => p.kind)).toEqual(['stale-mount']);
    const fixed = await store.repair();
    expect(fixed.remaining).toEqual([]);
    await store.deleteContainer('rb');
    await store.deleteImage('scenario:1');
  });

  it('a container on no image, and deleting a mounted container with force', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const c = await store.createContainer({});
    expect(c.imageId).toBeNull();
    const root = await store.mount(c.id);
    mounted.push([store, c.id]);
    await fs.writeFile(join(root, 'x'), 'x');
    await expect(store.deleteContainer(c.id)).rejects.toMatchObject({ code: 'ERR_LAYER_MOUNTED' });
    await store.deleteContainer(c.id, { force: true });
    mounted.pop();
    expect(await store.listLayers()).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
  });

  it('a volatile container mounts again after an unmount, and keeps what it wrote', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const { imageId } = await baseImage();
    const c = await store.createContainer({ image: imageId, volatile: true });
    expect((await store.getContainer(c.id)).volatile).toBe(true);
    for (const round of [1, 2, 3]) {
      const root = await store.mount(c.id);
      mounted.push([store, c.id]);
      if (driverName === 'overlay') {
        const line = (await fs.readFile('/proc/self/mounts', 'utf8'))
          .split('\n')
          .find((l) => l.split(' ')[1] === root);
        expect(line).toMatch(/\bvolatile\b/);
      }
      await fs.appendFile(join(root, 'rounds'), `${round}\n`);
      await store.unmount(c.id);
      mounted.pop();
    }
    const root = await store.mount(c.id);
    mounted.push([store, c.id]);
    expect(await fs.readFile(join(root, 'rounds'), 'utf8')).toBe('1\n2\n3\n');
    await store.deleteContainer(c.id, { force: true });
    mounted.pop();
  });
});
