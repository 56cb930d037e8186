/**
 * Path resolution inside a root directory, the way chroot(2) would see it.
 *
 * `resolveInRoot(root, p)` walks `p` one component at a time below `root`:
 * - an absolute symlink target restarts the walk at `root` (a lower layer's `var/run -> /run`
 *   means `<root>/run`, never the host's `/run`);
 * - `..` never climbs above `root` (at the root it stays at the root, like `/..`);
 * - at most {@link MAX_SYMLINK_HOPS} symlinks are followed, then `TooManySymlinksError`;
 * - a component that does not exist (or whose parent is not a directory) ends the walk: the rest
 *   of `p` is appended lexically (`..` still clamped at the root), so callers can resolve the
 *   parent of an entry they are about to create.
 *
 * The result is always `root` or a path below it, built only from names that were checked with
 * lstat (never `path.resolve` + `startsWith`, which `s1 -> .`, `esc -> s1/..` defeat).
 *
 * `root` itself is trusted: the caller owns it and passes an absolute, symlink-free path.
 * This is a check at one instant: a concurrent writer inside the root can still swap a component
 * afterwards, so code that writes into a tree others can modify must also open with O_NOFOLLOW
 * (layer extraction owns its target directory; see archive/apply.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TooManySymlinksError } from '../errors.js';

/** Linux's MAXSYMLINKS: the same limit the kernel applies to one path lookup. */
export const MAX_SYMLINK_HOPS = 40;

export interface ResolveInRootOptions {
  /** Follow a symlink in the last component (default true). false: return the link's own path. */
  followFinal?: boolean;
}

type LstatResult = { kind: 'missing' } | { kind: 'symlink' } | { kind: 'dir' } | { kind: 'other' };

/**
 * The walk as a generator so that the async and sync variants share one implementation:
 * it yields a host path to lstat (or readlink) and receives the answer.
 */
type Request = { op: 'lstat'; path: string } | { op: 'readlink'; path: string };

function* walk(
  root: string,
  p: string,
  followFinal: boolean,
): Generator<Request, string, LstatResult | string> {
  // Components still to visit, first at the end (so a symlink target is spliced in by pushing).
  const pending = splitReversed(p);
  const done: string[] = [];
  let hops = 0;
  let missing = false;
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (name === '.' || name === '') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    if (missing) {
      done.push(name);
      continue;
    }
    const isFinal = pending.every((c) => c === '' || c === '.');
    const hostPath = join(root, done, name);
    if (isFinal && !followFinal) {
      done.push(name);
      continue;
    }
    const st = (yield { op: 'lstat', path: hostPath }) as LstatResult;
    if (st.kind === 'missing') {
      missing = true;
      done.push(name);
      continue;
    }
    if (st.kind !== 'symlink') {
      // A non-directory with components after it: lstat of the next one gives ENOTDIR ->
      // treated as missing, so the caller's create fails cleanly instead of escaping.
      done.push(name);
      continue;
    }
    hops++;
    if (hops > MAX_SYMLINK_HOPS) throw new TooManySymlinksError(p, root);
    const target = (yield { op: 'readlink', path: hostPath }) as string;
    if (target.startsWith('/')) done.length = 0;
    // splitReversed gives last..first; pushing in that order leaves the first on top.
    for (const part of splitReversed(target)) pending.push(part);
  }
  return join(root, done);
}

function splitReversed(p: string): string[] {
  return p.split('/').reverse();
}

function join(root: string, done: string[], name?: string): string {
  let out = root === '/' ? '' : root.endsWith('/') ? root.slice(0, -1) : root;
  for (const d of done) out += '/' + d;
  if (name !== undefined) out += '/' + name;
  return out === '' ? '/' : out;
}

function classify(st: fs.Stats): LstatResult {
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  if (st.isDirectory()) return { kind: 'dir' };
  return { kind: 'other' };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function checkRoot(root: string): string {
  if (!path.isAbsolute(root)) throw new TypeError(`resolveInRoot: root must be absolute, got ${root}`);
  return path.normalize(root);
}

/** Resolve `p` inside `root` as chroot would; see the module comment. */
export async function resolveInRoot(
  root: string,
  p: string,
  opts: ResolveInRootOptions = {},
): Promise<string> {
  const gen = walk(checkRoot(root), p, opts.followFinal ?? true);
  let step = gen.next();
  while (!step.done) {
    const req = step.value;
    if (req.op === 'lstat') {
      let res: LstatResult;
      try {
        res = classify(await fs.promises.lstat(req.path));
      } catch (err) {
        if (!isMissing(err)) throw err;
        res = { kind: 'missing' };
      }
      step = gen.next(res);
    } else {
      step = gen.next(await fs.promises.readlink(req.path));
    }
  }
  return step.value;
}

/** Synchronous {@link resolveInRoot}: for hot paths that already run synchronously. */
export function resolveInRootSync(root: string, p: string, opts: ResolveInRootOptions = {}): string {
  const gen = walk(checkRoot(root), p, opts.followFinal ?? true);
  let step = gen.next();
  while (!step.done) {
    const req = step.value;
    if (req.op === 'lstat') {
      let res: LstatResult;
      try {
        res = classify(fs.lstatSync(req.path));
      } catch (err) {
        if (!isMissing(err)) throw err;
        res = { kind: 'missing' };
      }
      step = gen.next(res);
    } else {
      step = gen.next(fs.readlinkSync(req.path));
    }
  }
  return step.value;
}
