/**
 * The store's entry to decompression: the uncompressed tar of a layer blob, plus the sha256 and
 * size of both the input (the compressed blob, checked by the caller against the manifest) and
 * the output (the diffID). Detection is by content, as in archive/decompress.ts.
 *
 * - gzip, large (more than WORKER_MIN_INPUT bytes): inflated and hashed in the process's shared
 *   worker thread (archive/gunzip-worker.ts); the main thread is left to apply the tar.
 * - gzip, small: inflated in-process (createLayerGunzip: 1 MiB output chunks, input batched),
 *   hashed on the main thread: a worker costs ~30 ms of CPU to start, more than such a layer takes.
 * - zstd and plain tar: decompress(), hashed on the main thread (a plain tar is hashed once: its
 *   input and output are the same bytes).
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import {
  createLayerGunzip,
  decompress,
  detectCompression,
  InflateInputBatcher,
} from '../archive/decompress.js';
import { gunzipInWorker, type InflateDigests, type StreamDigest } from '../archive/gunzip-worker.js';
import { MalformedArchiveError } from '../errors.js';

export type { InflateDigests, StreamDigest };

/**
 * Compressed bytes read before choosing the worker: a blob that ends before this is inflated
 * in-process. 4 MiB of gzip is ~10 MB of tar, ~40 ms of inflate and hashing here.
 */
export const WORKER_MIN_INPUT = 4 << 20;

export interface Uncompressed {
  /** The uncompressed stream; read it to the end before awaiting `digests`. */
  stream: Readable;
  /** Settles after `stream` ended (or failed). */
  digests: Promise<InflateDigests>;
}

export async function uncompressed(input: Readable, signal?: AbortSignal): Promise<Uncompressed> {
  const { head, ended } = await readHead(input, WORKER_MIN_INPUT);
  const kind = detectCompression(head.subarray(0, 4));
  if (ended) {
    // all of it is in `head` (a stream cannot be unshifted after its end)
    input = Readable.from(head.length > 0 ? [head] : []);
  } else if (head.length > 0) {
    input.unshift(head);
  }
  if (kind === 'gzip' && !ended) {
    const { output, result } = gunzipInWorker(input, signal);
    return { stream: output, digests: result };
  }
  if (kind === 'none') {
    const tap = hashTap();
    const stream = decompress(input, { signal });
    stream.on('error', (err) => tap.stream.destroy(err));
    tap.stream.on('close', () => {
      if (!stream.destroyed) stream.destroy();
    });
    stream.pipe(tap.stream);
    const digests = tap.digest.then((d) => ({ input: d, output: d }));
    digests.catch(() => undefined);
    return { stream: tap.stream, digests };
  }
  // Small gzip, or zstd: hash what goes in and what comes out on this thread.
  const inTap = hashTap();
  input.on('error', (err) => inTap.stream.destroy(err));
  input.pipe(inTap.stream);
  const inflated =
    kind === 'gzip' ? gunzipInProcess(inTap.stream, signal) : decompress(inTap.stream, { signal });
  const outTap = hashTap();
  inflated.on('error', (err) => outTap.stream.destroy(err));
  outTap.stream.on('close', () => {
    if (!inflated.destroyed) inflated.destroy();
  });
  inflated.pipe(outTap.stream);
  const digests = Promise.all([inTap.digest, outTap.digest]).then(([i, o]) => ({ input: i, output: o }));
  digests.catch(() => undefined);
  return { stream: outTap.stream, digests };
}

/** A pass-through that hashes and counts; `digest` settles when it has flushed or failed. */
function hashTap(): { stream: Transform; digest: Promise<StreamDigest> } {
  const hash: Hash = createHash('sha256');
  let size = 0;
  let resolve!: (d: StreamDigest) => void;
  let reject!: (err: unknown) => void;
  const digest = new Promise<StreamDigest>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  digest.catch(() => undefined);
  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      resolve({ digest: `sha256:${hash.digest('hex')}`, size });
      cb();
    },
  });
  stream.on('close', () => reject(new MalformedArchiveError('stream closed before its end')));
  stream.on('error', reject);
  return { stream, digest };
}

function gunzipInProcess(input: Readable, signal?: AbortSignal): Readable {
  const gunzip = createLayerGunzip();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const fail = (err: Error) => {
    out.destroy(
      err instanceof MalformedArchiveError
        ? err
        : new MalformedArchiveError(`gzip: ${err.message}`, { cause: err }),
    );
    input.destroy();
    gunzip.destroy();
  };
  input.on('error', fail);
  gunzip.on('error', fail);
  out.on('close', () => {
    if (!input.destroyed) input.destroy();
    if (!gunzip.destroyed) gunzip.destroy();
  });
  const onAbort = () => fail(new MalformedArchiveError('aborted', { cause: signal?.reason }));
  signal?.addEventListener('abort', onAbort, { once: true });
  out.on('close', () => signal?.removeEventListener('abort', onAbort));
  const batcher = new InflateInputBatcher();
  batcher.on('error', fail);
  out.on('close', () => {
    if (!batcher.destroyed) batcher.destroy();
  });
  input.pipe(batcher).pipe(gunzip).pipe(out);
  return out;
}

/** Reads until `n` bytes or the end of `input` (`ended`: nothing follows `head`). */
function readHead(input: Readable, n: number): Promise<{ head: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    let ended = false;
    const done = (err?: Error) => {
      input.off('readable', onReadable);
      input.off('end', onEnd);
      input.off('error', onErr);
      if (err) reject(err);
      else resolve({ head: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), ended });
    };
    const onReadable = () => {
      while (len < n) {
        const chunk = input.read() as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        len += chunk.length;
      }
      if (len >= n) done();
    };
    const onEnd = () => {
      ended = true;
      done();
    };
    const onErr = (err: Error) => done(err);
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onErr);
    onReadable();
  });
}
