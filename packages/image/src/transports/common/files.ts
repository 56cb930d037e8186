/**
 * Filesystem helpers shared by the on-disk transports: atomic writes (temp name + fsync + rename),
 * verified blob writes (hash while writing, rename only after the digest matched, unlink on any
 * failure), and size-capped reads of small JSON files.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream } from '../../digest/digest.js';
import { AbortedError, TooLargeError } from '../../errors.js';

export function tempName(dir: string, prefix = '.tmp-'): string {
  return join(dir, `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Writes `data` to `path` so that readers see either the old file or the whole new one. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempName(dirname(path));
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

export interface VerifiedWrite {
  digest: string;
  size: number;
}

/**
 * Streams `src` into a temp file in `dir`, verifying `expected` digest/size, then renames it to
 * `finalPath(digest)`. On any failure the temp file is removed and nothing appears.
 */
export async function writeVerifiedBlob(
  src: Readable,
  dir: string,
  finalPath: (digest: string) => string,
  opts: {
    digest?: string | undefined;
    size?: number | undefined;
    object: string;
    signal?: AbortSignal | undefined;
    onProgress?: ((n: number) => void) | undefined;
  },
): Promise<VerifiedWrite> {
  const tmp = tempName(dir);
  const verifier = new VerifyingStream({
    digest: opts.digest,
    size: opts.size,
    object: opts.object,
    onProgress: opts.onProgress,
  });
  try {
    await pipeline(
      src,
      verifier,
      createWriteStream(tmp, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 21 }),
      {
        signal: opts.signal,
      },
    );
    const r = verifier.result!;
    await rename(tmp, finalPath(r.digest));
    return r;
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (opts.signal?.aborted) throw new AbortedError(opts.object, { cause: opts.signal.reason });
    throw err;
  }
}

export async function readSmallFile(path: string, limit: number, object: string): Promise<Buffer> {
  const st = await stat(path);
  if (st.size > limit) throw new TooLargeError(object, limit);
  const buf = await readFile(path);
  if (buf.length > limit) throw new TooLargeError(object, limit);
  return buf;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
