import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayDriver } from './driver.js';

describe('overlay mount options', () => {
  let home: string;
  let d: OverlayDriver;
  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-opts-'));
    d = new OverlayDriver({ home });
  });
  afterAll(() => {
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
});
