/**
 * Digests (sha256/sha512) computed while data streams, and verification that fails the stream
 * before its end is signalled: a consumer that waits for the stream to finish without error has
 * received exactly the announced bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  DigestMismatchError,
  ImageError,
  InvalidManifestError,
  SizeMismatchError,
  TooLargeError,
} from '../errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LEN: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** Splits and validates `alg:hex`; throws ImageError ERR_INVALID_DIGEST for anything else. */
export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  if ((alg === 'sha256' || alg === 'sha512') && hex.length === HEX_LEN[alg] && /^[a-f0-9]+$/.test(hex)) {
    return { algorithm: alg, hex };
  }
  throw new ImageError(
    'ERR_INVALID_DIGEST',
    `invalid or unsupported digest ${JSON.stringify(digest.slice(0, 140))}`,
  );
}

export function isValidDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

export function digestBytes(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws DigestMismatchError unless `bytes` hash to `expected` (with `expected`'s algorithm). */
export function verifyBytes(bytes: Uint8Array, expected: string, object: string): void {
  const { algorithm } = parseDigest(expected);
  const actual = digestBytes(bytes, algorithm);
  if (actual !== expected) throw new DigestMismatchError({ object, expected, actual });
}

/** Incremental digester. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  bytes = 0;
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export interface VerifyOptions {
  /** Expected digest; when absent the stream only measures (read `result` after 'end'). */
  digest?: string | undefined;
  /** Expected size; -1/undefined = unknown. More bytes fail immediately, fewer at the end. */
  size?: number | undefined;
  /** Algorithm to compute when no digest is expected. */
  algorithm?: DigestAlgorithm;
  /** Object named in errors (e.g. `blob sha256:...`). */
  object: string;
  onProgress?: ((bytesDone: number) => void) | undefined;
}

/**
 * A pass-through Transform that hashes and counts. Errors with SizeMismatchError as soon as more
 * bytes than `size` arrive, and with SizeMismatchError/DigestMismatchError in flush, i.e. before
 * 'end'/'finish' is emitted downstream. `result` holds the computed digest and size after flush.
 */
export class VerifyingStream extends Transform {
  private readonly d: Digester;
  private readonly opts: VerifyOptions;
  result: { digest: string; size: number } | undefined;

  constructor(opts: VerifyOptions) {
    super();
    this.opts = opts;
    this.d = new Digester(opts.digest ? parseDigest(opts.digest).algorithm : (opts.algorithm ?? 'sha256'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.d.update(chunk);
    const { size } = this.opts;
    if (size !== undefined && size >= 0 && this.d.bytes > size) {
      cb(new SizeMismatchError({ object: this.opts.object, expected: size, actual: this.d.bytes }));
      return;
    }
    this.opts.onProgress?.(this.d.bytes);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { size, digest, object } = this.opts;
    if (size !== undefined && size >= 0 && this.d.bytes !== size) {
      cb(new SizeMismatchError({ object, expected: size, actual: this.d.bytes }));
      return;
    }
    const actual = this.d.digest();
    if (digest && actual !== digest) {
      cb(new DigestMismatchError({ object, expected: digest, actual }));
      return;
    }
    this.result = { digest: actual, size: this.d.bytes };
    cb();
  }
}

/** Reads a whole stream into memory, refusing more than `limit` bytes (manifests, configs, tokens). */
export async function readCapped(
  stream: AsyncIterable<Uint8Array>,
  limit: number,
  object: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > limit) {
      (stream as { destroy?: () => void }).destroy?.();
      throw new TooLargeError(object, limit);
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
  return Buffer.concat(chunks, total);
}

/** JSON.parse with a typed error. */
export function parseJson(bytes: Uint8Array, object: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw new InvalidManifestError(object, 'not valid JSON', { cause: err });
  }
}
