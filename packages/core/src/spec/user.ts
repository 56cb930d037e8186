/**
 * Resolve `user[:group]` and supplementary groups against the image's /etc/passwd and
 * /etc/group, as runc/Docker do, reading the files INSIDE the rootfs: each path is resolved
 * component by component as chroot would (`resolveInRoot`), so `/etc/passwd -> /etc/passwd`
 * or `/etc -> /host/etc` lands on the rootfs's own files, never the host's (containers/storage
 * CVE-2024-9676 class). Files are opened with O_NOFOLLOW|O_NONBLOCK, must be regular and at
 * most 16 MiB (a FIFO or /dev/zero in the image cannot hang or exhaust us).
 *
 * Numeric ids are decimal and at most 2^31-1, as runc accepts: `4294967296` must not wrap to
 * root (containerd CVE-2024-40635).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { resolveInRootSync } from '@libpod-ts/storage';
import { GroupNotFoundError, InvalidUserError, RootfsFileError, UserNotFoundError } from '../errors.js';
import { ensureProcess } from './generate.js';
import type { SpecOpt } from './types.js';

export const MAX_ID = 2 ** 31 - 1;
const MAX_DB_SIZE = 16 * 1024 * 1024;

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The user the container process runs as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary gids: the user's groups from /etc/group plus the extra groups asked for. */
  additionalGids: number[];
  /** Home from /etc/passwd, `/` when the user is not listed (runc's default). */
  home: string;
  /** The user's name when /etc/passwd has it. */
  username?: string;
}

/** Parse a decimal id, refusing anything but digits and values above 2^31-1. */
export function parseId(s: string, what: string, whole: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (s.length > 10 || n > MAX_ID) throw new InvalidUserError(whole, `${what} ${s} is above ${MAX_ID}`);
  return n;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = /^\d+$/.test(f[2]!) ? Number(f[2]) : Number.NaN;
    const gid = /^\d+$/.test(f[3]!) ? Number(f[3]) : Number.NaN;
    if (!(uid <= MAX_ID) || !(gid <= MAX_ID)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]!, shell: f[6]! });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = /^\d+$/.test(f[2]!) ? Number(f[2]) : Number.NaN;
    if (!(gid <= MAX_ID)) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(',').filter((m) => m !== '') });
  }
  return out;
}

/**
 * Read a file of the rootfs by its in-container path, resolved inside the rootfs; `undefined`
 * when it does not exist. Synchronous inside: /etc/passwd and /etc/group are small (capped at
 * MAX_DB_SIZE) and every `run` reads them; through the thread pool the walk, open, stat, read
 * and close cost ~12 round trips (1-3 ms on this 2-core host) for microseconds of work.
 */
export async function readRootfsFile(rootfs: string, file: string): Promise<string | undefined> {
  return readRootfsFileSync(rootfs, file);
}

function readRootfsFileSync(rootfs: string, file: string): string | undefined {
  let hostPath: string;
  try {
    hostPath = resolveInRootSync(rootfs, file);
  } catch (err) {
    throw new RootfsFileError(file, 'cannot resolve it inside the rootfs', { cause: err });
  }
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at /etc/passwd must not block the open.
    fd = openSync(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RootfsFileError(file, code === 'ELOOP' ? 'is a symlink' : 'cannot open it', { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new RootfsFileError(file, 'not a regular file');
    if (st.size > MAX_DB_SIZE) throw new RootfsFileError(file, `larger than ${MAX_DB_SIZE} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export interface ResolveUserOptions {
  /** Extra groups (`--group-add`): names looked up in /etc/group, or numeric gids. */
  groups?: readonly string[];
}

/**
 * Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) inside `rootfs`.
 * A name not in /etc/passwd (or group not in /etc/group) is an error; a numeric uid not listed
 * runs with gid 0 (unless a group is given) and home `/`, like runc.
 */
export async function resolveUser(
  rootfs: string,
  spec: string,
  opts: ResolveUserOptions = {},
): Promise<ResolvedUser> {
  const whole = spec;
  if (spec.includes('\0') || spec.includes('\n'))
    throw new InvalidUserError(whole, 'contains a control character');
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (groupPart?.includes(':')) throw new InvalidUserError(whole, 'more than one ":"');

  const uidNum = parseId(userPart, 'uid', whole);
  const gidNum = groupPart !== undefined && groupPart !== '' ? parseId(groupPart, 'gid', whole) : undefined;
  const extra = opts.groups ?? [];
  const extraNums = extra.map((g) => parseId(g, 'gid', g));

  // Only read the databases when a name must be looked up, or to find the user's own groups.
  const passwd = parsePasswd((await readRootfsFile(rootfs, '/etc/passwd')) ?? '');
  let entry: PasswdEntry | undefined;
  if (userPart === '') entry = passwd.find((p) => p.uid === 0);
  else if (uidNum !== undefined) entry = passwd.find((p) => p.uid === uidNum);
  else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new UserNotFoundError(userPart, rootfs);
  }
  const uid = uidNum ?? entry?.uid ?? 0;

  const needGroup =
    (groupPart !== undefined && groupPart !== '' && gidNum === undefined) ||
    extraNums.some((n) => n === undefined) ||
    entry !== undefined;
  const groups = needGroup ? parseGroup((await readRootfsFile(rootfs, '/etc/group')) ?? '') : [];

  let gid: number;
  if (gidNum !== undefined) gid = gidNum;
  else if (groupPart !== undefined && groupPart !== '') {
    const g = groups.find((x) => x.name === groupPart);
    if (!g) throw new GroupNotFoundError(groupPart, rootfs);
    gid = g.gid;
  } else gid = entry?.gid ?? 0;

  const supplementary: number[] = [];
  // With an explicit group the user asked for exactly that group (runc: no /etc/group lookup).
  if (entry && groupPart === undefined) {
    for (const g of groups) if (g.members.includes(entry.name)) supplementary.push(g.gid);
  }
  extra.forEach((g, i) => {
    const n = extraNums[i];
    if (n !== undefined) supplementary.push(n);
    else {
      const found = groups.find((x) => x.name === g);
      if (!found) throw new GroupNotFoundError(g, rootfs);
      supplementary.push(found.gid);
    }
  });
  const additionalGids = supplementary.length > 0 ? [...new Set([gid, ...supplementary])] : [];
  const out: ResolvedUser = { uid, gid, additionalGids, home: entry?.home || '/' };
  if (entry) out.username = entry.name;
  return out;
}

export interface WithUserOptions extends ResolveUserOptions {
  /** The rootfs whose /etc/passwd and /etc/group resolve names; without it only numeric ids work. */
  rootfs?: string;
}

/**
 * Set the process user: `{ uid, gid, additionalGids }` as given, or a `user[:group]` string
 * resolved in `opts.rootfs` (see {@link resolveUser}); without a rootfs only `uid[:gid]`.
 */
export function withUser(
  user: string | { uid: number; gid: number; additionalGids?: number[] },
  opts: WithUserOptions = {},
): SpecOpt {
  return async (spec) => {
    let u: { uid: number; gid: number; additionalGids: number[] };
    if (typeof user === 'object') {
      for (const id of [user.uid, user.gid, ...(user.additionalGids ?? [])]) {
        if (!Number.isInteger(id) || id < 0 || id > MAX_ID)
          throw new InvalidUserError(String(id), `not in 0..${MAX_ID}`);
      }
      u = { uid: user.uid, gid: user.gid, additionalGids: [...(user.additionalGids ?? [])] };
    } else if (opts.rootfs) {
      u = await resolveUser(opts.rootfs, user, opts);
    } else {
      const [a = '', b] = user.split(':');
      const uid = parseId(a, 'uid', user);
      const gid = b === undefined ? 0 : parseId(b, 'gid', user);
      if (uid === undefined || gid === undefined || (opts.groups ?? []).length > 0) {
        throw new InvalidUserError(user, 'names and groups need a rootfs to resolve them');
      }
      u = { uid, gid, additionalGids: [] };
    }
    const p = ensureProcess(spec);
    p.user = { ...p.user, uid: u.uid, gid: u.gid };
    if (u.additionalGids.length > 0) p.user.additionalGids = u.additionalGids;
    else delete p.user.additionalGids;
  };
}
