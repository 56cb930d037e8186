/**
 * Streaming tar helpers for the archive transports (tar-stream parses; the checks are ours).
 *
 * Extraction accepts only regular files whose effective name (after PAX/GNU long names, which
 * tar-stream applies) is relative, has no `..`, `.` or empty component, is at most 4096 bytes, and
 * is accepted by the caller's filter; duplicates, links and devices are refused. Files are created
 * with O_EXCL inside a fresh directory the caller owns, so nothing can be written outside it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AbortedError, InvalidLayoutError } from '../../errors.js';

const MAX_ENTRIES = 1_000_000;
const MAX_NAME = 4096;

export function normalizeEntryName(raw: string): string | undefined {
  let n = raw;
  while (n.startsWith('./')) n = n.slice(2);
  if (n.endsWith('/')) n = n.slice(0, -1);
  if (!n || n.length > MAX_NAME || n.startsWith('/') || n.includes('\0')) return undefined;
  const parts = n.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  return n;
}

/**
 * Extracts the regular files of `tarPath` that `accept(name)` approves into `destDir`.
 * Returns the accepted names. Throws InvalidLayoutError on hostile or malformed archives.
 */
export async function extractTar(
  tarPath: string,
  destDir: string,
  accept: (name: string) => boolean,
  object: string,
  signal?: AbortSignal,
): Promise<Set<string>> {
  // Loaded on first use: only the archive transports need it (keeps registry-only users lean).
  const tar = await import('tar-stream');
  const extract = tar.extract();
  const seen = new Set<string>();
  let count = 0;
  const done = pipeline(createReadStream(tarPath), extract, { signal }).catch((err) => {
    if (signal?.aborted) throw new AbortedError(object, { cause: signal.reason });
    throw err instanceof InvalidLayoutError
      ? err
      : new InvalidLayoutError(object, 'not a valid tar archive', { cause: err });
  });
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (++count > MAX_ENTRIES) throw new InvalidLayoutError(object, 'too many entries');
      const name = normalizeEntryName(h.name);
      if (h.type === 'directory') {
        entry.resume();
        continue;
      }
      if (name === undefined)
        throw new InvalidLayoutError(object, `unsafe entry name ${JSON.stringify(h.name.slice(0, 200))}`);
      if (!accept(name)) {
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        throw new InvalidLayoutError(object, `entry ${name} is a ${h.type}, expected a regular file`);
      }
      if (seen.has(name)) throw new InvalidLayoutError(object, `duplicate entry ${name}`);
      seen.add(name);
      const target = join(destDir, name);
      await mkdir(dirname(target), { recursive: true });
      await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
    }
  } catch (err) {
    extract.destroy();
    await done.catch(() => {});
    throw err;
  }
  await done;
  return seen;
}

export interface TarInput {
  name: string;
  /** File to stream into the entry. */
  path?: string;
  data?: Uint8Array;
}

/** Writes `entries` in order as a tar stream to `outPath` (regular files, mode 0644, mtime 0). */
export async function writeTar(entries: TarInput[], outPath: string, signal?: AbortSignal): Promise<void> {
  const tar = await import('tar-stream');
  const pack = tar.pack();
  const out = pipeline(pack, createWriteStream(outPath, { flags: 'wx', mode: 0o644 }), { signal });
  try {
    const dirs = new Set<string>();
    for (const e of entries) {
      const parts = e.name.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!dirs.has(d)) {
          dirs.add(d);
          pack.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
        }
      }
      if (e.data) {
        pack.entry({ name: e.name, mode: 0o644, mtime: new Date(0) }, Buffer.from(e.data));
        continue;
      }
      const size = (await stat(e.path!)).size;
      const w = pack.entry({ name: e.name, size, mode: 0o644, mtime: new Date(0) });
      await pipeline(createReadStream(e.path!, { highWaterMark: 1 << 20 }), w, { signal });
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await out.catch(() => {});
    throw err;
  }
  await out;
}
