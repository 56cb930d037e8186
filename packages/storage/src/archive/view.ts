/**
 * Path resolution in the MERGED view of an overlay layer being written: its upper dir on top of
 * its lower dirs (top first), with overlay's rules (a 0/0 char device hides lower entries, an
 * opaque upper dir hides lower dirs below it). Same chroot semantics as fs/resolve-in-root.ts:
 * absolute link targets restart at the root, `..` stops at the root, 40 hops at most.
 * Returns the RELATIVE path (components) in the view, which the caller maps into the upper dir.
 */
import * as fs from 'node:fs';
import { TooManySymlinksError } from '../errors.js';
import { MAX_SYMLINK_HOPS } from '../fs/resolve-in-root.js';

export interface ViewStat {
  /** Which layer dir holds the entry (0 = upper). */
  layer: number;
  stat: fs.Stats;
}

const OPAQUE = 'trusted.overlay.opaque';

export class LayerView {
  constructor(
    /** upper first, then lowers top to bottom */
    readonly dirs: readonly string[],
    private readonly getXattr: (p: string, name: string) => Buffer | null,
  ) {}

  /** lstat `rel` (components) in the merged view, or undefined when absent/whited out. */
  lstat(rel: readonly string[]): ViewStat | undefined {
    // Walk layers top down; an opaque dir or whiteout on the way down stops the search.
    for (let layer = 0; layer < this.dirs.length; layer++) {
      const base = this.dirs[layer]!;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(base + '/' + rel.join('/'));
      } catch {
        st = undefined;
      }
      if (st) {
        if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout
        return { layer, stat: st };
      }
      // Absent here: is any ancestor in this layer opaque or a whiteout / non-dir? Then lowers are hidden.
      if (this.hidesBelow(base, rel)) return undefined;
    }
    return undefined;
  }

  private hidesBelow(base: string, rel: readonly string[]): boolean {
    let p = base;
    for (let i = 0; i < rel.length - 1; i++) {
      p += '/' + rel[i];
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        return false;
      }
      if (!st.isDirectory()) return true;
      if (this.getXattr(p, OPAQUE)?.toString() === 'y') return true;
    }
    return false;
  }

  /** Resolve components `parts` in the view, following symlinks chroot-style. */
  resolve(parts: readonly string[], label: string): string[] {
    const pending = [...parts].reverse();
    const done: string[] = [];
    let hops = 0;
    let missing = false;
    while (pending.length > 0) {
      const name = pending.pop()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        done.pop();
        continue;
      }
      done.push(name);
      if (missing) continue;
      const st = this.lstat(done);
      if (!st) {
        missing = true;
        continue;
      }
      if (!st.stat.isSymbolicLink()) continue;
      if (++hops > MAX_SYMLINK_HOPS) throw new TooManySymlinksError(label, this.dirs[0]!);
      const target = fs.readlinkSync(this.dirs[st.layer] + '/' + done.join('/'));
      done.pop();
      if (target.startsWith('/')) done.length = 0;
      const t = target.split('/');
      for (let i = t.length - 1; i >= 0; i--) pending.push(t[i]!);
    }
    return done;
  }
}
