import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayDriver } from './driver.js';

describe('overlay driver: mount options, layer removal', () => {
  let home: string;
  let d: OverlayDriver;
  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-opts-'));
    d = new OverlayDriver({ home });
  });
  afterAll(async () => {
    await d.settle();
    d.close();
    fs.rmSync(home, { recursive: true, force: true });
  });
  const id = (i: number) => i.toString(16).padStart(64, '0');

  it('128 lowers of 64-char ids fit in one page with short relative links', () => {
    const chain = Array.from({ length: 127 }, (_, i) => id(i));
    const data = d.mountData(id(999), chain);
    expect(Buffer.byteLength(data)).toBeLessThan(4096);
    expect(data).toMatch(/^lowerdir=l\/[0-9a-f]{16}:/);
    expect(data).toContain(`upperdir=${id(999)}/diff,workdir=${id(999)}/work`);
    // top of the chain first, as overlayfs wants
    expect(data.indexOf(`l/`)).toBeLessThan(data.length);
  });

  it('a chain too long for one page is refused with a typed error, not a kernel EINVAL', async () => {
    const chain = Array.from({ length: 300 }, (_, i) => id(i));
    await d.createLayer(id(1000), undefined);
    for (const c of chain) {
      fs.mkdirSync(path.join(home, 'l'), { recursive: true });
      const link = path.join(home, 'l', (d as unknown as { short(i: string): string }).short(c));
      if (!fs.existsSync(link)) fs.symlinkSync('../x', link);
    }
    await expect(d.mount(id(1000), chain)).rejects.toMatchObject({ code: 'ERR_DRIVER_OPERATION' });
    await d.removeLayer(id(1000));
  });

  it('read-only mounts use only lowers (two at least) and no upper', () => {
    expect(d.mountData('a', [], { readonly: true })).toMatch(/^lowerdir=l\/[0-9a-f]{16}:a\/empty$/);
    expect(d.mountData('a', ['b'], { readonly: true })).not.toContain('upperdir');
  });

  it('mount options cannot smuggle extra overlay options', () => {
    expect(() => d.mountData('a', [], { mountOptions: ['ro,upperdir=/etc'] })).toThrow();
    expect(() => d.mountData('a', [], { mountOptions: ['context=x,upperdir=/etc'] })).toThrow();
    expect(() => d.mountData('a', [], { mountOptions: ['context="a",upperdir=/etc'] })).toThrow();
    const selinux = 'context="system_u:object_r:container_file_t:s0:c1,c2"';
    expect(d.mountData('a', [], { mountOptions: [selinux] })).toContain(selinux);
  });

  const trash = () => path.join(home, '.trash');

  it('takes the layer off its path at once and deletes the tree in the background', async () => {
    await d.createLayer(id(1), undefined);
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(d.layerDir(id(1)), `f${i}`), 'x');
    await d.removeLayer(id(1));
    expect(await d.exists(id(1))).toBe(false);
    expect(fs.existsSync(path.join(home, id(1)))).toBe(false);
    await d.settle();
    expect(fs.readdirSync(trash())).toEqual([]);
  });

  it('recover() deletes what a dead process left aside, not what a live one is deleting', async () => {
    // A pid that is surely gone: a child that has exited and been reaped.
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync('/bin/true').pid!;
    const deadEntry = path.join(trash(), `${id(2)}.${dead}-1.1`);
    const init = fs.readFileSync('/proc/1/stat', 'utf8');
    const initStart = init.slice(init.lastIndexOf(')') + 2).split(' ')[19];
    const liveEntry = path.join(trash(), `${id(3)}.1-${initStart}.1`); // pid 1 lives
    for (const e of [deadEntry, liveEntry]) {
      fs.mkdirSync(path.join(e, 'diff', 'sub'), { recursive: true });
      fs.writeFileSync(path.join(e, 'diff', 'sub', 'f'), 'x');
    }
    await d.recover();
    expect(fs.existsSync(deadEntry)).toBe(false);
    expect(fs.existsSync(liveEntry)).toBe(true);
    fs.rmSync(liveEntry, { recursive: true });
  });
});
