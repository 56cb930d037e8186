/**
 * Layer (de)compression as streams: gzip through node:zlib, zstd through the `zstd` executable
 * (Node 20's zlib has no zstd; see docs/DECISIONS.md). The child process is killed when the
 * stream is destroyed, and a non-zero exit fails the stream with CompressionError.
 */
import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { constants, createGzip } from 'node:zlib';
import { CompressionError } from '../errors.js';
import type { LayerCompression } from '../manifest/media-types.js';

export const ZSTD_BIN = 'zstd';

function zstdProcess(args: string[], object: string): Duplex {
  const child = spawn(ZSTD_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 2000) stderr += d;
  });
  const out = new PassThrough({ highWaterMark: 1 << 16 });
  let exited = false;
  let stdoutEnded = false;
  let exitCode: number | null = null;
  const maybeEnd = () => {
    if (!exited || !stdoutEnded) return;
    if (exitCode === 0) out.end();
    else
      out.destroy(
        new CompressionError(object, `zstd exited with ${exitCode}: ${stderr.trim().slice(0, 300)}`),
      );
  };
  child.stdout.on('data', (c: Buffer) => {
    if (!out.write(c)) {
      child.stdout.pause();
      out.once('drain', () => child.stdout.resume());
    }
  });
  child.stdout.on('end', () => {
    stdoutEnded = true;
    maybeEnd();
  });
  child.on('error', (err) =>
    duplex.destroy(new CompressionError(object, `cannot run ${ZSTD_BIN}`, { cause: err })),
  );
  child.on('exit', (code) => {
    exited = true;
    exitCode = code;
    maybeEnd();
  });
  child.stdin.on('error', () => {
    // EPIPE when zstd died first; the exit code reports the real failure.
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  duplex.on('close', () => {
    if (!exited) child.kill('SIGKILL');
  });
  out.on('error', (e) => duplex.destroy(e));
  return duplex;
}

/**
 * The stages that decompress `compression`, in pipeline order (identity for 'none'). gzip uses
 * storage's layer inflate path: an InflateInputBatcher (>= 1 MiB writes, one zlib thread-pool
 * round trip each) in front of createLayerGunzip (1 MiB output chunks). Storage is imported
 * here, not at module load, so copies that never decompress do not load its module graph.
 */
export async function decompressionStages(compression: LayerCompression, object: string): Promise<Duplex[]> {
  if (compression === 'gzip') {
    const { createLayerGunzip, InflateInputBatcher } = await import('@libpod-ts/storage');
    return [new InflateInputBatcher(), createLayerGunzip()];
  }
  if (compression === 'zstd') return [zstdProcess(['-d', '-c', '-q'], object)];
  return [new PassThrough({ highWaterMark: 1 << 16 })];
}

/** A stream that compresses to `compression` (identity for 'none'). `level` as in the tools. */
export function compressor(compression: LayerCompression, object: string, level?: number): Duplex {
  if (compression === 'gzip') {
    return createGzip({ level: level ?? constants.Z_DEFAULT_COMPRESSION, chunkSize: 1 << 16 });
  }
  if (compression === 'zstd') return zstdProcess(['-c', '-q', `-${level ?? 3}`, '-T0'], object);
  return new PassThrough({ highWaterMark: 1 << 16 });
}

/** Detects compression from the first bytes of a blob. */
export function detectCompression(head: Uint8Array): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}
