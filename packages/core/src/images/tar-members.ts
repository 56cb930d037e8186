/**
 * Reads small top-level members (`manifest.json`, `index.json`) of an uncompressed tar archive
 * in place, to learn which images an archive holds before copying them out with
 * `@libpod-ts/image` (whose archive transports open one image at a time and list none).
 *
 * Only headers are read (one 512-byte read per entry; member data is skipped by offset), so a
 * multi-GiB archive costs as many reads as it has entries. Grammar handled: ustar/GNU/PAX
 * headers (PAX `path` and `size`, GNU long names `L`), base-256 sizes, two zero blocks or EOF
 * as the end. Every header's checksum is verified: a file that is not a tar fails at its first
 * block, not after guessing.
 */
import { open } from 'node:fs/promises';
import { ImageArchiveError } from './errors.js';

const BLOCK = 512;
const MAX_ENTRIES = 1_000_000;
const MAX_EXTENDED_HEADER = 1 << 20;

function cstring(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return (nul >= 0 ? s.subarray(0, nul) : s).toString('utf8');
}

function parseSize(b: Buffer, path: string): number {
  const f = b.subarray(124, 136);
  if ((f[0]! & 0x80) !== 0) {
    // base-256 (GNU): big-endian, first byte's top bit is the marker
    let n = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    if (!Number.isSafeInteger(n)) throw new ImageArchiveError(path, 'tar entry size out of range');
    return n;
  }
  const s = cstring(f, 0, 12).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ImageArchiveError(path, 'not a tar archive (bad size field)');
  return Number.parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = cstring(b, 148, 8).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  return sum === Number.parseInt(stored, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

function normalise(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  return n;
}

/**
 * The contents of the regular-file members of `path` named in `wanted` (top level, `./` allowed),
 * each at most `maxSize` bytes. Every header is read: a wanted name present twice is refused
 * (the image package's extraction refuses such archives too, so what we list is what it reads).
 */
export async function readTarMembers(
  path: string,
  wanted: readonly string[],
  maxSize: number,
  signal?: AbortSignal,
): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new ImageArchiveError(path, (err as Error).message, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    let longName: string | undefined;
    let pax: Record<string, string> = {};
    for (let entries = 0; offset + BLOCK <= size; entries++) {
      signal?.throwIfAborted();
      if (entries > MAX_ENTRIES) throw new ImageArchiveError(path, 'too many tar entries');
      const { bytesRead } = await fh.read(header, 0, BLOCK, offset);
      if (bytesRead < BLOCK) break;
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) {
        throw new ImageArchiveError(
          path,
          offset === 0 ? 'not a tar archive (compressed archives are not supported)' : 'corrupt tar header',
        );
      }
      const type = String.fromCharCode(header[156]!);
      let entrySize = parseSize(header, path);
      if (pax.size !== undefined && /^\d+$/.test(pax.size)) entrySize = Number(pax.size);
      const dataStart = offset + BLOCK;
      const next = dataStart + Math.ceil(entrySize / BLOCK) * BLOCK;
      if (type === 'x' || type === 'L') {
        if (entrySize > MAX_EXTENDED_HEADER)
          throw new ImageArchiveError(path, 'tar extended header too large');
        const data = Buffer.alloc(entrySize);
        await fh.read(data, 0, entrySize, dataStart);
        if (type === 'x') pax = parsePax(data);
        else longName = cstring(data, 0, data.length);
        offset = next;
        continue;
      }
      const ustar = cstring(header, 257, 6).startsWith('ustar');
      const prefix = ustar ? cstring(header, 345, 155) : '';
      const raw =
        pax.path ?? longName ?? (prefix ? `${prefix}/${cstring(header, 0, 100)}` : cstring(header, 0, 100));
      pax = {};
      longName = undefined;
      const name = normalise(raw);
      if ((type === '0' || type === '\0') && wanted.includes(name)) {
        if (found.has(name)) throw new ImageArchiveError(path, `duplicate member ${name}`);
        if (entrySize > maxSize) throw new ImageArchiveError(path, `${name} is larger than ${maxSize} bytes`);
        if (dataStart + entrySize > size) throw new ImageArchiveError(path, `${name} is truncated`);
        const data = Buffer.alloc(entrySize);
        await fh.read(data, 0, entrySize, dataStart);
        found.set(name, data);
      }
      offset = next;
    }
    return found;
  } finally {
    await fh.close();
  }
}
