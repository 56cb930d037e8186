/**
 * Tar-split: what it takes to rebuild a layer's uncompressed tar byte for byte from the files on
 * disk, so a layer pulled into the store can be exported again with its original diffID (the
 * image's config lists diffIDs; a regenerated tar would hash differently).
 *
 * While a layer is applied, the store feeds every uncompressed byte to a SplitRecorder, which
 * keeps the tar's headers, extended headers, padding and trailer verbatim, and for each regular
 * file body only its path and length. Format of `<root>/tarsplit/<layerId>` (gzip):
 *
 *   record = 'R' u32be(len) bytes           raw bytes of the stream
 *          | 'F' u64be(size) u16be(len) path  `size` bytes of content from the layer's file `path`
 *
 * Paths are the entries' effective names (pax `path` > GNU long name > ustar prefix/name; global
 * pax headers are ignored, as the extractor does), normalised inside the layer. Rebuilding reads
 * each file through resolveInRoot + O_NOFOLLOW inside the layer's own directory (the overlay
 * upper dir, or the vfs tree). When a file was changed after extraction (or a tar wrote one path
 * twice), the rebuilt bytes differ and the caller's digest check fails: never a silent mismatch.
 */
import { once } from 'node:events';
import { createReadStream, constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { type WriteStream, createWriteStream } from 'node:fs';
import { entryRelPath } from '../archive/apply.js';
import { MalformedArchiveError } from '../errors.js';
import { resolveInRoot } from '../fs/resolve-in-root.js';

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const MAX_META = 1 << 20;
/** Records are flushed to zlib in writes of this size. */
const BATCH = 1 << 18;

function parseNum(h: Buffer, off: number, len: number): number {
  if (h[off]! & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + h[i]!;
    return n;
  }
  const s = h
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/, '')
    .trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

function parsePaxPathSize(data: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('latin1', i, sp), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) {
      const k = rec.toString('utf8', 0, eq);
      const v = rec.subarray(eq + 1);
      if (k === 'path') out.path = v.toString('utf8');
      if (k === 'size') out.size = Number.parseInt(v.toString('latin1'), 10);
    }
    i += len;
  }
  return out;
}

type State =
  | { s: 'header' }
  | { s: 'meta'; flag: string; left: number; pad: number; buf: Buffer[] }
  | { s: 'body'; left: number; pad: number }
  | { s: 'raw'; left: number }
  | { s: 'trailer' };

/**
 * Consumes the uncompressed stream (synchronously, chunk by chunk) and writes the split file.
 * It keeps no reference to the chunks it is given: bytes it records are copied into its own
 * batch (the chunks may be recycled by their producer once the tar reader is done with them).
 */
export class SplitRecorder {
  private readonly gz: Gzip;
  private readonly out: WriteStream;
  private readonly done: Promise<void>;
  private state: State = { s: 'header' };
  /** A header that spans input chunks, copied. */
  private hdr = Buffer.alloc(BLOCK);
  private hdrLen = 0;
  private paxPath: string | undefined;
  private paxSize: number | undefined;
  private longName: string | undefined;
  // Records are written into one batch, flushed to zlib in large writes (one zlib write per
  // record would cost more than the parse). An open 'R' record's length is patched on close.
  private batch = Buffer.allocUnsafe(BATCH);
  private batchLen = 0;
  /** Offset of the open 'R' record's header in `batch`, or -1. */
  private rawAt = -1;

  constructor(path: string) {
    this.gz = createGzip({ level: 1 });
    const out = createWriteStream(path, { mode: 0o600 });
    this.out = out;
    this.gz.pipe(out);
    this.done = once(out, 'close').then(() => undefined);
    out.on('error', (err) => this.gz.destroy(err));
    this.gz.on('error', (err) => out.destroy(err));
  }

  private flushOut(): void {
    this.closeRaw();
    if (this.batchLen === 0) return;
    // zlib keeps the buffer until it has read it: hand it over and start a new one
    this.gz.write(this.batch.subarray(0, this.batchLen));
    this.batch = Buffer.allocUnsafe(BATCH);
    this.batchLen = 0;
  }

  private closeRaw(): void {
    if (this.rawAt < 0) return;
    const len = this.batchLen - this.rawAt - 5;
    if (len === 0)
      this.batchLen = this.rawAt; // nothing was added: drop the header
    else this.batch.writeUInt32BE(len, this.rawAt + 1);
    this.rawAt = -1;
  }

  private emitRaw(b: Buffer): void {
    let off = 0;
    while (off < b.length) {
      if (this.rawAt < 0) {
        if (this.batchLen + 5 >= BATCH) this.flushOut();
        this.rawAt = this.batchLen;
        this.batch[this.batchLen] = 0x52; // 'R'
        this.batchLen += 5;
      }
      const k = Math.min(b.length - off, BATCH - this.batchLen);
      b.copy(this.batch, this.batchLen, off, off + k);
      this.batchLen += k;
      off += k;
      if (this.batchLen === BATCH) this.flushOut();
    }
  }

  private emitFile(path: string, size: number): void {
    this.closeRaw();
    const plen = Buffer.byteLength(path, 'utf8');
    if (this.batchLen + 11 + plen > BATCH) this.flushOut();
    const at = this.batchLen;
    this.batch[at] = 0x46; // 'F'
    this.batch.writeBigUInt64BE(BigInt(size), at + 1);
    this.batch.writeUInt16BE(plen, at + 9);
    this.batch.write(path, at + 11, 'utf8');
    this.batchLen = at + 11 + plen;
  }

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const st = this.state;
      if (st.s === 'trailer') {
        this.emitRaw(chunk.subarray(off));
        return;
      }
      if (st.s === 'header') {
        if (this.hdrLen === 0 && chunk.length - off >= BLOCK) {
          // the whole header is in this chunk: no copy (onHeader copies what it records)
          this.onHeader(chunk.subarray(off, off + BLOCK));
          off += BLOCK;
          continue;
        }
        const k = Math.min(BLOCK - this.hdrLen, chunk.length - off);
        chunk.copy(this.hdr, this.hdrLen, off, off + k);
        this.hdrLen += k;
        off += k;
        if (this.hdrLen < BLOCK) return;
        this.hdrLen = 0;
        this.onHeader(this.hdr);
        continue;
      }
      const take = Math.min(st.s === 'body' ? st.left : st.left, chunk.length - off);
      const part = chunk.subarray(off, off + take);
      off += take;
      if (st.s === 'raw') {
        this.emitRaw(part);
        st.left -= take;
        if (st.left === 0) this.state = { s: 'header' };
      } else if (st.s === 'meta') {
        this.emitRaw(part);
        if (st.buf.reduce((a, b) => a + b.length, 0) < MAX_META) st.buf.push(Buffer.from(part));
        st.left -= take;
        if (st.left === 0) {
          const data = Buffer.concat(st.buf);
          if (st.flag === 'x') {
            const r = parsePaxPathSize(data);
            if (r.path !== undefined) this.paxPath = r.path;
            if (r.size !== undefined) this.paxSize = r.size;
          } else if (st.flag === 'L') this.longName = cstr(data);
          this.state = st.pad > 0 ? { s: 'raw', left: st.pad } : { s: 'header' };
        }
      } else {
        // File content is not kept: the layer's file holds it.
        st.left -= take;
        if (st.left === 0) this.state = st.pad > 0 ? { s: 'raw', left: st.pad } : { s: 'header' };
      }
    }
  }

  private onHeader(h: Buffer): void {
    this.emitRaw(h);
    if (h.equals(ZERO_BLOCK)) {
      this.state = { s: 'trailer' };
      return;
    }
    const flag = String.fromCharCode(h[156]!);
    const hdrSize = parseNum(h, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      this.state =
        hdrSize > 0 ? { s: 'meta', flag, left: hdrSize, pad: pad(hdrSize), buf: [] } : { s: 'header' };
      return;
    }
    let name = cstr(h.subarray(0, 100));
    if (h.toString('latin1', 257, 263) === 'ustar\0') {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    if (this.longName !== undefined) name = this.longName;
    if (this.paxPath !== undefined) name = this.paxPath;
    const size = this.paxSize ?? hdrSize;
    this.paxPath = this.paxSize = this.longName = undefined;
    const regular = flag === '0' || flag === '\0' || flag === '7';
    if (regular && size > 0) {
      let rel: string;
      try {
        rel = entryRelPath(name);
      } catch {
        rel = '';
      }
      this.emitFile(rel, size);
      this.state = { s: 'body', left: size, pad: pad(size) };
      return;
    }
    this.state = size + pad(size) > 0 ? { s: 'raw', left: size + pad(size) } : { s: 'header' };
  }

  /** Flush and close the file. */
  async finish(): Promise<void> {
    this.flushOut();
    this.gz.end();
    await this.done;
  }

  /** Stop writing (the layer failed); the caller removes the file. */
  async abort(): Promise<void> {
    this.gz.destroy();
    this.out.destroy();
    await this.done.catch(() => undefined);
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** Rebuild the layer's uncompressed tar from its split file and the files under `layerDir`. */
export function rebuildTar(splitPath: string, layerDir: string): Readable {
  return Readable.from(rebuild(splitPath, layerDir));
}

async function* rebuild(splitPath: string, layerDir: string): AsyncGenerator<Buffer> {
  const input = createReadStream(splitPath).pipe(createGunzip());
  let buf: Buffer = Buffer.alloc(0);
  const it = input[Symbol.asyncIterator]();
  let ended = false;
  const need = async (n: number): Promise<boolean> => {
    while (buf.length < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else buf = buf.length ? Buffer.concat([buf, r.value as Buffer]) : (r.value as Buffer);
    }
    return buf.length >= n;
  };
  try {
    for (;;) {
      if (!(await need(1))) return;
      const kind = String.fromCharCode(buf[0]!);
      if (kind === 'R') {
        if (!(await need(5))) throw new MalformedArchiveError(`tar-split ${splitPath} truncated`);
        const len = buf.readUInt32BE(1);
        if (!(await need(5 + len))) throw new MalformedArchiveError(`tar-split ${splitPath} truncated`);
        yield buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
      } else if (kind === 'F') {
        if (!(await need(11))) throw new MalformedArchiveError(`tar-split ${splitPath} truncated`);
        const size = Number(buf.readBigUInt64BE(1));
        const plen = buf.readUInt16BE(9);
        if (!(await need(11 + plen))) throw new MalformedArchiveError(`tar-split ${splitPath} truncated`);
        const rel = buf.toString('utf8', 11, 11 + plen);
        buf = buf.subarray(11 + plen);
        yield* fileContent(layerDir, rel, size);
      } else {
        throw new MalformedArchiveError(`tar-split ${splitPath}: bad record ${kind}`);
      }
    }
  } finally {
    input.destroy();
  }
}

async function* fileContent(layerDir: string, rel: string, size: number): AsyncGenerator<Buffer> {
  const p = await resolveInRoot(layerDir, rel, { followFinal: false });
  const fh = await open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    let left = size;
    const chunk = Buffer.allocUnsafe(Math.min(size, 1 << 20));
    while (left > 0) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, left), null);
      if (bytesRead === 0) throw new MalformedArchiveError(`layer file ${rel} is shorter than in its tar`);
      left -= bytesRead;
      yield Buffer.from(chunk.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}
