/**
 * The shared driver suite (containers/storage graphtest style): every driver runs the same
 * scenarios against the real host (real overlay mounts, real files). A driver that cannot run
 * here skips with its probe() reason printed.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../archive/apply.js';
import { buildTar, type RawEntry } from '../archive/testing/tar-builder.js';
import { TarReader } from '../archive/tar-reader.js';
import { lgetxattr } from '../archive/xattr.js';
import { createDriver } from './registry.js';
import type { Driver, DriverName } from './types.js';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const isRoot = process.getuid?.() === 0;

const tarOf = (entries: RawEntry[]) => Readable.from([buildTar(entries)]);

async function listTar(s: Readable): Promise<string[]> {
  const r = new TarReader(s, { maxExtendedHeader: 1 << 20, maxPathLength: 4096 });
  const names: string[] = [];
  for (let e = await r.next(); e; e = await r.next())
    names.push(`${e.type}:${e.name}${e.linkname ? `->${e.linkname}` : ''}`);
  return names;
}

describe.each(['overlay', 'vfs'] as DriverName[])('driver %s', (name) => {
  let home: string;
  let driver: Driver;
  let skipReason: string | undefined;
  const created: string[] = [];

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), `driver-${name}-`));
    driver = createDriver(name, { home });
    const p = await driver.probe();
    if (!p.ok) {
      skipReason = p.reason;
      console.warn(`skipping ${name} driver suite: ${p.reason}`);
    }
  });
  afterAll(async () => {
    for (const id of created.reverse()) await driver.removeLayer(id).catch(() => {});
    await driver.settle?.();
    driver.close?.();
    fs.rmSync(home, { recursive: true, force: true });
  });
  const need = (ctx: { skip: (note?: string) => void }) => {
    if (skipReason) ctx.skip(skipReason);
  };
  const create = async (id: string, parent?: string) => {
    await driver.createLayer(id, parent);
    created.push(id);
  };

  it('probe says it can run here (or why not)', async () => {
    const p = await driver.probe();
    expect(p.ok || typeof p.reason === 'string').toBe(true);
  });

  it('create / apply / mount / read / changes / diff / remove', async (ctx) => {
    need(ctx);
    await create('base');
    const { size } = await driver.applyDiff(
      'base',
      undefined,
      tarOf([
        { name: 'etc/', type: 'dir', mode: 0o755 },
        { name: 'etc/hosts', body: '127.0.0.1 localhost\n' },
        { name: 'etc/gone', body: 'gone' },
        { name: 'bin/', type: 'dir' },
        { name: 'bin/ping', body: 'ELF', mode: 0o4755, pax: { 'SCHILY.xattr.security.capability': CAP } },
        { name: 'bin/ping2', type: 'hardlink', linkname: 'bin/ping' },
        { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
        { name: 'opq/', type: 'dir' },
        { name: 'opq/lower', body: 'l' },
      ]),
    );
    expect(size).toBe(20 + 4 + 3 + 1);
    const mnt = await driver.mount('base', []);
    try {
      expect(fs.readFileSync(path.join(mnt, 'etc/hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
      const ping = fs.lstatSync(path.join(mnt, 'bin/ping'));
      expect(ping.mode & 0o7777).toBe(0o4755);
      expect(fs.lstatSync(path.join(mnt, 'bin/ping2')).ino).toBe(ping.ino);
      expect(fs.readlinkSync(path.join(mnt, 'bin/sh'))).toBe('/bin/busybox');
      if (isRoot) expect(lgetxattr(path.join(mnt, 'bin/ping'), 'security.capability')).toEqual(CAP);
    } finally {
      await driver.unmount('base');
    }
    expect(await driver.isMounted('base')).toBe(false);
    const ch = await driver.changes('base', []);
    expect(ch).toContainEqual({ path: '/etc/hosts', kind: 'added' });
    expect(ch.every((c) => c.kind === 'added')).toBe(true);
    const names = await listTar(driver.diff('base', []));
    expect(names).toContain('file:etc/hosts');
    expect(names.filter((n) => n.startsWith('hardlink:bin/ping'))).toHaveLength(1);
  });

  it('whiteouts and opaque dirs in a layer on a parent', async (ctx) => {
    need(ctx);
    await create('l2', 'base');
    await driver.applyDiff(
      'l2',
      'base',
      tarOf([
        { name: 'etc/.wh.gone', body: '' },
        { name: 'etc/hosts', body: 'changed\n' },
        { name: 'opq/', type: 'dir' },
        { name: 'opq/.wh..wh..opq', body: '' },
        { name: 'opq/new', body: 'n' },
      ]),
      { parentChain: ['base'] },
    );
    const mnt = await driver.mount('l2', ['base']);
    try {
      expect(fs.existsSync(path.join(mnt, 'etc/gone'))).toBe(false);
      expect(fs.readFileSync(path.join(mnt, 'etc/hosts'), 'utf8')).toBe('changed\n');
      expect(fs.readdirSync(path.join(mnt, 'opq'))).toEqual(['new']);
      expect(fs.existsSync(path.join(mnt, 'bin/ping'))).toBe(true);
    } finally {
      await driver.unmount('l2');
    }
    const ch = await driver.changes('l2', ['base']);
    expect(ch).toContainEqual({ path: '/etc/gone', kind: 'deleted' });
    expect(ch).toContainEqual({ path: '/etc/hosts', kind: 'modified' });
    expect(ch).toContainEqual({ path: '/opq/new', kind: 'added' });
    expect(ch).toContainEqual({ path: '/opq/lower', kind: 'deleted' });
    const names = await listTar(driver.diff('l2', ['base']));
    expect(names).toContain('file:etc/.wh.gone');
    expect(names).toContain('file:etc/hosts');
    if (name === 'overlay') expect(names).toContain('file:opq/.wh..wh..opq');
  });

  it('a writable container layer: writes and deletes through the mount show in changes and diff', async (ctx) => {
    need(ctx);
    await create('ctr', 'l2');
    const chain = ['base', 'l2'];
    const mnt = await driver.mount('ctr', chain);
    try {
      fs.writeFileSync(path.join(mnt, 'etc/new.conf'), 'x');
      fs.rmSync(path.join(mnt, 'etc/hosts'));
      fs.mkdirSync(path.join(mnt, 'data'));
    } finally {
      await driver.unmount('ctr');
    }
    const ch = await driver.changes('ctr', chain);
    expect(ch).toContainEqual({ path: '/etc/new.conf', kind: 'added' });
    expect(ch).toContainEqual({ path: '/etc/hosts', kind: 'deleted' });
    expect(ch).toContainEqual({ path: '/data', kind: 'added' });
    const tar = await new Promise<Buffer>((resolve, reject) => {
      const bufs: Buffer[] = [];
      driver
        .diff('ctr', chain)
        .on('data', (b: Buffer) => bufs.push(b))
        .on('end', () => resolve(Buffer.concat(bufs)))
        .on('error', reject);
    });
    // The diff re-applies onto a copy of the parent and gives the same tree (vfs apply mode)
    const check = fs.mkdtempSync(path.join(os.tmpdir(), 'diff-check-'));
    try {
      await applyLayer(check, Readable.from([buildTar([{ name: 'etc/hosts', body: 'changed\n' }])]), {
        whiteouts: 'apply',
      });
      await applyLayer(check, Readable.from([tar]), { whiteouts: 'apply' });
      expect(fs.existsSync(path.join(check, 'etc/hosts'))).toBe(false);
      expect(fs.readFileSync(path.join(check, 'etc/new.conf'), 'utf8')).toBe('x');
      expect(fs.lstatSync(path.join(check, 'data')).isDirectory()).toBe(true);
    } finally {
      fs.rmSync(check, { recursive: true, force: true });
    }
  });

  it('mounts an image of 128 layers', async (ctx) => {
    need(ctx);
    const chain: string[] = [];
    let parent: string | undefined;
    for (let i = 0; i < 128; i++) {
      const id = `deep${String(i).padStart(3, '0')}${'0'.repeat(58)}`; // 64-char ids like real ones
      await create(id, parent);
      if (i === 0 || i === 127 || name === 'overlay') {
        await driver.applyDiff(id, parent, tarOf([{ name: `f${i}`, body: String(i) }]), {
          parentChain: parent ? [...chain, parent] : [],
        });
      }
      if (parent) chain.push(parent);
      parent = id;
    }
    const top = parent!;
    const mnt = await driver.mount(top, chain);
    try {
      expect(fs.readFileSync(path.join(mnt, 'f0'), 'utf8')).toBe('0');
      expect(fs.readFileSync(path.join(mnt, 'f127'), 'utf8')).toBe('127');
    } finally {
      await driver.unmount(top);
    }
    expect(await driver.isMounted(top)).toBe(false);
    for (const id of [top, ...chain].reverse()) {
      await driver.removeLayer(id);
      expect(await driver.exists(id)).toBe(false);
    }
  });

  it('mount is idempotent, unmount leaves no mount, removeLayer unmounts and removes', async (ctx) => {
    need(ctx);
    const a = await driver.mount('l2', ['base']);
    const b = await driver.mount('l2', ['base']);
    expect(b).toBe(a);
    await driver.removeLayer('ctr');
    await driver.removeLayer('l2');
    expect(await driver.isMounted('l2')).toBe(false);
    expect(await driver.exists('l2')).toBe(false);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts.includes(home)).toBe(false);
    await driver.removeLayer('l2'); // missing: no-op
  });

  it('overlay: a read-only mount refuses writes and shows the layer over its chain', async (ctx) => {
    need(ctx);
    if (name !== 'overlay') ctx.skip('vfs cannot enforce read-only');
    await create('ro', 'base');
    await driver.applyDiff('ro', 'base', tarOf([{ name: 'ro-file', body: 'r' }]), { parentChain: ['base'] });
    const mnt = await driver.mount('ro', ['base'], { readonly: true });
    try {
      expect(fs.readFileSync(path.join(mnt, 'ro-file'), 'utf8')).toBe('r');
      expect(fs.existsSync(path.join(mnt, 'etc/hosts'))).toBe(true);
      expect(() => fs.writeFileSync(path.join(mnt, 'x'), 'x')).toThrow(
        expect.objectContaining({ code: 'EROFS' }),
      );
    } finally {
      await driver.unmount('ro');
    }
    await driver.removeLayer('ro');
  });

  it('rejects unsafe layer ids before they reach a path', async (ctx) => {
    need(ctx);
    for (const id of ['../x', 'a/b', '', '.hidden']) {
      await expect(driver.createLayer(id, undefined)).rejects.toMatchObject({ code: 'ERR_INVALID_LAYER_ID' });
    }
  });

  it('a failed apply leaves a layer that removeLayer cleans up', async (ctx) => {
    need(ctx);
    await create('bad');
    await expect(
      driver.applyDiff(
        'bad',
        undefined,
        tarOf([
          { name: 'ok', body: 'x' },
          { name: '../escape', body: 'x' },
        ]),
      ),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_LAYER_ENTRY' });
    await driver.removeLayer('bad');
    expect(await driver.exists('bad')).toBe(false);
    expect(execFileSync('ls', ['-A', home]).toString()).not.toContain('bad');
  });
});
