import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MalformedArchiveError } from '../errors.js';
import { uncompressed } from '../store/uncompress.js';
import { decompress, InflateInputBatcher } from './decompress.js';

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

/** `data` as a stream of `size`-byte chunks (network-sized reads). */
function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

describe('InflateInputBatcher', () => {
  it('keeps bytes and order, joins small chunks into writes of at least min bytes', async () => {
    const data = randomBytes(300_000);
    const b = new InflateInputBatcher(64 * 1024);
    const out: Buffer[] = [];
    b.on('data', (c: Buffer) => out.push(c));
    await collect(chunked(data, 1000).pipe(b));
    expect(Buffer.concat(out).equals(data)).toBe(true);
    // every chunk but the last is >= min
    for (const c of out.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('passes large chunks through without copying', async () => {
    const big = randomBytes(2 << 20);
    const b = new InflateInputBatcher(1 << 20);
    const got: Buffer[] = [];
    b.on('data', (c: Buffer) => got.push(c));
    b.end(big);
    await new Promise((r) => b.on('end', r));
    expect(got).toHaveLength(1);
    expect(got[0]!.buffer).toBe(big.buffer);
  });
});

describe('gzip fast path', () => {
  const a = randomBytes(200_000);
  const b = Buffer.alloc(3 << 20, 7);
  // two gzip members: both must be decoded, whatever the input chunking
  const gz = Buffer.concat([gzipSync(a), gzipSync(b)]);

  it('decompress(): multi-member gzip from small chunks', async () => {
    const out = await collect(decompress(chunked(gz, 1500)));
    expect(out.equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("the store's uncompressed(): multi-member gzip from small chunks", async () => {
    const out = await collect((await uncompressed(chunked(gz, 1500))).stream);
    expect(out.equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('corrupt gzip is MalformedArchiveError on both paths', async () => {
    const bad = Buffer.from(gz);
    bad.fill(0xff, 100, 400);
    await expect(collect(decompress(chunked(bad, 1500)))).rejects.toBeInstanceOf(MalformedArchiveError);
    await expect(collect((await uncompressed(chunked(bad, 1500))).stream)).rejects.toBeInstanceOf(
      MalformedArchiveError,
    );
  });
});
