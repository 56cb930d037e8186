/**
 * An optional pull interface on blob streams: `stream[kReadInto](buf)` copies the next bytes
 * into `buf` and resolves with their count once `buf` is full or the stream ended (0: nothing
 * left). A writer that finds it reads into two reused buffers instead of receiving one new
 * Buffer per chunk (see registry/raw-blob.ts for why that matters). Streams that have it are
 * still ordinary Readables; a consumer uses one interface or the other, not both.
 */
import type { Readable } from 'node:stream';

export const kReadInto = Symbol('libpod-ts.readInto');

export type ReadInto = (buf: Buffer) => Promise<number>;

export function readIntoOf(stream: Readable): ReadInto | undefined {
  return (stream as Readable & { [kReadInto]?: ReadInto })[kReadInto];
}

/** readInto over any Readable (read()/unshift()), for bodies that have no pull interface. */
export function readIntoFromReadable(r: Readable, buf: Buffer): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let filled = 0;
    const cleanup = () => {
      r.off('readable', pump);
      r.off('end', onEnd);
      r.off('error', onError);
      r.off('close', onClose);
    };
    const onEnd = () => {
      cleanup();
      resolve(filled);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      if (r.readableEnded) resolve(filled);
      else reject(r.errored ?? Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    const pump = () => {
      for (;;) {
        const chunk = r.read() as Buffer | null;
        if (chunk === null) return;
        const k = Math.min(chunk.length, buf.length - filled);
        chunk.copy(buf, filled, 0, k);
        filled += k;
        if (k < chunk.length) r.unshift(chunk.subarray(k));
        if (filled === buf.length) {
          cleanup();
          resolve(filled);
          return;
        }
      }
    };
    if (r.errored) return reject(r.errored);
    if (r.readableEnded) return resolve(0);
    r.on('readable', pump);
    r.on('end', onEnd);
    r.on('error', onError);
    r.on('close', onClose);
    pump();
  });
}
