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
 * Lifecycle: one worker thread serves all streams of the process; it is started on first use,
 * does not keep the process alive while idle, and ends 2 s after its last stream. Destroying
 * `output`, an input error or `signal` cancel the stream (its zlib is destroyed in the worker).
 * `result` settles once the output has ended (digests) or failed. Corrupt gzip data fails
 * `output` (and `result`) with MalformedArchiveError, like the in-process path; a worker crash
 * fails every stream it was serving.
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
  | { id: number; t: 'ack'; buf: ArrayBuffer }
  | { id: number; t: 'out'; buf: ArrayBuffer; len: number }
  | { id: number; t: 'done'; input: StreamDigest; output: StreamDigest }
  | { id: number; t: 'error'; code: string | undefined; message: string };

/*
 * One worker serves every stream of the process (messages carry the stream's id): starting a
 * worker costs ~30-40 ms of CPU here, and a pull of an image with several large layers would
 * otherwise start one per layer. Output buffers are pooled across streams.
 */
const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createGunzip } = require('node:zlib');
const CHUNK = workerData.chunk;
// output buffers returned by the main thread (chunk-loan.ts), reused before allocating
const pool = [];
const streams = new Map();
function open(id) {
  const st = {
    id,
    inHash: createHash('sha256'),
    outHash: createHash('sha256'),
    inSize: 0,
    outSize: 0,
    credits: workerData.credits,
    acc: new Uint8Array(CHUNK),
    accLen: 0,
    gz: createGunzip({ chunkSize: CHUNK }),
  };
  streams.set(id, st);
  st.gz.on('data', (c) => {
    st.outHash.update(c);
    st.outSize += c.length;
    let off = 0;
    while (off < c.length) {
      const k = Math.min(c.length - off, CHUNK - st.accLen);
      st.acc.set(c.subarray(off, off + k), st.accLen);
      st.accLen += k;
      off += k;
      if (st.accLen === CHUNK) send(st);
    }
    if (st.credits <= 0) st.gz.pause();
  });
  st.gz.on('end', () => {
    send(st);
    finish(st, {
      id,
      t: 'done',
      input: { digest: 'sha256:' + st.inHash.digest('hex'), size: st.inSize },
      output: { digest: 'sha256:' + st.outHash.digest('hex'), size: st.outSize },
    });
  });
  st.gz.on('error', (e) => finish(st, { id, t: 'error', code: e.code, message: e.message }));
}
function send(st) {
  if (st.accLen === 0) return;
  const buf = st.acc.buffer;
  parentPort.postMessage({ id: st.id, t: 'out', buf, len: st.accLen }, [buf]);
  st.credits--;
  const reuse = pool.pop();
  st.acc = reuse === undefined ? new Uint8Array(CHUNK) : new Uint8Array(reuse);
  st.accLen = 0;
}
function finish(st, msg) {
  if (streams.get(st.id) !== st) return;
  streams.delete(st.id);
  pool.push(st.acc.buffer);
  parentPort.postMessage(msg);
}
parentPort.on('message', (m) => {
  if (m.free !== undefined) for (const f of m.free) pool.push(f);
  if (m.t === 'open') return open(m.id);
  const st = streams.get(m.id);
  if (st === undefined) return; // cancelled or failed: late messages are dropped
  if (m.t === 'in') {
    const b = Buffer.from(m.buf, 0, m.len);
    st.inHash.update(b);
    st.inSize += b.length;
    // zlib is done with the input when the write completes: the buffer goes back for reuse
    st.gz.write(b, () => parentPort.postMessage({ id: st.id, t: 'ack', buf: m.buf }, [m.buf]));
  } else if (m.t === 'end') {
    st.gz.end();
  } else if (m.t === 'credit') {
    st.credits += m.n;
    if (st.credits > 0 && st.gz.isPaused()) st.gz.resume();
  } else if (m.t === 'cancel') {
    streams.delete(m.id);
    st.gz.destroy();
  }
});
`;

type StreamHandler = (m: FromWorker) => void;

/** The shared worker: started on first use, unref'd and ended when no stream has used it for a while. */
class WorkerHost {
  private worker: Worker | undefined;
  private readonly streams = new Map<number, StreamHandler>();
  private nextId = 1;
  private idle: NodeJS.Timeout | undefined;
  /** Input batches returned by the worker, reused by every stream. */
  readonly inPool: ArrayBuffer[] = [];

  open(handler: StreamHandler): { id: number; post: (msg: object, transfer?: ArrayBuffer[]) => void } {
    clearTimeout(this.idle);
    this.idle = undefined;
    const w = this.worker ?? this.start();
    w.ref();
    const id = this.nextId++;
    this.streams.set(id, handler);
    w.postMessage({ id, t: 'open' });
    return {
      id,
      post: (msg, transfer) => {
        // a stream whose worker died (or was replaced) only drops its messages
        if (this.worker === w && this.streams.has(id)) w.postMessage({ id, ...msg }, transfer ?? []);
      },
    };
  }

  /** The stream is over (done, failed or cancelled): its late messages are ignored. */
  close(id: number, cancel: boolean): void {
    if (!this.streams.delete(id)) return;
    if (cancel) this.worker?.postMessage({ id, t: 'cancel' });
    if (this.streams.size > 0 || this.worker === undefined) return;
    // idle: do not keep the process alive; end the thread unless another stream comes soon
    const w = this.worker;
    w.unref();
    this.idle = setTimeout(() => {
      if (this.worker === w && this.streams.size === 0) {
        this.worker = undefined;
        void w.terminate();
      }
    }, IDLE_MS);
    this.idle.unref();
  }

  private start(): Worker {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { chunk: OUT_CHUNK, credits: OUT_CREDITS },
      stdout: false,
      stderr: false,
    });
    this.worker = w;
    w.on('message', (m: FromWorker) => this.streams.get(m.id)?.(m));
    const die = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const handlers = [...this.streams.entries()];
      this.streams.clear();
      for (const [id, h] of handlers) h({ id, t: 'error', code: undefined, message: err.message });
    };
    w.on('error', (err) => die(err));
    w.on('exit', () => die(new Error('gzip worker exited')));
    return w;
  }
}

/** How long the shared worker outlives its last stream. */
const IDLE_MS = 2000;
let host: WorkerHost | undefined;

/**
 * Inflates the gzip stream `input` (every member) in the shared worker thread, hashing input and
 * output there. See the module comment for flow control and lifecycle.
 */
export function gunzipInWorker(input: Readable, signal?: AbortSignal): WorkerGunzip {
  host ??= new WorkerHost();
  const h = host;
  let owed = 0;
  let settled = false;
  let resolveResult!: (d: InflateDigests) => void;
  let rejectResult!: (err: unknown) => void;
  const result = new Promise<InflateDigests>((res, rej) => {
    resolveResult = res;
    rejectResult = rej;
  });
  result.catch(() => undefined);

  const onMessage = (m: FromWorker) => {
    if (settled) return;
    switch (m.t) {
      case 'ack':
        h.inPool.push(m.buf);
        inFlight--;
        if (inFlight < IN_FLIGHT && input.isPaused() && !input.readableEnded) input.resume();
        return;
      case 'out':
        if (output.push(lendChunk(Buffer.from(m.buf, 0, m.len), giveBack))) credit(1);
        else owed++;
        return;
      case 'done':
        settled = true;
        h.close(stream.id, false);
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
  };
  const stream = h.open(onMessage);

  // Output buffers the tar reader is done with (chunk-loan.ts) go back with the next credits.
  let freed: ArrayBuffer[] = [];
  const credit = (n: number) => {
    if (n === 0 && freed.length === 0) return;
    const free = freed;
    freed = [];
    stream.post({ t: 'credit', n, free }, free);
  };
  const giveBack = (chunk: Buffer) => {
    if (settled) return; // the stream is over: let the buffer be collected
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
      h.close(stream.id, true);
      rejectResult(err);
    }
    input.off('data', onData);
    input.off('end', onEnd);
    signal?.removeEventListener('abort', onAbort);
    if (!input.destroyed) input.destroy();
  };
  const fail = (err: Error) => {
    stop(err);
    if (!output.destroyed) output.destroy(err);
  };

  // --- input: batched into 1 MiB buffers that are transferred (so never shared views) and come
  // back with the worker's acks for reuse ---
  const newBatch = () => {
    const reuse = h.inPool.pop();
    return reuse === undefined ? new Uint8Array(IN_BATCH) : new Uint8Array(reuse);
  };
  let batch = newBatch();
  let batchLen = 0;
  let inFlight = 0;
  const post = () => {
    if (batchLen === 0) return;
    const buf = batch.buffer as ArrayBuffer;
    stream.post({ t: 'in', buf, len: batchLen }, [buf]);
    inFlight++;
    batch = newBatch();
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
    stream.post({ t: 'end' });
  };
  const onAbort = () => fail(new MalformedArchiveError('aborted', { cause: signal?.reason }));

  input.on('error', (err) => fail(err));
  input.on('data', onData);
  input.on('end', onEnd);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return { output, result };
}
