/**
 * Decompression by content (not by media type, which an attacker also writes): gzip (every member
 * of a multi-member stream), zstd (the `zstd -dc` executable as a stream; Node 20 has no zstd),
 * or plain tar. The output is the uncompressed tar stream the store hashes for the diffID.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { MalformedArchiveError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/**
 * Output chunk size for inflating layers. Node's default (16 KiB) costs one thread-pool round trip
 * per 16 KiB of output, which made a 32 MiB layer take 140-230 ms instead of ~20 ms here; 1 MiB
 * chunks are the fast path every layer inflate in this project goes through.
 */
export const INFLATE_CHUNK_SIZE = 1 << 20;

/**
 * A gzip decoder for layer data (every member of a multi-member stream is decoded), with large
 * output chunks. Errors are zlib's (`code` `Z_*`); callers map them to their own error type.
 */
export function createLayerGunzip(): zlib.Gunzip {
  return zlib.createGunzip({ chunkSize: INFLATE_CHUNK_SIZE });
}

/** Input batch size for inflating: see InflateInputBatcher. */
export const INFLATE_INPUT_BATCH = 1 << 20;

/**
 * Joins small input chunks (network reads are 16-64 KiB) into writes of at least `min` bytes
 * before a zlib stream: every zlib write is one thread-pool round trip, and on a busy 2-core host
 * those cost ~0.6 s of main-thread CPU per 260 MB of gzip input. Order and bytes are unchanged;
 * chunks already large enough pass through without a copy.
 */
export class InflateInputBatcher extends Transform {
  private parts: Buffer[] = [];
  private len = 0;

  constructor(private readonly min = INFLATE_INPUT_BATCH) {
    super({ highWaterMark: min });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.len === 0 && chunk.length >= this.min) {
      cb(null, chunk);
      return;
    }
    this.parts.push(chunk);
    this.len += chunk.length;
    if (this.len >= this.min) {
      const joined = Buffer.concat(this.parts, this.len);
      this.parts = [];
      this.len = 0;
      cb(null, joined);
      return;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.len > 0) this.push(Buffer.concat(this.parts, this.len));
    this.parts = [];
    this.len = 0;
    cb();
  }
}

export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}

export interface DecompressOptions {
  signal?: AbortSignal;
  /** Called once the format is known. */
  onDetect?: (c: Compression) => void;
}

/**
 * Returns the uncompressed stream of `input`. Errors of the decompressor (corrupt data, zstd exit
 * status) surface on the returned stream as MalformedArchiveError; destroying the returned stream
 * stops the decompressor (and kills zstd).
 */
export function decompress(input: Readable, opts: DecompressOptions = {}): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  void run(input, out, opts).catch((err) => {
    // stop the producer too (a download keeps buffering otherwise)
    input.destroy();
    out.destroy(err);
  });
  return out;
}

async function run(input: Readable, out: PassThrough, opts: DecompressOptions): Promise<void> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let n = 0;
  let done = false;
  while (n < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    n += b.length;
  }
  const first = Buffer.concat(head);
  const kind = detectCompression(first);
  opts.onDetect?.(kind);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  const signal = opts.signal;
  if (kind === 'none') {
    await copy(rest(), out, signal);
    out.end();
    return;
  }
  if (kind === 'gzip') {
    const gunzip = createLayerGunzip();
    try {
      await Promise.all([
        pipeline(rest(), new InflateInputBatcher(), gunzip, { signal }),
        copy(gunzip, out, signal),
      ]);
    } catch (err) {
      gunzip.destroy();
      throw wrap(err, 'gzip');
    }
    out.end();
    return;
  }
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  try {
    await Promise.all([
      pipeline(rest(), child.stdin, { signal }).catch((err) => {
        // zstd closing its stdin early (it failed) shows up as EPIPE: its exit status says why
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
      }),
      copy(child.stdout, out, signal),
      exited,
    ]);
    const code = await exited;
    if (code !== 0) throw new MalformedArchiveError(`zstd: ${stderr.trim() || `exit status ${code}`}`);
  } catch (err) {
    child.kill('SIGKILL');
    throw wrap(err, 'zstd');
  }
  // end only after the exit status is known: a failed zstd must not look like a short tar
  out.end();
}

/** Copy into `out` with backpressure; stops (throws) when `out` is destroyed by its reader. */
async function copy(
  src: AsyncIterable<Buffer>,
  out: PassThrough,
  signal: AbortSignal | undefined,
): Promise<void> {
  for await (const chunk of src) {
    signal?.throwIfAborted();
    if (out.destroyed) throw new Error('decompressed stream closed by its reader');
    if (!out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
  }
}

function wrap(err: unknown, what: string): unknown {
  if (err instanceof MalformedArchiveError) return err;
  if ((err as Error)?.name === 'AbortError') return err;
  if ((err as NodeJS.ErrnoException)?.code?.startsWith('Z_') || what === 'zstd') {
    return new MalformedArchiveError(`${what} stream: ${(err as Error).message}`, { cause: err });
  }
  return err;
}
