import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTarMembers } from './tar-members.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'libpod-ts-test-tar-members-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type E = {
  name: string;
  data?: string;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  pax?: Record<string, string>;
};

async function tarOf(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const h: Partial<tar.Header> & { name: string } = { name: e.name, type: e.type ?? 'file', mode: 0o644 };
    if (e.linkname) h.linkname = e.linkname;
    if (e.pax) h.pax = e.pax;
    pack.entry(h, e.data ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function file(name: string, b: Buffer): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, b);
  return p;
}

describe('readTarMembers', () => {
  it('finds top-level members (./ prefixes, long names, after big entries) and skips the rest', async () => {
    const long = `${'d/'.repeat(80)}x.json`;
    const p = await file(
      'ok.tar',
      await tarOf([
        { name: 'blobs/', type: 'directory' },
        { name: 'blobs/sha256/aa', data: 'x'.repeat(70_000) },
        { name: long, data: '{"deep":true}' },
        { name: 'link', type: 'symlink', linkname: 'manifest.json' },
        { name: './manifest.json', data: '[{"Config":"c.json"}]' },
        { name: 'index.json', data: '{"manifests":[]}' },
      ]),
    );
    const m = await readTarMembers(p, ['manifest.json', 'index.json', long], 1 << 20);
    expect(m.get('manifest.json')?.toString()).toBe('[{"Config":"c.json"}]');
    expect(m.get('index.json')?.toString()).toBe('{"manifests":[]}');
    expect(m.get(long)?.toString()).toBe('{"deep":true}');
    expect((await readTarMembers(p, ['nothing'], 1 << 20)).size).toBe(0);
  });

  it('uses a PAX path over the header name', async () => {
    const p = await file(
      'pax.tar',
      await tarOf([{ name: 'decoy', pax: { path: 'manifest.json' }, data: '[]' }]),
    );
    expect((await readTarMembers(p, ['manifest.json'], 100)).get('manifest.json')?.toString()).toBe('[]');
  });

  it('refuses duplicates, oversize members, truncation and files that are not tars', async () => {
    const dup = await file(
      'dup.tar',
      await tarOf([
        { name: 'manifest.json', data: '[]' },
        { name: './manifest.json', data: '[1]' },
      ]),
    );
    await expect(readTarMembers(dup, ['manifest.json'], 100)).rejects.toMatchObject({
      code: 'ERR_INVALID_IMAGE_ARCHIVE',
      message: expect.stringContaining('duplicate'),
    });
    const big = await file('big.tar', await tarOf([{ name: 'index.json', data: 'y'.repeat(5000) }]));
    await expect(readTarMembers(big, ['index.json'], 4096)).rejects.toMatchObject({
      message: expect.stringContaining('larger than'),
    });
    const whole = await tarOf([{ name: 'index.json', data: 'z'.repeat(3000) }]);
    const cut = await file('cut.tar', whole.subarray(0, 1024));
    await expect(readTarMembers(cut, ['index.json'], 1 << 20)).rejects.toMatchObject({
      message: expect.stringContaining('truncated'),
    });
    const notTar = await file('not.tar', Buffer.from('{"this is":"json, not a tar"}'.repeat(40)));
    await expect(readTarMembers(notTar, ['index.json'], 100)).rejects.toMatchObject({
      code: 'ERR_INVALID_IMAGE_ARCHIVE',
      message: expect.stringContaining('not a tar'),
    });
    const corrupt = Buffer.from(whole);
    corrupt[5] = 0x41; // name byte changed, checksum not updated
    await expect(
      readTarMembers(await file('bad.tar', corrupt), ['index.json'], 1 << 20),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_IMAGE_ARCHIVE',
    });
    await expect(readTarMembers(join(dir, 'absent.tar'), ['index.json'], 100)).rejects.toMatchObject({
      code: 'ERR_INVALID_IMAGE_ARCHIVE',
    });
    await expect(readTarMembers(await file('empty.tar', Buffer.alloc(0)), ['x'], 100)).resolves.toEqual(
      new Map(),
    );
  });

  it('stops when aborted', async () => {
    const p = await file('abort.tar', await tarOf([{ name: 'index.json', data: '{}' }]));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(readTarMembers(p, ['index.json'], 100, ac.signal)).rejects.toThrow('stop');
  });
});
