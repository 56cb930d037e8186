/**
 * A strict streaming tar reader (ustar, POSIX pax, GNU long names) for hostile layer archives.
 *
 * Why not tar-stream's extractor: it keeps parsing after the end-of-archive blocks, merges global
 * pax keys (including `path`) into later entries, and buffers extended headers before any cap we
 * could apply. Here every entry is decided from its EFFECTIVE header:
 *
 *   entry      = *( extended ) header body
 *   extended   = pax-local ('x') | pax-global ('g') | gnu-long-name ('L') | gnu-long-link ('K')
 *   header     = 512-byte ustar/gnu/v7 block with a valid checksum
 *   body       = size bytes, padded to 512
 *   end        = the first all-zero block: parsing stops there; the rest of the input is consumed
 *                unparsed (so a caller hashing the stream sees every byte)
 *
 * Precedence: pax-local `path`/`linkpath`/`size`/`uid`/`gid`/`mtime` > GNU long name/link > ustar
 * prefix+name. Global pax headers are parsed for validity and otherwise IGNORED (never applied as
 * paths). Numbers: octal or positive base-256; negative base-256 is malformed. Names must be valid
 * UTF-8. Extended headers are capped before they are buffered.
 */
import { LayerLimitError, MalformedArchiveError } from '../errors.js';
import { returnChunk } from './chunk-loan.js';

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** Effective path as written in the archive (not yet normalised). */
  name: string;
  type: EntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (fractional from pax). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** xattrs from `SCHILY.xattr.*` / `LIBARCHIVE.xattr.*` pax records. */
  xattrs: Map<string, Buffer> | undefined;
}

export interface TarReaderLimits {
  maxExtendedHeader: number;
  maxPathLength: number;
}

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class TarReader {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;
  private eof = false;
  /** Body bytes (incl. padding) of the current entry not yet consumed. */
  private pendingBody = 0;
  private pendingPad = 0;
  /**
   * Input chunks fully consumed but maybe still viewed (an extended header's data while its
   * padding is skipped; a body handed to the caller, valid until its next call into the reader).
   * They are returned to their lender (chunk-loan.ts) at the points where no view is alive: the
   * start of next()/nextBuffered(), after each readBody() callback, while skipping an unread body,
   * between extended headers, and while draining. So this holds a bounded number of chunks.
   */
  private spent: Buffer[] = [];
  /** Total bytes pulled from the source. */
  bytesIn = 0;

  constructor(
    source: AsyncIterable<Buffer | Uint8Array>,
    private readonly limits: TarReaderLimits,
  ) {
    this.it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    if (b.length > 0) {
      this.chunks.push(b);
      this.buffered += b.length;
      this.bytesIn += b.length;
    }
    return true;
  }

  /** Exactly n bytes (copied only when they span chunks). */
  private async take(n: number, what: string): Promise<Buffer> {
    while (this.buffered < n) {
      if (!(await this.fill())) throw new MalformedArchiveError(`truncated ${what}`);
    }
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(n - off, c.length - this.head);
      c.copy(out, off, this.head, this.head + k);
      off += k;
      this.advance(k);
    }
    return out;
  }

  private advance(n: number): void {
    this.buffered -= n;
    this.head += n;
    while (this.chunks.length > 0 && this.head >= this.chunks[0]!.length) {
      this.head -= this.chunks[0]!.length;
      this.spent.push(this.chunks.shift()!);
    }
  }

  /**
   * Entry boundary: every view this reader handed out for earlier entries is dead by contract
   * (header and extended-header views are parsed into copies before next() returns; bodies are
   * only valid until the next call into the reader), so consumed chunks can go back.
   */
  private returnSpent(): void {
    if (this.spent.length === 0) return;
    for (const c of this.spent) returnChunk(c);
    this.spent = [];
  }

  /**
   * Skips n bytes. `noViews`: no view handed out by this reader is alive (so a long skip returns
   * lent chunks as it goes instead of holding them all).
   */
  private async skip(n: number, what: string, noViews = false): Promise<void> {
    while (n > 0) {
      if (this.buffered === 0 && !(await this.fill())) throw new MalformedArchiveError(`truncated ${what}`);
      const k = Math.min(n, this.buffered);
      this.advance(k);
      n -= k;
      if (noViews) this.returnSpent();
    }
  }

  /**
   * Stream the current entry's body to `onChunk` (chunks are only valid during the call; a
   * returned promise is awaited before the next chunk). Skips whatever the caller does not read.
   */
  async readBody(onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    while (this.pendingBody > 0) {
      if (this.buffered === 0 && !(await this.fill())) throw new MalformedArchiveError('truncated file body');
      const c = this.chunks[0]!;
      const k = Math.min(this.pendingBody, c.length - this.head);
      const slice = c.subarray(this.head, this.head + k);
      this.advance(k);
      this.pendingBody -= k;
      const r = onChunk(slice);
      if (r) await r;
      // the slice was only valid during onChunk: a body of any size holds no chunks
      this.returnSpent();
    }
  }

  /**
   * The current entry's whole body when it is already buffered in one chunk (a view, valid until
   * the next call into the reader), consuming it; otherwise undefined and nothing is consumed.
   * Lets small files be written with one write and no await.
   */
  takeBufferedBody(): Buffer | undefined {
    const n = this.pendingBody;
    if (n === 0) return EMPTY;
    const c = this.chunks[0];
    if (c === undefined || c.length - this.head < n) return undefined;
    const body = c.subarray(this.head, this.head + n);
    this.advance(n);
    this.pendingBody = 0;
    return body;
  }

  /**
   * The next entry when it can be decided from buffered input alone: a plain header (no extended
   * header before it, not the end-of-archive block) whose skipped body and header are already
   * buffered. Otherwise undefined, with nothing parsed, and next() must be awaited. The checks
   * are the same as next()'s (same decodeHeader); this only saves promises per entry.
   */
  nextBuffered(): TarEntry | undefined {
    this.returnSpent();
    const skip = this.pendingBody + this.pendingPad;
    if (this.buffered < skip + BLOCK) return undefined;
    if (skip > 0) {
      this.advance(skip);
      this.pendingBody = 0;
      this.pendingPad = 0;
    }
    const c = this.chunks[0]!;
    if (c.length - this.head < BLOCK) return undefined;
    const hdr = c.subarray(this.head, this.head + BLOCK);
    if (isZero(hdr)) return undefined;
    verifyChecksum(hdr);
    const flag = String.fromCharCode(hdr[156]!);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') return undefined;
    const size = parseNumber(hdr, 124, 12, 'size');
    const entry = this.decodeHeader(hdr, flag, size, undefined, undefined, undefined);
    this.advance(BLOCK);
    this.pendingBody = hasBody(entry.type) ? entry.size : 0;
    this.pendingPad = hasBody(entry.type) ? pad(entry.size) : entry.size + pad(entry.size);
    return entry;
  }

  /** The next entry, or null at end-of-archive (the remaining input is then drained unparsed). */
  async next(): Promise<TarEntry | null> {
    this.returnSpent();
    if (this.pendingBody > 0) await this.skip(this.pendingBody, 'file body', true);
    this.pendingBody = 0;
    if (this.pendingPad > 0) await this.skip(this.pendingPad, 'padding', true);
    this.pendingPad = 0;

    let pax: Map<string, Buffer> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      // the previous extended header's data (a view) has been parsed into copies
      this.returnSpent();
      if (this.buffered < BLOCK && this.eof) {
        if (this.buffered === 0 && !pax && longName === undefined && longLink === undefined) {
          // A tar without end-of-archive blocks: accepted (many writers omit them), like GNU tar.
          return null;
        }
      }
      const hdr = await this.take(BLOCK, 'header');
      if (isZero(hdr)) {
        if (pax || longName !== undefined || longLink !== undefined) {
          throw new MalformedArchiveError('extended header not followed by an entry');
        }
        await this.drain();
        return null;
      }
      verifyChecksum(hdr);
      const flag = String.fromCharCode(hdr[156]!);
      const size = parseNumber(hdr, 124, 12, 'size');
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > this.limits.maxExtendedHeader) {
          throw new LayerLimitError('extended header size', this.limits.maxExtendedHeader, `${size} bytes`);
        }
        const data = await this.take(size, 'extended header');
        await this.skip(pad(size), 'padding');
        if (flag === 'x') pax = parsePax(data);
        else if (flag === 'g')
          parsePax(data); // validated, never applied
        else if (flag === 'L') longName = decodeName(cstr(data), 'GNU long name');
        else longLink = decodeName(cstr(data), 'GNU long link');
        continue;
      }
      const entry = this.decodeHeader(hdr, flag, size, pax, longName, longLink);
      this.pendingBody = hasBody(entry.type) ? entry.size : 0;
      this.pendingPad = hasBody(entry.type) ? pad(entry.size) : 0;
      // Hardlinks, symlinks, dirs carry no data even if a size is set (GNU tar ignores it too),
      // but the bytes are still in the stream when the header claims them: skip them.
      if (!hasBody(entry.type)) this.pendingPad = entry.size + pad(entry.size);
      return entry;
    }
  }

  private decodeHeader(
    hdr: Buffer,
    flag: string,
    headerSize: number,
    pax: Map<string, Buffer> | undefined,
    longName: string | undefined,
    longLink: string | undefined,
  ): TarEntry {
    const magic = hdr.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    let name = decodeName(cstr(hdr.subarray(0, 100)), 'name');
    if (ustar) {
      const prefix = decodeName(cstr(hdr.subarray(345, 500)), 'prefix');
      if (prefix !== '') name = prefix + '/' + name;
    }
    let linkname = decodeName(cstr(hdr.subarray(157, 257)), 'linkname');
    if (longName !== undefined) name = longName;
    if (longLink !== undefined) linkname = longLink;
    let size = headerSize;
    let uid = parseNumber(hdr, 108, 8, 'uid');
    let gid = parseNumber(hdr, 116, 8, 'gid');
    let mtime = parseNumber(hdr, 136, 12, 'mtime');
    let xattrs: Map<string, Buffer> | undefined;
    if (pax) {
      for (const [k, v] of pax) {
        switch (k) {
          case 'path':
            name = decodeName(v, 'pax path');
            break;
          case 'linkpath':
            linkname = decodeName(v, 'pax linkpath');
            break;
          case 'size':
            size = paxInt(v, 'size');
            break;
          case 'uid':
            uid = paxInt(v, 'uid');
            break;
          case 'gid':
            gid = paxInt(v, 'gid');
            break;
          case 'mtime':
            mtime = paxTime(v);
            break;
          default:
            if (k.startsWith('SCHILY.xattr.')) {
              xattrs ??= new Map();
              xattrs.set(k.slice('SCHILY.xattr.'.length), v);
            } else if (k.startsWith('LIBARCHIVE.xattr.')) {
              xattrs ??= new Map();
              xattrs.set(
                decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)),
                Buffer.from(v.toString('latin1'), 'base64'),
              );
            } else if (k.startsWith('GNU.sparse.')) {
              throw new MalformedArchiveError(`sparse files are not supported (${name})`);
            }
        }
      }
    }
    if (Buffer.byteLength(name) > this.limits.maxPathLength) {
      throw new LayerLimitError('path length', this.limits.maxPathLength, name.slice(0, 64) + '...');
    }
    if (Buffer.byteLength(linkname) > this.limits.maxPathLength) {
      throw new LayerLimitError('link target length', this.limits.maxPathLength, name);
    }
    if (name.includes('\0') || linkname.includes('\0'))
      throw new MalformedArchiveError(`NUL in name of ${name}`);
    const type = entryType(flag, name);
    return {
      name,
      type,
      size,
      mode: parseNumber(hdr, 100, 8, 'mode') & 0o7777,
      uid,
      gid,
      mtime,
      linkname,
      devmajor: type === 'char' || type === 'block' ? parseNumber(hdr, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? parseNumber(hdr, 337, 8, 'devminor') : 0,
      xattrs,
    };
  }

  /** Stop reading: destroys a stream source (used when the apply fails). */
  async close(): Promise<void> {
    await this.it.return?.();
  }

  /** Consume the rest of the input without parsing it. */
  async drain(): Promise<void> {
    // nothing after the end-of-archive block is parsed, so no view of these chunks exists
    this.returnSpent();
    for (const c of this.chunks) returnChunk(c);
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    while (await this.fill()) {
      for (const c of this.chunks) returnChunk(c);
      this.chunks = [];
      this.buffered = 0;
    }
  }
}

function hasBody(t: EntryType): boolean {
  return t === 'file';
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function cstr(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i === -1 ? b : b.subarray(0, i);
}

function decodeName(b: Buffer, what: string): string {
  try {
    return utf8.decode(b);
  } catch (cause) {
    throw new MalformedArchiveError(`${what} is not valid UTF-8: ${b.toString('latin1')}`, { cause });
  }
}

function verifyChecksum(hdr: Buffer): void {
  const stored = parseNumber(hdr, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : hdr[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw new MalformedArchiveError('header checksum mismatch');
}

function parseNumber(hdr: Buffer, off: number, len: number, what: string): number {
  const first = hdr[off]!;
  if (first & 0x80) {
    // base-256: two's complement, big endian; 0xff lead = negative
    if (first === 0xff) throw new MalformedArchiveError(`negative ${what}`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + hdr[off + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw new MalformedArchiveError(`${what} too large`);
    }
    return v;
  }
  let v = 0;
  let i = off;
  const end = off + len;
  while (i < end && (hdr[i] === 0x20 || hdr[i] === 0)) i++;
  if (i === end) return 0;
  for (; i < end; i++) {
    const c = hdr[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new MalformedArchiveError(`invalid octal ${what}`);
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // some writers pad with NULs
    const sp = data.indexOf(0x20, i);
    if (sp === -1) throw new MalformedArchiveError('pax record without length');
    const lenStr = data.toString('latin1', i, sp);
    if (!/^[0-9]{1,10}$/.test(lenStr)) throw new MalformedArchiveError('pax record length');
    const len = Number(lenStr);
    const end = i + len;
    if (len < 5 || end > data.length || data[end - 1] !== 0x0a) throw new MalformedArchiveError('pax record');
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new MalformedArchiveError('pax record without key');
    const key = decodeName(rec.subarray(0, eq), 'pax key');
    out.set(key, Buffer.from(rec.subarray(eq + 1)));
    i = end;
  }
  return out;
}

function paxInt(v: Buffer, what: string): number {
  const s = v.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(s))
    throw new MalformedArchiveError(`pax ${what} ${JSON.stringify(s.slice(0, 32))}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new MalformedArchiveError(`pax ${what} too large`);
  return n;
}

function paxTime(v: Buffer): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]{1,16}(\.[0-9]{0,9})?$/.test(s)) throw new MalformedArchiveError('pax mtime');
  return Number(s);
}

function entryType(flag: string, name: string): EntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      // v7: a regular entry whose name ends in / is a directory
      return flag === '\0' && name.endsWith('/') ? 'dir' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      throw new MalformedArchiveError(`unsupported entry type ${JSON.stringify(flag)} for ${name}`);
  }
}
