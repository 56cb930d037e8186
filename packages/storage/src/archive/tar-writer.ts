/**
 * Tar header encoding for layer diffs (POSIX pax where ustar cannot hold a value). Written here
 * rather than with tar-stream's packer because xattr values (security.capability) are binary and
 * must be carried byte-exact in `SCHILY.xattr.*` records.
 */
import type { EntryType } from './tar-reader.js';

export interface WriteEntry {
  name: string;
  type: EntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const FLAGS: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function octal(n: number, len: number): string {
  return (
    Math.floor(n)
      .toString(8)
      .padStart(len - 1, '0') + '\0'
  );
}

function ascii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len++;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

function block(name: string, e: WriteEntry | undefined, flag: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal((e?.mode ?? 0o644) & 0o7777, 8), 100, 'latin1');
  h.write(octal(Math.min(e?.uid ?? 0, MAX_OCTAL_8), 8), 108, 'latin1');
  h.write(octal(Math.min(e?.gid ?? 0, MAX_OCTAL_8), 8), 116, 'latin1');
  h.write(octal(Math.min(size, MAX_OCTAL_12), 12), 124, 'latin1');
  h.write(octal(Math.max(0, Math.min(e?.mtime ?? 0, MAX_OCTAL_12)), 12), 136, 'latin1');
  h.write(flag, 156, 'latin1');
  if (e?.linkname && Buffer.byteLength(e.linkname) <= 100 && ascii(e.linkname))
    h.write(e.linkname, 157, 'utf8');
  h.write('ustar\x0000', 257, 'latin1');
  if (e?.devmajor !== undefined) h.write(octal(e.devmajor, 8), 329, 'latin1');
  if (e?.devminor !== undefined) h.write(octal(e.devminor, 8), 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** Header block(s) for one entry: a pax 'x' header first when ustar cannot hold a field. */
export function encodeHeader(e: WriteEntry): Buffer {
  const recs: Buffer[] = [];
  const nameFits = Buffer.byteLength(e.name) <= 100 && ascii(e.name);
  if (!nameFits) recs.push(paxRecord('path', Buffer.from(e.name)));
  if (e.linkname && !(Buffer.byteLength(e.linkname) <= 100 && ascii(e.linkname))) {
    recs.push(paxRecord('linkpath', Buffer.from(e.linkname)));
  }
  if (e.uid > MAX_OCTAL_8) recs.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_OCTAL_8) recs.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (e.size > MAX_OCTAL_12) recs.push(paxRecord('size', Buffer.from(String(e.size))));
  for (const [k, v] of e.xattrs ?? []) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = block(
    nameFits ? e.name : e.name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_'),
    e,
    FLAGS[e.type],
    e.size,
  );
  if (recs.length === 0) return main;
  const data = Buffer.concat(recs);
  return Buffer.concat([
    block('PaxHeader', undefined, 'x', data.length),
    data,
    Buffer.alloc(padding(data.length)),
    main,
  ]);
}

export function padding(n: number): number {
  return (512 - (n % 512)) % 512;
}

/** Two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);
