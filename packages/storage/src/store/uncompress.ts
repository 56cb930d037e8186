/**
 * The store's entry to decompression: gzip is inflated here with archive/decompress.ts's fast
 * path (createLayerGunzip: 1 MiB output chunks) piped directly, without decompress()'s
 * generator hop; zstd and plain tar go through decompress(). Detection is by content, as there.
 */
import { PassThrough, type Readable } from 'node:stream';
import {
  createLayerGunzip,
  decompress,
  detectCompression,
  InflateInputBatcher,
} from '../archive/decompress.js';
import { MalformedArchiveError } from '../errors.js';

export async function uncompressed(input: Readable, signal?: AbortSignal): Promise<Readable> {
  const head = await readHead(input, 4);
  if (head.length > 0) input.unshift(head);
  if (detectCompression(head) !== 'gzip') return decompress(input, { signal });
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

function readHead(input: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    const done = (err?: Error) => {
      input.off('readable', onReadable);
      input.off('end', onEnd);
      input.off('error', onErr);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
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
    const onEnd = () => done();
    const onErr = (err: Error) => done(err);
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onErr);
    onReadable();
  });
}
