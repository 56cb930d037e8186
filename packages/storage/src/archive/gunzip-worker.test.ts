import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MalformedArchiveError } from '../errors.js';
import { uncompressed, WORKER_MIN_INPUT } from '../store/uncompress.js';
import { returnChunk } from './chunk-loan.js';
import { gunzipInWorker } from './gunzip-worker.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function collect(s: AsyncIterable<Buffer>, slow = false): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) {
    parts.push(c);
    if (slow) await sleep(1);
  }
  return Buffer.concat(parts);
}

function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

// Incompressible data, so the gzip input is larger than WORKER_MIN_INPUT (the worker path).
const a = randomBytes(3 << 20);
const b = randomBytes(3 << 20);
const plain = Buffer.concat([a, b]);
const gz = Buffer.concat([gzipSync(a, { level: 1 }), gzipSync(b, { level: 1 })]);

describe('gunzipInWorker', () => {
  it('inflates every gzip member and hashes input and output, whatever the chunking', async () => {
    for (const size of [1500, 64 * 1024, 3 << 20]) {
      const { output, result } = gunzipInWorker(chunked(gz, size));
      expect((await collect(output)).equals(plain)).toBe(true);
      expect(await result).toEqual({
        input: { digest: sha(gz), size: gz.length },
        output: { digest: sha(plain), size: plain.length },
      });
    }
  });

  it('streams share one worker: concurrent streams stay separate, a corrupt one fails alone', async () => {
    const bad = Buffer.from(gz);
    bad.fill(0xff, 1000, 5000);
    const runs = [gz, bad, gz, gz].map((input) => {
      const { output, result } = gunzipInWorker(chunked(input, 48 * 1024));
      return Promise.all([collect(output), result]);
    });
    const settled = await Promise.allSettled(runs);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    for (const r of settled) {
      if (r.status === 'fulfilled') {
        expect(r.value[0].equals(plain)).toBe(true);
        expect(r.value[1].output.digest).toBe(sha(plain));
      } else {
        expect(r.reason).toBeInstanceOf(MalformedArchiveError);
      }
    }
  });

  it('a slow reader still gets every byte in order (credits, no loss)', async () => {
    const { output, result } = gunzipInWorker(chunked(gz, 16 * 1024));
    expect((await collect(output, true)).equals(plain)).toBe(true);
    expect((await result).output.digest).toBe(sha(plain));
  });

  it('chunks returned to the worker as soon as they are copied are reused without corrupting data', async () => {
    const { output, result } = gunzipInWorker(chunked(gz, 64 * 1024));
    const parts: Buffer[] = [];
    for await (const c of output) {
      parts.push(Buffer.from(c as Buffer)); // a copy
      returnChunk(c as Buffer); // may be detached and overwritten from here on
    }
    expect(Buffer.concat(parts).equals(plain)).toBe(true);
    expect((await result).output.digest).toBe(sha(plain));
    expect(parts.length).toBeGreaterThanOrEqual(6);
  });

  it('corrupt data fails the output and the result with MalformedArchiveError', async () => {
    const bad = Buffer.from(gz);
    bad.fill(0xff, 1000, 5000);
    const { output, result } = gunzipInWorker(chunked(bad, 64 * 1024));
    await expect(collect(output)).rejects.toBeInstanceOf(MalformedArchiveError);
    await expect(result).rejects.toBeInstanceOf(MalformedArchiveError);
  });

  it('a truncated stream is MalformedArchiveError, not a short output', async () => {
    const { output, result } = gunzipInWorker(chunked(gz.subarray(0, gz.length - 100), 64 * 1024));
    await expect(collect(output)).rejects.toBeInstanceOf(MalformedArchiveError);
    await expect(result).rejects.toBeInstanceOf(MalformedArchiveError);
  });

  it('destroying the output stops the input and the worker', async () => {
    const input = chunked(gz, 64 * 1024);
    const { output, result } = gunzipInWorker(input);
    for await (const _ of output) break; // destroys output after the first chunk
    await expect(result).rejects.toThrow();
    expect(input.destroyed).toBe(true);
  });

  it('an input error fails the output with that error; an abort fails it too', async () => {
    const boom = new Error('network down');
    const input = new Readable({ read() {} });
    input.push(gz.subarray(0, 2 << 20));
    const { output } = gunzipInWorker(input);
    setTimeout(() => input.destroy(boom), 20);
    await expect(collect(output)).rejects.toBe(boom);

    const ac = new AbortController();
    const slowInput = new Readable({ read() {} });
    slowInput.push(gz.subarray(0, 1 << 20));
    const r = gunzipInWorker(slowInput, ac.signal);
    setTimeout(() => ac.abort(), 20);
    await expect(collect(r.output)).rejects.toBeInstanceOf(MalformedArchiveError);
    expect(slowInput.destroyed).toBe(true);
  });
});

describe("the store's uncompressed(): digests on every path", () => {
  it('large gzip (worker), small gzip (in-process), plain tar', async () => {
    expect(gz.length).toBeGreaterThan(WORKER_MIN_INPUT);
    const small = gzipSync(a.subarray(0, 100_000));
    const cases: Array<[Buffer, Buffer]> = [
      [gz, plain],
      [small, a.subarray(0, 100_000)],
      [plain, plain],
    ];
    for (const [input, out] of cases) {
      const u = await uncompressed(chunked(input, 64 * 1024));
      expect((await collect(u.stream)).equals(out)).toBe(true);
      expect(await u.digests).toEqual({
        input: { digest: sha(input), size: input.length },
        output: { digest: sha(out), size: out.length },
      });
    }
  });

  it('an empty input is an empty plain stream', async () => {
    const u = await uncompressed(Readable.from([]));
    expect((await collect(u.stream)).length).toBe(0);
    expect((await u.digests).input.size).toBe(0);
  });
});
