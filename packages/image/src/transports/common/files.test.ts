import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { digestBytes } from '../../digest/digest.js';
import { openBlobFile, writeVerifiedBlob } from './files.js';

/**
 * A source that yields `data` in `chunk`-byte pieces, one per tick (writes overlap arrivals);
 * `stopAfter` decides what happens after `stopAfter` pieces: destroy with an error, or without one.
 */
function chunked(
  data: Buffer,
  chunk: number,
  stopAfter?: { pieces: number; err?: Error },
  onPiece?: (n: number) => void,
): Readable {
  let off = 0;
  let pieces = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        onPiece?.(pieces);
        if (stopAfter && pieces++ === stopAfter.pieces) return void this.destroy(stopAfter.err);
        if (off >= data.length) return void this.push(null);
        this.push(data.subarray(off, off + chunk));
        off += chunk;
      });
    },
  });
}

describe('writeVerifiedBlob', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('image-files');
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });
  const final = (d: string) => join(dir, d.slice(7));

  it('writes every byte in order and renames to the digest', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const digest = digestBytes(data);
    const seen: number[] = [];
    const r = await writeVerifiedBlob(chunked(data, 16 * 1024), dir, final, {
      digest,
      size: data.length,
      object: 'test blob',
      onProgress: (n) => seen.push(n),
    });
    expect(r).toEqual({ digest, size: data.length });
    expect((await readFile(final(digest))).equals(data)).toBe(true);
    expect(seen.at(-1)).toBe(data.length);
    expect(await readdir(dir)).toEqual([digest.slice(7)]);
  });

  it('digest mismatch, oversize, short data: typed errors, nothing left', async () => {
    const data = randomBytes(300_000);
    const wrong = digestBytes(Buffer.from('other'));
    await expect(
      writeVerifiedBlob(chunked(data, 7000), dir, final, { digest: wrong, object: 'b' }),
    ).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expect(
      writeVerifiedBlob(chunked(data, 7000), dir, final, { size: 1000, object: 'b' }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    await expect(
      writeVerifiedBlob(chunked(data, 7000), dir, final, { size: data.length + 1, object: 'b' }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('a source that errors or is destroyed without an error fails the write, nothing left', async () => {
    const failing = chunked(randomBytes(200_000), 10_000, { pieces: 5, err: new Error('boom') });
    await expect(writeVerifiedBlob(failing, dir, final, { object: 'b' })).rejects.toThrow('boom');
    const closed = chunked(randomBytes(200_000), 10_000, { pieces: 5 });
    await expect(writeVerifiedBlob(closed, dir, final, { object: 'b' })).rejects.toMatchObject({
      code: 'ERR_INTERNAL',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('abort: ERR_ABORTED, the source destroyed, nothing left', async () => {
    const ac = new AbortController();
    let n = 0;
    const src = chunked(randomBytes(1 << 20), 4096, undefined, () => {
      if (n++ === 10) ac.abort();
    });
    await expect(
      writeVerifiedBlob(src, dir, final, { object: 'b', signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(src.destroyed).toBe(true);
    // A signal that fired before the write started (e.g. while the file was being opened).
    const early = chunked(randomBytes(1 << 16), 4096);
    const gone = AbortSignal.abort();
    await expect(writeVerifiedBlob(early, dir, final, { object: 'b', signal: gone })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('openBlobFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('image-blobfile');
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('reads from an offset and reports the whole size', async () => {
    const p = join(dir, 'blob');
    await writeFile(p, 'abcdef');
    const { stream, size } = await openBlobFile(p, 'blob x', { offset: 2 });
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(size).toBe(6);
    expect(Buffer.concat(parts).toString()).toBe('cdef');
  });

  it('a missing file is ERR_NOT_FOUND naming the blob', async () => {
    await expect(openBlobFile(join(dir, 'nope'), 'blob y')).rejects.toMatchObject({
      code: 'ERR_NOT_FOUND',
      message: expect.stringContaining('blob y'),
    });
  });

  // An archive load aborted at a layer's blob-start used to die of an uncaught AbortError: the
  // stream was created with the aborted signal and errored before anyone listened.
  it('an already aborted signal rejects with ERR_ABORTED and hands out no stream', async () => {
    const p = join(dir, 'blob');
    await writeFile(p, 'abc');
    const ac = new AbortController();
    ac.abort();
    await expect(openBlobFile(p, 'blob z', { signal: ac.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
    // give a stray stream's next-tick error the chance to surface as an uncaught exception
    await new Promise((r) => setImmediate(r));
  });
});
