import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MalformedArchiveError } from '../errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import { type TarEntry, TarReader } from './tar-reader.js';
import { buildTar, type RawEntry } from './testing/tar-builder.js';

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

interface Seen {
  e: TarEntry;
  body: string;
}

/** Reads like applyLayer does: the sync fast path first, next() when it declines. */
async function readAll(data: Buffer, size: number, readBodies: boolean): Promise<Seen[]> {
  const r = new TarReader(chunks(data, size), DEFAULT_LIMITS);
  const out: Seen[] = [];
  for (;;) {
    const e = r.nextBuffered() ?? (await r.next());
    if (!e) break;
    let body = '';
    if (readBodies && e.type === 'file') {
      const whole = r.takeBufferedBody();
      if (whole) body = whole.toString('hex');
      else {
        const parts: Buffer[] = [];
        await r.readBody((c) => {
          parts.push(Buffer.from(c));
        });
        body = Buffer.concat(parts).toString('hex');
      }
    }
    out.push({ e, body });
  }
  return out;
}

describe('TarReader fast path (nextBuffered/takeBufferedBody)', () => {
  const entries: RawEntry[] = [
    { name: 'd/', type: 'dir', mode: 0o755 },
    { name: 'd/small', body: 'hello' },
    { name: 'd/empty', body: '' },
    { name: 'd/big', body: randomBytes(70_000) },
    { name: 'd/pax-named', body: 'x', pax: { path: 'd/long-' + 'n'.repeat(200), mtime: '1.5' } },
    { name: 'd/after-pax', body: randomBytes(513) },
    { name: 'x', type: 'longname', body: 'd/gnu-' + 'g'.repeat(150) },
    { name: 'ignored', body: 'gnu long name body' },
    { name: 'd/link', type: 'symlink', linkname: '../etc/passwd' },
    { name: 'd/hard', type: 'hardlink', linkname: 'd/small' },
  ];
  const tar = buildTar(entries);

  it('gives the same entries and bodies for every input chunking, read or skipped', async () => {
    const want = await readAll(tar, tar.length, true);
    expect(want.map((s) => s.e.name)).toEqual([
      'd/',
      'd/small',
      'd/empty',
      'd/big',
      'd/long-' + 'n'.repeat(200),
      'd/after-pax',
      'd/gnu-' + 'g'.repeat(150),
      'd/link',
      'd/hard',
    ]);
    for (const size of [1, 7, 511, 512, 513, 4096, 65_536]) {
      expect(await readAll(tar, size, true)).toEqual(want);
      const skipped = await readAll(tar, size, false);
      expect(skipped.map((s) => s.e)).toEqual(want.map((s) => s.e));
    }
  });

  it('a bad checksum is refused on the fast path too', async () => {
    const bad = buildTar([
      { name: 'a', body: 'x' },
      { name: 'b', body: 'y', badChecksum: true },
    ]);
    await expect(readAll(bad, bad.length, true)).rejects.toBeInstanceOf(MalformedArchiveError);
  });
});
