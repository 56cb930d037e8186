/**
 * Decompression by content (not by media type, which an attacker also writes): gzip (every member
 * of a multi-member stream), zstd (the `zstd -dc` executable as a stream; Node 20 has no zstd),
 * or plain tar. The output is the uncompressed tar stream the store hashes for the diffID.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { MalformedArchiveError } from '../errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

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
    const gunzip = zlib.createGunzip();
    try {
      await Promise.all([pipeline(rest(), gunzip, { signal }), copy(gunzip, out, signal)]);
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
