/**
 * A layer's changes as an uncompressed OCI layer tar: added/modified objects with mode, owner,
 * mtime and xattrs (trusted.overlay.* excluded), hardlinks kept within the diff, deletions as
 * `.wh.<name>`, opaque directories as the directory followed by `.wh..wh..opq`.
 * Files are streamed (never buffered); destroying the stream stops the walk.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './apply.js';
import type { LayerChange } from './changes.js';
import type { EntryType } from './tar-reader.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from './tar-writer.js';
import { lgetxattr, llistxattr } from './xattr.js';

/**
 * `root` is the layer dir the changes' host paths are in. A file's content is read only after
 * the kernel confirms (via /proc/self/fd) that the opened file is really below `root`: a running
 * container that swaps a directory for a symlink mid-walk (docker cp CVE-2018-15664 class) gets
 * an error, never host data in the tar. Names and metadata of such swapped entries could still be
 * listed: export a running container paused, as `podman commit` does by default.
 */
export function diffTar(root: string, changes: () => LayerChange[]): Readable {
  return Readable.from(generate(root, changes), { objectMode: false });
}

/** The opened fd must be the file at `host` below `root` (resolved by the kernel). */
function checkOpened(fd: number, host: string, root: string, realRoot: string): void {
  let actual: string;
  try {
    actual = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return; // no /proc: the O_NOFOLLOW open is all we have
  }
  if (actual !== realRoot + host.slice(root.length)) {
    throw new StorageError(
      'ERR_LAYER_CHANGED',
      `${host} changed while the layer was archived (now ${actual})`,
    );
  }
}

function typeOf(st: fs.Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not archived (tar cannot hold them)
}

function xattrsOf(host: string): Map<string, Buffer> | undefined {
  let out: Map<string, Buffer> | undefined;
  for (const name of llistxattr(host)) {
    if (name.startsWith('trusted.overlay.')) continue;
    const v = lgetxattr(host, name);
    if (v === null) continue;
    out ??= new Map();
    out.set(name, v);
  }
  return out;
}

async function* generate(root: string, changes: () => LayerChange[]): AsyncGenerator<Buffer> {
  const realRoot = fs.realpathSync(root);
  const links = new Map<string, string>(); // dev:ino -> first archived name
  for (const c of changes()) {
    const name = c.path.slice(1);
    if (c.kind === 'deleted') {
      const slash = name.lastIndexOf('/');
      const wh = name.slice(0, slash + 1) + WHITEOUT_PREFIX + name.slice(slash + 1);
      yield encodeHeader({ name: wh, type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
      continue;
    }
    const host = c.host!;
    const st = fs.lstatSync(host);
    const type = typeOf(st);
    if (!type) continue;
    const base = {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      xattrs: xattrsOf(host),
    };
    if (type === 'file' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...base, name, type: 'hardlink', size: 0, linkname: first, xattrs: undefined });
        continue;
      }
      links.set(key, name);
    }
    switch (type) {
      case 'dir':
        yield encodeHeader({ ...base, name: name + '/', type, size: 0 });
        if (c.opaque) {
          yield encodeHeader({
            name: `${name}/${OPAQUE_MARKER}`,
            type: 'file',
            size: 0,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
          });
        }
        break;
      case 'symlink':
        yield encodeHeader({ ...base, name, type, size: 0, linkname: fs.readlinkSync(host) });
        break;
      case 'char':
      case 'block':
        yield encodeHeader({
          ...base,
          name,
          type,
          size: 0,
          devmajor: Math.floor(st.rdev / 256) & 0xfff,
          devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
        });
        break;
      case 'fifo':
        yield encodeHeader({ ...base, name, type, size: 0 });
        break;
      case 'file': {
        yield encodeHeader({ ...base, name, type, size: st.size });
        let sent = 0;
        if (st.size === 0) break;
        // O_NOFOLLOW: the layer may change under a running container; never read through a link
        const fh = await fs.promises.open(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          checkOpened(fh.fd, host, root, realRoot);
          for await (const chunk of fh.createReadStream({ autoClose: false, start: 0, end: st.size - 1 })) {
            const b = chunk as Buffer;
            const room = st.size - sent;
            if (room <= 0) break;
            const part = b.length > room ? b.subarray(0, room) : b;
            sent += part.length;
            yield part;
          }
        } finally {
          await fh.close();
        }
        // a file that shrank while archived is zero-filled to its header size
        if (sent < st.size) yield Buffer.alloc(st.size - sent);
        const pad = padding(st.size);
        if (pad) yield Buffer.alloc(pad);
        break;
      }
    }
  }
  yield END_OF_ARCHIVE;
}
