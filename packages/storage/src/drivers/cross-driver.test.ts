/**
 * overlay and vfs must agree: the same layer stack gives the same merged tree (overlay mount vs
 * vfs dir), including whiteouts, opaque dirs, type flips across layers, hardlinks, setuid.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTar, type RawEntry } from '../archive/testing/tar-builder.js';
import { createDriver } from './registry.js';
import type { Driver } from './types.js';

const LAYERS: RawEntry[][] = [
  [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/a', body: 'a' },
    { name: 'etc/b', body: 'b' },
    { name: 'var/', type: 'dir' },
    { name: 'var/lib/', type: 'dir' },
    { name: 'var/lib/x', body: 'x' },
    { name: 'var/run', type: 'symlink', linkname: '/run' },
    { name: 'run/', type: 'dir', mode: 0o700 },
    { name: 'bin/su', body: 'su', mode: 0o4755 },
    { name: 'bin/su2', type: 'hardlink', linkname: 'bin/su' },
    { name: 'flip', body: 'file' },
    { name: 'flip2/', type: 'dir' },
    { name: 'flip2/child', body: 'c' },
  ],
  [
    { name: 'etc/.wh.a', body: '' },
    { name: 'var/lib/.wh..wh..opq', body: '' },
    { name: 'var/lib/y', body: 'y' },
    { name: 'var/run/pid', body: '1' }, // through the lower symlink: lands in /run
    { name: 'flip/', type: 'dir' },
    { name: 'flip/in', body: 'in' },
    { name: 'flip2', body: 'now a file' },
  ],
  [
    { name: '.wh.flip', body: '' },
    { name: 'flip', type: 'symlink', linkname: 'etc/b' },
    { name: 'etc/a', body: 'back' },
    { name: 'var/.wh.lib', body: '' },
    { name: 'var/lib/', type: 'dir' },
    { name: 'var/lib/z', body: 'z' },
  ],
];

function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      let what = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isFile()) what += ` ${fs.readFileSync(p, 'utf8')} nlink=${st.nlink}`;
      if (st.isSymbolicLink()) what += ` -> ${fs.readlinkSync(p)}`;
      out[r] = what;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('overlay and vfs agree', () => {
  let home: string;
  const drivers: Driver[] = [];
  let skip: string | undefined;
  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'cross-driver-'));
    for (const name of ['overlay', 'vfs'] as const) {
      const d = createDriver(name, { home: path.join(home, name) });
      const p = await d.probe();
      if (!p.ok) skip = p.reason;
      drivers.push(d);
    }
    if (skip) console.warn(`skipping cross-driver test: ${skip}`);
  });
  afterAll(async () => {
    for (const d of drivers) {
      for (const id of ['c0', 'c1', 'c2'].reverse()) await d.removeLayer(id).catch(() => {});
      await d.settle?.();
      d.close?.();
    }
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('the same layer stack gives the same tree', async (ctx) => {
    if (skip) ctx.skip(skip);
    const views: Record<string, string>[] = [];
    for (const d of drivers) {
      const chain: string[] = [];
      let parent: string | undefined;
      for (const [i, layer] of LAYERS.entries()) {
        const id = `c${i}`;
        await d.createLayer(id, parent);
        if (parent) chain.push(parent);
        await d.applyDiff(id, parent, Readable.from([buildTar(layer)]), { parentChain: chain });
        parent = id;
      }
      const mnt = await d.mount(parent!, chain);
      try {
        views.push(snapshot(mnt));
      } finally {
        await d.unmount(parent!);
      }
    }
    const [overlay, vfs] = views;
    expect(vfs!['var/lib/z']).toBeDefined();
    expect(vfs!['var/lib/x']).toBeUndefined();
    expect(vfs!['run/pid']).toBeDefined();
    expect(vfs!['etc/a']).toContain('back');
    expect(overlay).toEqual(vfs);
  });
});
