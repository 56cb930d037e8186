/**
 * Test support: a raw tar writer that can produce anything, including what a well-behaved writer
 * refuses to (global pax paths, entries after end-of-archive, bad checksums, base-256 negatives).
 * Built with tar-stream's header encoder where possible; raw fields where the test needs control.
 */
import { gzipSync } from 'node:zlib';

export interface RawEntry {
  name: string;
  type?:
    | 'file'
    | 'dir'
    | 'symlink'
    | 'hardlink'
    | 'char'
    | 'block'
    | 'fifo'
    | 'pax'
    | 'global'
    | 'longname'
    | 'raw';
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** pax records to emit in a local 'x' header before this entry */
  pax?: Record<string, string | Buffer>;
  /** override the size field (raw octal string or base-256 bytes) */
  sizeField?: Buffer;
  /** corrupt the checksum */
  badChecksum?: boolean;
  /** declared size (differs from body length for hostile cases) */
  size?: number;
}

const FLAG: Record<string, string> = {
  file: '0',
  dir: '5',
  symlink: '2',
  hardlink: '1',
  char: '3',
  block: '4',
  fifo: '6',
  pax: 'x',
  global: 'g',
  longname: 'L',
};

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

export function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name.slice(0, 100), 0, 'utf8');
  h.write(octal(e.mode ?? (e.type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  if (e.sizeField) e.sizeField.copy(h, 124);
  else h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  h.write(FLAG[e.type ?? 'file'] ?? '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  h.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  if (e.badChecksum) sum += 1;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

function padded(b: Buffer): Buffer {
  const pad = (512 - (b.length % 512)) % 512;
  return Buffer.concat([b, Buffer.alloc(pad)]);
}

export function paxData(recs: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(recs)) {
    const val = Buffer.isBuffer(v) ? v : Buffer.from(v);
    const rest = Buffer.concat([Buffer.from(` ${k}=`), val, Buffer.from('\n')]);
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len++;
    parts.push(Buffer.from(String(len)), rest);
  }
  return Buffer.concat(parts);
}

export function buildTar(entries: RawEntry[], opts: { end?: boolean; trailer?: Buffer } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const d = paxData(e.pax);
      out.push(header({ name: 'PaxHeader', type: 'pax' }, d.length), padded(d));
    }
    if (e.type === 'global' || e.type === 'longname') {
      const d = Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body ?? '');
      out.push(header(e, d.length), padded(d));
      continue;
    }
    if (e.type === 'raw') {
      out.push(Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body ?? ''));
      continue;
    }
    const body =
      e.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body);
    out.push(header(e, e.size ?? body.length));
    if (body.length) out.push(padded(body));
  }
  if (opts.end !== false) out.push(Buffer.alloc(1024));
  if (opts.trailer) out.push(opts.trailer);
  return Buffer.concat(out);
}

export function gzipMembers(...bufs: Buffer[]): Buffer {
  return Buffer.concat(bufs.map((b) => gzipSync(b)));
}
