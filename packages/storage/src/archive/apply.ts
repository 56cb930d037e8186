/**
 * applyLayer(): write one OCI layer changeset (uncompressed tar) into a directory, safely.
 *
 * Every entry is checked before it touches disk (SECURITY.md "Layers"):
 * - its effective name (TarReader) is normalised: leading `/` stripped, `.` dropped, `..` refused
 *   when it would leave the root; the root itself may only be a directory;
 * - its parent directory is resolved component by component INSIDE the layer view as chroot
 *   would (resolveInRootSync for 'apply' mode; LayerView over upper+lowers for 'overlay'), and
 *   created there when missing; results are cached per layer and the cache is dropped whenever an
 *   entry removes or replaces a directory or symlink, so 57k-file layers cost one lookup per dir;
 * - the final component is never followed: files are opened O_CREAT|O_EXCL|O_NOFOLLOW, and an
 *   existing non-directory (or, for a type flip, a directory) is removed first; metadata is set
 *   through the open fd (fchown, fchmod, futimes) or with lchown/lutimes; symlinks are never chmod'ed;
 * - hardlinks only to a target inside this layer dir, reached without any symlink, not a directory;
 * - whiteouts never follow links: their parent must resolve without a symlink.
 *
 * Duplicates: the later entry wins. Same type dir over dir merges (the later metadata wins); any
 * other combination replaces the earlier object (a directory replaced by a file is removed with
 * its contents). Directory metadata is applied at the end (children change a dir's mtime).
 *
 * The work is synchronous syscalls between awaits for input: for tens of thousands of small files
 * the thread-pool round trip of fs.promises costs more than the syscalls themselves; the event
 * loop is still yielded at every input chunk.
 *
 * On any error the target is left partially written: the caller removes the layer.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import {
  InvalidWhiteoutError,
  LayerLimitError,
  MalformedArchiveError,
  StorageError,
  UnsafeLayerEntryError,
} from '../errors.js';
import { resolveInRootSync } from '../fs/resolve-in-root.js';
import { effectiveLimits, type LayerLimits } from './limits.js';
import { type TarEntry, TarReader } from './tar-reader.js';
import { LayerView } from './view.js';
import { lgetxattr, lsetxattr } from './xattr.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface ApplyLayerOptions {
  /**
   * 'overlay': `targetDir` is an overlay upper dir; whiteouts become 0/0 char devices and opaque
   * markers `trusted.overlay.opaque=y` (lowerDirs give the merged view for parent lookups).
   * 'apply': `targetDir` holds the full tree (vfs); whiteouts delete inside it.
   */
  whiteouts: 'overlay' | 'apply';
  /** overlay mode: the lower layer dirs, top (direct parent) first. */
  lowerDirs?: readonly string[];
  limits?: LayerLimits;
  signal?: AbortSignal;
  onProgress?: (p: { bytes: number; entries: number }) => void;
}

export interface ApplyLayerResult {
  /** Regular-file bytes written. */
  size: number;
  entries: number;
  /** xattrs skipped because the file system or object refused them (EPERM/ENOTSUP). */
  xattrsSkipped: number;
}

const S_ISGID = 0o2000;
const O_NEW_FILE =
  fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

export async function applyLayer(
  targetDir: string,
  tar: Readable | AsyncIterable<Buffer | Uint8Array>,
  opts: ApplyLayerOptions,
): Promise<ApplyLayerResult> {
  const limits = effectiveLimits(opts.limits);
  const reader = new TarReader(tar, limits);
  const a = new Applier(targetDir, opts);
  let entries = 0;
  let size = 0;
  let lastProgress = Date.now();
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      // Entries whose header is already buffered are parsed without a promise (most entries).
      const e = reader.nextBuffered() ?? (await reader.next());
      if (!e) break;
      if (++entries > limits.maxEntries) {
        throw new LayerLimitError('entry count', limits.maxEntries, `entry ${e.name}`);
      }
      if (e.type === 'file') {
        size += e.size;
        if (size > limits.maxBytes) throw new LayerLimitError('bytes', limits.maxBytes, `at entry ${e.name}`);
      }
      try {
        const pending = a.entry(e, reader);
        if (pending) await pending;
      } catch (err) {
        if (err instanceof StorageError || (err as Error)?.name === 'AbortError') throw err;
        // ENAMETOOLONG, EINVAL, ENOSPC...: typed, naming the entry, the syscall error chained
        throw new StorageError(
          'ERR_LAYER_APPLY',
          `layer entry ${JSON.stringify(e.name)}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      if (opts.onProgress && Date.now() - lastProgress > 250) {
        lastProgress = Date.now();
        opts.onProgress({ bytes: reader.bytesIn, entries });
      }
    }
    a.finish();
  } catch (err) {
    // stop the producer (decompressor, download) instead of leaving it blocked on backpressure
    await reader.close().catch(() => {});
    throw err;
  } finally {
    a.cleanup();
  }
  opts.onProgress?.({ bytes: reader.bytesIn, entries });
  return { size, entries, xattrsSkipped: a.xattrsSkipped };
}

/**
 * A name that is already normal: no leading `/`, no empty, `.` or `..` component (one trailing
 * `/`, as directories have, is allowed). Most names of real layers are; for them
 * normaliseEntryPath(name).join('/') is `name` without the trailing slash, computed without
 * splitting (a per-entry cost with tens of thousands of entries).
 */
const NOT_PLAIN = /\/\/|(?:^|\/)\.\.?(?:\/|$)|\/$/;

/** The normalised relative path of an archive name ('' for the root); throws on escape. */
export function entryRelPath(name: string): string {
  const n = name.endsWith('/') ? name.slice(0, -1) : name;
  if (n !== '' && n.charCodeAt(0) !== 0x2f && !NOT_PLAIN.test(n)) return n;
  return normaliseEntryPath(name).join('/');
}

/** Normalise an archive path to components inside the root; throws on escape. */
export function normaliseEntryPath(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw new UnsafeLayerEntryError(name, 'path climbs out of the layer root');
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

/** The process umask without process.umask()'s set-and-restore race. */
function readUmask(): number {
  try {
    const m = /^Umask:\s+([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number.parseInt(m[1]!, 8);
  } catch {
    // not Linux /proc: assume the strictest answer, so fchmod always runs
  }
  return 0o777;
}

/** @napi-rs/xattr reports errno only in its message: "... (os error N)". */
function isPermOrNotSup(err: unknown): boolean {
  const m = /\(os error (\d+)\)/.exec(String((err as { cause?: Error })?.cause?.message ?? ''));
  return m !== null && (m[1] === '1' || m[1] === '95');
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function lstatOrUndef(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

interface DeferredDir {
  e: TarEntry;
}

class Applier {
  private readonly overlay: boolean;
  private readonly view: LayerView | undefined;
  /** lexical parent path -> host dir (verified directory, reached inside the root). */
  private dirCache = new Map<string, string>();
  /** host dirs known to have no setgid bit (so new files get the process's egid). */
  private plainDirs = new Set<string>();
  private rootPlain: boolean | undefined;
  /** Something was removed or replaced in this layer: recorded paths must be re-verified. */
  private treeChanged = false;
  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;
  /** host dir path -> directory entry whose metadata is applied at the end (later wins). */
  private readonly deferredDirs = new Map<string, DeferredDir>();
  /** apply mode: relative paths written by this layer (opaque markers keep these). */
  private readonly written: Set<string> | undefined;
  private readonly opaque: string[] = [];
  private whiteoutProto: string | undefined;
  private whiteoutLinks = 0;
  xattrsSkipped = 0;
  private readonly signal: AbortSignal | undefined;
  private readonly umask = readUmask();

  constructor(
    private readonly root: string,
    opts: ApplyLayerOptions,
  ) {
    this.overlay = opts.whiteouts === 'overlay';
    this.signal = opts.signal;
    if (this.overlay) this.view = new LayerView([root, ...(opts.lowerDirs ?? [])], lgetxattr);
    else this.written = new Set();
  }

  /** Returns a promise only when the entry's body must still be read from the input. */
  entry(e: TarEntry, reader: TarReader): Promise<void> | undefined {
    const rel = entryRelPath(e.name);
    if (rel === '') {
      if (e.type !== 'dir') throw new UnsafeLayerEntryError(e.name, 'the layer root can only be a directory');
      this.deferredDirs.set(this.root, { e });
      return;
    }
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(e, rel, base);
      return;
    }
    const parent = this.parentDir(rel, e.name, false);
    const host = parent + '/' + base;
    this.written?.add(rel);
    switch (e.type) {
      case 'dir':
        if (this.mkdirEntry(host, e) || this.plainDirs.has(parent)) this.plainDirs.add(host);
        // a real directory reached without following anything: later children skip the lookup
        this.dirCache.set(rel, host);
        return;
      case 'file':
        return this.fileEntry(host, e, reader, this.plainDirs.has(parent));
      case 'symlink':
        // symlink(2) never follows or replaces `host`: on EEXIST clear it and retry (saves an
        // lstat per symlink in the common case of a new name)
        try {
          fs.symlinkSync(e.linkname, host);
        } catch (err) {
          if (errno(err) !== 'EEXIST') throw err;
          this.clear(host, e.name);
          fs.symlinkSync(e.linkname, host);
        }
        this.lmeta(host, e);
        return;
      case 'hardlink':
        this.hardlink(host, e);
        return;
      case 'char':
      case 'block':
      case 'fifo':
        this.special(host, e);
        return;
    }
  }

  /**
   * Host path of the entry's parent dir, created if missing. Symlinks in the path are followed
   * inside the root; with `noLinks` (whiteouts) any symlink on the way is an error.
   */
  private parentDir(rel: string, label: string, noLinks: boolean): string {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) {
      if (this.rootPlain === undefined) {
        this.rootPlain = (fs.lstatSync(this.root).mode & S_ISGID) === 0;
        if (this.rootPlain) this.plainDirs.add(this.root);
      }
      return this.root;
    }
    const key = rel.slice(0, slash);
    const cached = this.dirCache.get(key);
    if (cached !== undefined && !noLinks) return cached;
    let host: string;
    if (this.view) {
      const resolved = this.view.resolve(key.split('/'), label);
      const direct = resolved.join('/') === key;
      if (noLinks && !direct) throw new InvalidWhiteoutError(label, 'its parent path goes through a symlink');
      host = this.copyUpDirs(resolved, label);
      // A path that went through a LOWER layer's symlink is not cached: replacing that symlink
      // in this layer would not be seen by clear(), which only looks at the upper dir.
      if (!direct) return host;
      this.notePlain(host);
    } else {
      host = resolveInRootSync(this.root, key);
      if (noLinks && host !== this.root + '/' + key) {
        throw new InvalidWhiteoutError(label, 'its parent path goes through a symlink');
      }
      const st = lstatOrUndef(host);
      if (!st) {
        // Everything up to the first missing component is resolved and symlink-free, and the
        // rest does not exist: a recursive mkdir creates only inside the root.
        fs.mkdirSync(host, { recursive: true, mode: 0o755 });
        this.notePlain(host);
      } else if (!st.isDirectory()) {
        throw new MalformedArchiveError(`parent of ${label} is not a directory`);
      } else if ((st.mode & S_ISGID) === 0) {
        this.plainDirs.add(host);
      }
    }
    this.dirCache.set(key, host);
    return host;
  }

  /** overlay: make sure every component of `rel` exists as a dir in the upper, copying lower metadata. */
  private copyUpDirs(rel: string[], label: string): string {
    let host = this.root;
    for (let i = 0; i < rel.length; i++) {
      host += '/' + rel[i];
      const st = lstatOrUndef(host);
      if (st?.isDirectory()) continue;
      let opaque = false;
      if (st) {
        if (st.isCharacterDevice() && st.rdev === 0) {
          // A whiteout in this layer, now a directory again: the lower one must stay hidden.
          fs.unlinkSync(host);
          opaque = true;
        } else {
          throw new MalformedArchiveError(`parent of ${label} is not a directory`);
        }
      }
      const lower = opaque ? undefined : this.view!.lstat(rel.slice(0, i + 1));
      fs.mkdirSync(host, { mode: 0o755 });
      if (opaque) lsetxattr(host, OVERLAY_OPAQUE_XATTR, 'y');
      if (lower?.stat.isDirectory()) {
        const s = lower.stat;
        fs.lchownSync(host, s.uid, s.gid);
        fs.chmodSync(host, s.mode & 0o7777);
        fs.lutimesSync(host, s.atime, s.mtime);
      }
    }
    return host;
  }

  /**
   * Whether `host` (recorded earlier in this layer) is still reached without any symlink. Only
   * checked once something was removed or replaced (`treeChanged`): until then every recorded
   * path is exactly as created.
   */
  private stillDirect(host: string): boolean {
    if (!this.treeChanged || host === this.root) return true;
    return resolveInRootSync(this.root, host.slice(this.root.length + 1), { followFinal: false }) === host;
  }

  private dropCaches(): void {
    this.treeChanged = true;
    this.dirCache.clear();
    this.plainDirs.clear();
    this.rootPlain = undefined;
  }

  /** Remove whatever is at `host` (not following it) so a new object can be created there. */
  private clear(host: string, label: string): void {
    const st = lstatOrUndef(host);
    if (!st) return;
    if (st.isDirectory()) {
      fs.rmSync(host, { recursive: true, force: true });
      this.dropCaches();
    } else {
      fs.unlinkSync(host);
      if (st.isSymbolicLink()) this.dropCaches();
    }
    void label;
  }

  /** Returns true when the directory is known to have no setgid bit now (false: unknown). */
  private mkdirEntry(host: string, e: TarEntry): boolean {
    this.deferredDirs.set(host, { e });
    // mkdir(2) never follows `host`; only a name that exists needs a look (saves an lstat per
    // new directory). A new dir inherits setgid only from a setgid parent: the caller checks it.
    try {
      fs.mkdirSync(host, { mode: 0o755 });
      return false;
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(host);
    if (st.isDirectory()) return (st.mode & S_ISGID) === 0;
    this.clear(host, e.name);
    fs.mkdirSync(host, { mode: 0o755 });
    // overlay: a directory where this layer put a whiteout must keep the lower one hidden
    if (this.overlay && st.isCharacterDevice() && st.rdev === 0) lsetxattr(host, OVERLAY_OPAQUE_XATTR, 'y');
    return false;
  }

  /** Record `host` as a directory without setgid (files created in it get our egid). */
  private notePlain(host: string): void {
    if ((fs.lstatSync(host).mode & S_ISGID) === 0) this.plainDirs.add(host);
  }

  private fileEntry(
    host: string,
    e: TarEntry,
    reader: TarReader,
    parentPlain: boolean,
  ): Promise<void> | undefined {
    // When the final mode survives the umask and has no setuid/setgid/sticky bit (which chown
    // would clear), create the file with it and save the fchmod.
    const modeAtOpen = (e.mode & 0o7000) === 0 && (e.mode & this.umask) === 0;
    const createMode = modeAtOpen ? e.mode : 0o600;
    let fd: number;
    try {
      fd = fs.openSync(host, O_NEW_FILE, createMode);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      this.clear(host, e.name);
      fd = fs.openSync(host, O_NEW_FILE, createMode);
    }
    // Small files (most of a many-files layer) are usually whole in the current input chunk:
    // one write, no callback, no promise.
    let body: Buffer | undefined;
    try {
      body = reader.takeBufferedBody();
      if (body !== undefined) {
        let off = 0;
        while (off < body.length) off += fs.writeSync(fd, body, off, body.length - off);
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    if (body !== undefined) {
      this.finishFile(fd, host, e, modeAtOpen, parentPlain);
      return undefined;
    }
    return this.streamFile(fd, host, e, reader, modeAtOpen, parentPlain);
  }

  private async streamFile(
    fd: number,
    host: string,
    e: TarEntry,
    reader: TarReader,
    modeAtOpen: boolean,
    parentPlain: boolean,
  ): Promise<void> {
    try {
      const signal = this.signal;
      await reader.readBody((chunk) => {
        signal?.throwIfAborted(); // a multi-GB file must not delay an abort
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
      });
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.finishFile(fd, host, e, modeAtOpen, parentPlain);
  }

  /** Owner, mode, mtime through the fd, then close; then xattrs. Closes `fd` in every case. */
  private finishFile(fd: number, host: string, e: TarEntry, modeAtOpen: boolean, parentPlain: boolean): void {
    try {
      // A new file is already ours (euid, and egid unless the dir is setgid): skip the chown.
      if (!(parentPlain && e.uid === this.euid && e.gid === this.egid)) fs.fchownSync(fd, e.uid, e.gid);
      // after chown: chown clears setuid/setgid
      if (!modeAtOpen) fs.fchmodSync(fd, e.mode);
      fs.futimesSync(fd, e.mtime, e.mtime);
    } finally {
      fs.closeSync(fd);
    }
    // after chown (which drops security.capability)
    if (e.xattrs) this.setXattrs(host, e);
  }

  private setXattrs(host: string, e: TarEntry): void {
    for (const [k, v] of e.xattrs ?? []) {
      if (k.startsWith('trusted.overlay.')) continue; // layer data must not steer overlayfs
      try {
        lsetxattr(host, k, v);
      } catch (err) {
        // Like moby: EPERM/ENOTSUP (user.* on a symlink, fs without xattrs) is skipped, except for
        // file capabilities, whose loss would silently break the image.
        if (k === 'security.capability' || !isPermOrNotSup(err)) throw err;
        this.xattrsSkipped++;
      }
    }
  }

  /** Metadata for a just-created non-regular object, without following it. */
  private lmeta(host: string, e: TarEntry): void {
    fs.lchownSync(host, e.uid, e.gid);
    if (e.type !== 'symlink') {
      const st = fs.lstatSync(host);
      if (!st.isSymbolicLink()) fs.chmodSync(host, e.mode);
    }
    if (e.xattrs) this.setXattrs(host, e);
    fs.lutimesSync(host, e.mtime, e.mtime);
  }

  private hardlink(host: string, e: TarEntry): void {
    const tparts = normaliseEntryPath(e.linkname);
    if (tparts.length === 0) throw new UnsafeLayerEntryError(e.name, 'hardlink to the layer root');
    const tkey = tparts.join('/');
    const target = resolveInRootSync(this.root, tkey, { followFinal: false });
    if (target !== this.root + '/' + tkey) {
      throw new UnsafeLayerEntryError(e.name, `hardlink target ${e.linkname} goes through a symlink`);
    }
    const st = lstatOrUndef(target);
    if (!st) throw new UnsafeLayerEntryError(e.name, `hardlink target ${e.linkname} is not in this layer`);
    if (st.isDirectory())
      throw new UnsafeLayerEntryError(e.name, `hardlink target ${e.linkname} is a directory`);
    if (target === host) return;
    this.clear(host, e.name);
    fs.linkSync(target, host);
  }

  /** Device nodes and FIFOs: Node has no mknod/mkfifo; these are rare, so one spawn each. */
  private special(host: string, e: TarEntry): void {
    this.clear(host, e.name);
    const args =
      e.type === 'fifo'
        ? [host, 'p']
        : [host, e.type === 'char' ? 'c' : 'b', String(e.devmajor), String(e.devminor)];
    try {
      execFileSync('mknod', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (cause) {
      throw new UnsafeLayerEntryError(e.name, `mknod failed: ${String((cause as Error).message).trim()}`);
    }
    this.lmeta(host, e);
  }

  private whiteout(e: TarEntry, rel: string, base: string): void {
    const slash = rel.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : rel.slice(0, slash);
    if (base === OPAQUE_MARKER) {
      const dir = this.parentDir(rel, e.name, true);
      if (this.overlay) lsetxattr(dir, OVERLAY_OPAQUE_XATTR, 'y');
      else this.opaque.push(dirRel);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) {
      // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not a changeset entry
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw new InvalidWhiteoutError(e.name, 'no file name after .wh.');
    }
    const dir = this.parentDir(rel, e.name, true);
    const host = dir + '/' + name;
    if (this.overlay) {
      this.clear(host, e.name);
      fs.linkSync(this.proto(), host);
      return;
    }
    const st = lstatOrUndef(host);
    if (!st) return;
    if (st.isDirectory()) {
      fs.rmSync(host, { recursive: true, force: true });
      this.dropCaches();
    } else {
      fs.unlinkSync(host);
      if (st.isSymbolicLink()) this.dropCaches();
    }
    this.written?.delete(dirRel === '' ? name : dirRel + '/' + name);
  }

  /**
   * overlay whiteouts are 0/0 char devices; one mknod per layer, then link(2) per whiteout (the
   * kernel only looks at the inode type and rdev). ext4 caps links per inode, so renew at 60000.
   */
  private proto(): string {
    if (this.whiteoutProto && this.whiteoutLinks < 60000) {
      this.whiteoutLinks++;
      return this.whiteoutProto;
    }
    this.dropProto();
    const p = `${this.root}/.libpod-wh-${process.pid}-${Date.now().toString(36)}`;
    execFileSync('mknod', ['-m', '0000', p, 'c', '0', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.whiteoutProto = p;
    this.whiteoutLinks = 1;
    return p;
  }

  private dropProto(): void {
    if (this.whiteoutProto) fs.rmSync(this.whiteoutProto, { force: true });
    this.whiteoutProto = undefined;
  }

  finish(): void {
    this.dropProto();
    for (const rel of this.opaque) this.applyOpaque(rel);
    // Deepest first does not matter for metadata; all children exist now, so mtimes stick.
    for (const [host, { e }] of this.deferredDirs) {
      // replaced later in the layer, or an ancestor became a symlink: metadata must not follow it
      if (!this.stillDirect(host)) continue;
      const st = lstatOrUndef(host);
      if (!st?.isDirectory()) continue;
      fs.lchownSync(host, e.uid, e.gid);
      fs.chmodSync(host, e.mode);
      if (e.xattrs) this.setXattrs(host, e);
      fs.lutimesSync(host, e.mtime, e.mtime);
    }
  }

  /** apply mode: an opaque dir keeps only what this layer wrote below it. */
  private applyOpaque(rel: string): void {
    const host = rel === '' ? this.root : this.root + '/' + rel;
    if (!this.stillDirect(host)) return;
    const st = lstatOrUndef(host);
    if (!st?.isDirectory()) return;
    for (const name of fs.readdirSync(host)) {
      const childRel = rel === '' ? name : rel + '/' + name;
      const child = host + '/' + name;
      if (!this.written!.has(childRel)) {
        fs.rmSync(child, { recursive: true, force: true });
      } else if (fs.lstatSync(child).isDirectory()) {
        this.applyOpaque(childRel);
      }
    }
  }

  cleanup(): void {
    try {
      this.dropProto();
    } catch {
      // best effort: the caller removes the partial layer anyway
    }
  }
}
