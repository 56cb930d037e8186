/**
 * gzip inflate plus both sha256 passes of a layer pull (the compressed blob's digest and the
 * uncompressed diffID) in a worker thread, so the main thread only parses the tar and applies it.
 *
 * Why: applying a many-files layer is synchronous syscalls on the main thread (archive/apply.ts);
 * with the inflate (zlib on the libuv pool, but one main-thread round trip per write and per
 * output chunk) and `hash.update()` (synchronous) on the same thread, ~1.5 s of a 5.5 s pull of a
 * 670 MB / 47k-file layer was main-thread time that a second core could do meanwhile
 * (docs/decisions/performance.md).
 *
 * Data flow, no copy on the main thread beyond batching the input:
 *
 *   input chunks --copy into 1 MiB batches, transferred--> worker: sha256(input), gunzip,
 *   sha256(output), copy into 1 MiB buffers --transferred--> main: `output` Readable
 *
 * Back-pressure both ways: at most IN_FLIGHT input batches are not yet consumed by zlib (the input
 * is paused meanwhile), and at most OUT_CREDITS output buffers are sent but not yet wanted by the
 * output's reader (zlib's output is paused meanwhile). Memory per layer: ~8 MiB.
 *
 * Lifecycle: the worker ends itself after its last message; destroying `output`, an input error or
 * `signal` terminate it. `result` settles once the output has ended (digests) or failed. Corrupt
 * gzip data fails `output` (and `result`) with MalformedArchiveError, like the in-process path.
 *
 * The worker's code is a plain CommonJS string run with `eval: true`: it must load the same way
 * from sources (vitest, tsx) and from the bundled dist, and it needs only node: builtins.
 */
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { MalformedArchiveError } from '../errors.js';
import { lendChunk } from './chunk-loan.js';
import { INFLATE_CHUNK_SIZE, INFLATE_INPUT_BATCH } from './decompress.js';

export interface StreamDigest {
  /** `sha256:<hex>` */
  digest: string;
  size: number;
}

export interface InflateDigests {
  /** Of the bytes read from the input (the compressed blob). */
  input: StreamDigest;
  /** Of the uncompressed stream (a layer's diffID). */
  output: StreamDigest;
}

export interface WorkerGunzip {
  output: Readable;
  /** Settles after `output` ended or failed. Never rejects unhandled (a catch is attached). */
  result: Promise<InflateDigests>;
}

/** Input batches posted but not yet consumed by the worker's zlib. */
const IN_FLIGHT = 4;
/** Output buffers the worker may send ahead of the reader. */
const OUT_CREDITS = 4;
/** Output buffers: the tar reader's fast path wants whole small files inside one chunk. */
const OUT_CHUNK = INFLATE_CHUNK_SIZE;
/** Input batches: one zlib write each. */
const IN_BATCH = INFLATE_INPUT_BATCH;

type FromWorker =
  | { t: 'ack'; buf: ArrayBuffer }
  | { t: 'out'; buf: ArrayBuffer; len: number }
  | { t: 'done'; input: StreamDigest; output: StreamDigest }
  | { t: 'error'; code: string | undefined; message: string };

const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createGunzip } = require('node:zlib');
const CHUNK = workerData.chunk;
const inHash = createHash('sha256');
const outHash = createHash('sha256');
let inSize = 0;
let outSize = 0;
let credits = workerData.credits;
// output buffers returned by the main thread (chunk-loan.ts), reused before allocating
const pool = [];
let acc = new Uint8Array(CHUNK);
let accLen = 0;
let over = false;
const gz = createGunzip({ chunkSize: CHUNK });
function send() {
  if (accLen === 0) return;
  const buf = acc.buffer;
  parentPort.postMessage({ t: 'out', buf, len: accLen }, [buf]);
  credits--;
  const reuse = pool.pop();
  acc = reuse === undefined ? new Uint8Array(CHUNK) : new Uint8Array(reuse);
  accLen = 0;
}
function finish(msg) {
  if (over) return;
  over = true;
  parentPort.postMessage(msg);
  parentPort.close();
}
gz.on('data', (c) => {
  outHash.update(c);
  outSize += c.length;
  let off = 0;
  while (off < c.length) {
    const k = Math.min(c.length - off, CHUNK - accLen);
    acc.set(c.subarray(off, off + k), accLen);
    accLen += k;
    off += k;
    if (accLen === CHUNK) send();
  }
  if (credits <= 0) gz.pause();
});
gz.on('end', () => {
  send();
  finish({
    t: 'done',
    input: { digest: 'sha256:' + inHash.digest('hex'), size: inSize },
    output: { digest: 'sha256:' + outHash.digest('hex'), size: outSize },
  });
});
gz.on('error', (e) => finish({ t: 'error', code: e.code, message: e.message }));
parentPort.on('message', (m) => {
  if (over) return;
  if (m.t === 'in') {
    const b = Buffer.from(m.buf, 0, m.len);
    inHash.update(b);
    inSize += b.length;
    // zlib is done with the input when the write completes: the buffer goes back for reuse
    gz.write(b, () => parentPort.postMessage({ t: 'ack', buf: m.buf }, [m.buf]));
  } else if (m.t === 'end') {
    gz.end();
  } else if (m.t === 'credit') {
    if (m.free !== undefined) for (const f of m.free) pool.push(f);
    credits += m.n;
    if (credits > 0 && gz.isPaused()) gz.resume();
  }
});
`;

/**
 * Inflates the gzip stream `input` (every member) in a worker thread, hashing input and output
 * there. See the module comment for flow control and lifecycle.
 */
export function gunzipInWorker(input: Readable, signal?: AbortSignal): WorkerGunzip {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { chunk: OUT_CHUNK, credits: OUT_CREDITS },
    stdout: false,
    stderr: false,
  });
  let owed = 0;
  let ended = false;
  let settled = false;
  let resolveResult!: (d: InflateDigests) => void;
  let rejectResult!: (err: unknown) => void;
  const result = new Promise<InflateDigests>((res, rej) => {
    resolveResult = res;
    rejectResult = rej;
  });
  result.catch(() => undefined);

  // Output buffers the tar reader is done with (chunk-loan.ts) go back with the next credits.
  let freed: ArrayBuffer[] = [];
  const credit = (n: number) => {
    if (n === 0 && freed.length === 0) return;
    const free = freed;
    freed = [];
    worker.postMessage({ t: 'credit', n, free }, free);
  };
  const giveBack = (chunk: Buffer) => {
    if (settled) return; // the worker is gone or going: let the buffer be collected
    freed.push(chunk.buffer as ArrayBuffer);
    if (freed.length >= OUT_CREDITS) credit(0);
  };
  const output = new Readable({
    highWaterMark: OUT_CHUNK,
    read() {
      const n = owed;
      owed = 0;
      credit(n);
    },
    destroy(err, cb) {
      stop(err ?? new Error('inflated stream closed by its reader'));
      cb(err);
    },
  });

  const stop = (err: Error) => {
    if (!settled) {
      settled = true;
      rejectResult(err);
    }
    input.off('data', onData);
    input.off('end', onEnd);
    signal?.removeEventListener('abort', onAbort);
    if (!input.destroyed) input.destroy();
    void worker.terminate();
  };
  const fail = (err: Error) => {
    stop(err);
    if (!output.destroyed) output.destroy(err);
  };

  // --- input: batch into fresh 1 MiB buffers (they are transferred, so never shared views) ---
  // Batches come back with the worker's acks and are reused.
  const inPool: ArrayBuffer[] = [];
  let batch = new Uint8Array(IN_BATCH);
  let batchLen = 0;
  let inFlight = 0;
  const post = () => {
    if (batchLen === 0) return;
    const buf = batch.buffer;
    worker.postMessage({ t: 'in', buf, len: batchLen }, [buf]);
    inFlight++;
    const reuse = inPool.pop();
    batch = reuse === undefined ? new Uint8Array(IN_BATCH) : new Uint8Array(reuse);
    batchLen = 0;
  };
  const onData = (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) {
      const k = Math.min(chunk.length - off, batch.length - batchLen);
      batch.set(chunk.subarray(off, off + k), batchLen);
      batchLen += k;
      off += k;
      if (batchLen === batch.length) post();
    }
    if (inFlight >= IN_FLIGHT) input.pause();
  };
  const onEnd = () => {
    post();
    worker.postMessage({ t: 'end' });
  };
  const onAbort = () => fail(new MalformedArchiveError('aborted', { cause: signal?.reason }));

  worker.on('message', (m: FromWorker) => {
    if (settled) return;
    switch (m.t) {
      case 'ack':
        inPool.push(m.buf);
        inFlight--;
        if (inFlight < IN_FLIGHT && input.isPaused() && !input.readableEnded) input.resume();
        return;
      case 'out':
        if (output.push(lendChunk(Buffer.from(m.buf, 0, m.len), giveBack))) credit(1);
        else owed++;
        return;
      case 'done':
        ended = true;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolveResult({ input: m.input, output: m.output });
        output.push(null);
        return;
      case 'error':
        fail(
          new MalformedArchiveError(`gzip: ${m.message}`, {
            cause: Object.assign(new Error(m.message), { code: m.code }),
          }),
        );
        return;
    }
  });
  worker.on('error', (err) => fail(new MalformedArchiveError(`gzip worker: ${err.message}`, { cause: err })));
  worker.on('exit', () => {
    if (!ended) fail(new MalformedArchiveError('gzip worker exited early'));
  });
  input.on('error', (err) => fail(err));
  input.on('data', onData);
  input.on('end', onEnd);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return { output, result };
}
