/**
 * What differs between a layer and its parent, for `Driver.changes()` and `Driver.diff()`.
 *
 * - vfs: the layer dir is a full tree; compared against the parent's full tree by metadata
 *   (type, mode, owner, rdev, symlink target; size and mtime for non-directories, as moby does:
 *   a directory's mtime changes whenever a child does).
 * - overlay: only the upper dir is walked; a 0/0 char device is a deletion, an upper directory
 *   with `trusted.overlay.opaque=y` is an opaque replacement (the lower entries below it are
 *   reported as deleted), anything else is added (absent in the lowers) or modified.
 *
 * Results are sorted by path; paths are absolute inside the layer (`/etc/hosts`).
 */
import * as fs from 'node:fs';
import type { Change } from '../drivers/types.js';
import { OVERLAY_OPAQUE_XATTR } from './apply.js';
import { LayerView } from './view.js';
import { lgetxattr } from './xattr.js';

/** A change plus what diff() needs: where the file is and whether a dir is opaque. */
export interface LayerChange extends Change {
  /** Host path of the object in the layer (added/modified). */
  host?: string;
  /** overlay: the directory hides everything below it in the lowers. */
  opaque?: boolean;
}

function lstatOrUndef(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function readdir(p: string): string[] {
  try {
    return fs.readdirSync(p).sort();
  } catch {
    return [];
  }
}

function fileType(st: fs.Stats): number {
  return st.mode & fs.constants.S_IFMT;
}

function differs(a: fs.Stats, ap: string, b: fs.Stats, bp: string): boolean {
  if (fileType(a) !== fileType(b)) return true;
  if ((a.mode & 0o7777) !== (b.mode & 0o7777) || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev)
    return true;
  if (a.isDirectory()) return false;
  if (a.size !== b.size || Math.floor(a.mtimeMs) !== Math.floor(b.mtimeMs)) return true;
  if (a.isSymbolicLink() && fs.readlinkSync(ap) !== fs.readlinkSync(bp)) return true;
  return false;
}

const join = (rel: string, name: string) => (rel === '' ? name : rel + '/' + name);

function addAll(base: string, rel: string, out: LayerChange[]): void {
  for (const name of readdir(base + '/' + rel)) {
    const r = join(rel, name);
    const host = base + '/' + r;
    out.push({ path: '/' + r, kind: 'added', host });
    if (lstatOrUndef(host)?.isDirectory()) addAll(base, r, out);
  }
}

/** vfs: compare the full tree `layer` with the full tree `parent` (undefined: empty). */
export function changesBetweenTrees(layer: string, parent: string | undefined): LayerChange[] {
  const out: LayerChange[] = [];
  const walk = (rel: string) => {
    const ln = readdir(layer + '/' + rel);
    const pn = parent ? readdir(parent + '/' + rel) : [];
    const inLayer = new Set(ln);
    for (const name of ln) {
      const r = join(rel, name);
      const host = layer + '/' + r;
      const l = fs.lstatSync(host);
      const p = parent ? lstatOrUndef(parent + '/' + r) : undefined;
      if (!p) {
        out.push({ path: '/' + r, kind: 'added', host });
        if (l.isDirectory()) addAll(layer, r, out);
        continue;
      }
      if (l.isDirectory() && !p.isDirectory()) {
        out.push({ path: '/' + r, kind: 'modified', host });
        addAll(layer, r, out);
        continue;
      }
      if (differs(l, host, p, parent + '/' + r)) out.push({ path: '/' + r, kind: 'modified', host });
      if (l.isDirectory()) walk(r);
    }
    for (const name of pn) if (!inLayer.has(name)) out.push({ path: '/' + join(rel, name), kind: 'deleted' });
  };
  walk('');
  return sortChanges(out);
}

/** overlay: walk the upper dir `upper` over `lowerDirs` (top first). */
export function changesInUpper(upper: string, lowerDirs: readonly string[]): LayerChange[] {
  const out: LayerChange[] = [];
  const lowers = new LayerView(lowerDirs, lgetxattr);
  const lowerHas = (parts: string[]) => (lowerDirs.length ? lowers.lstat(parts) : undefined);
  const walk = (rel: string, parts: string[], hidden: boolean) => {
    for (const name of readdir(upper + '/' + rel)) {
      const r = join(rel, name);
      const p = [...parts, name];
      const host = upper + '/' + r;
      const u = fs.lstatSync(host);
      const lower = hidden ? undefined : lowerHas(p);
      if (u.isCharacterDevice() && u.rdev === 0) {
        if (lower) out.push({ path: '/' + r, kind: 'deleted' });
        continue;
      }
      if (!lower) {
        out.push({ path: '/' + r, kind: 'added', host });
        if (u.isDirectory()) walk(r, p, true);
        continue;
      }
      if (!u.isDirectory() || !lower.stat.isDirectory()) {
        out.push({ path: '/' + r, kind: 'modified', host });
        if (u.isDirectory()) walk(r, p, true);
        continue;
      }
      const opaque = lgetxattr(host, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
      if (opaque) {
        out.push({ path: '/' + r, kind: 'modified', host, opaque: true });
        const inUpper = new Set(readdir(host));
        for (const ln of lowerNames(lowerDirs, lowers, p)) {
          if (!inUpper.has(ln)) out.push({ path: '/' + join(r, ln), kind: 'deleted' });
        }
        walk(r, p, true);
        continue;
      }
      const lowerPath = lowerDirs[lower.layer] + '/' + r;
      if (differs(u, host, lower.stat, lowerPath)) out.push({ path: '/' + r, kind: 'modified', host });
      walk(r, p, false);
    }
  };
  const rootOpaque = lgetxattr(upper, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
  walk('', [], rootOpaque);
  return sortChanges(out);
}

/** Names visible in the lowers' merged view of directory `parts`. */
function lowerNames(lowerDirs: readonly string[], view: LayerView, parts: string[]): string[] {
  const names = new Set<string>();
  for (const d of lowerDirs) for (const n of readdir(d + '/' + parts.join('/'))) names.add(n);
  return [...names].filter((n) => view.lstat([...parts, n]) !== undefined).sort();
}

function sortChanges(c: LayerChange[]): LayerChange[] {
  return c.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
