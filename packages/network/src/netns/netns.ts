import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NetnsError } from '../errors.js';
import { run } from '../util/exec.js';
import { isEnoent } from '../util/fs.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/** Unescapes the octal escapes of /proc/self/mountinfo fields (\040 for a space, ...). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Mount points currently listed in this process's mount namespace. */
export async function mountPoints(): Promise<Set<string>> {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  const out = new Set<string>();
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f[4]) out.add(unescapeMount(f[4]));
  }
  return out;
}

/**
 * Persistent network namespaces as nsfs bind mounts on files in one directory (ours, under
 * runRoot, so cleanup can enumerate exactly what this library made).
 *
 * Created with util-linux `unshare --net=<file> ip link set lo up`: one spawn from Node that
 * unshares, bind-mounts the new namespace on the file, and brings `lo` up inside it (what the
 * runtime expects of a fresh container netns). Removed with `umount -l` + unlink, the same
 * lazy detach `ip netns del` does, so a process still inside keeps working until it exits.
 */
export class NetnsDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(name: string): string {
    if (!NAME_RE.test(name)) throw new NetnsError(name, 'invalid namespace name');
    return join(this.dir, name);
  }

  /** Creates namespace `name` with `lo` up and returns its path. Fails if it already exists. */
  async create(name: string, signal?: AbortSignal): Promise<string> {
    const path = this.pathOf(name);
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    try {
      await (await open(path, 'wx', 0o444)).close();
    } catch (cause) {
      throw new NetnsError(
        path,
        (cause as NodeJS.ErrnoException).code === 'EEXIST' ? 'already exists' : 'cannot create',
        { cause },
      );
    }
    try {
      const r = await run('unshare', [`--net=${path}`, 'ip', 'link', 'set', 'lo', 'up'], { signal });
      if (r.code !== 0) throw new NetnsError(path, `unshare failed: ${r.stderr.trim()}`);
    } catch (e) {
      await this.remove(path).catch(() => {});
      if (e instanceof NetnsError) throw e;
      throw new NetnsError(path, 'unshare failed (util-linux and iproute2 are needed)', { cause: e });
    }
    return path;
  }

  /** Unmounts and deletes a namespace file of this directory; a missing one is not an error. */
  async remove(path: string): Promise<void> {
    if ((await mountPoints()).has(path)) {
      const r = await run('umount', ['-l', path]);
      if (r.code !== 0 && (await mountPoints()).has(path)) {
        throw new NetnsError(path, `umount failed: ${r.stderr.trim()}`);
      }
    }
    try {
      await rm(path, { force: true });
    } catch (e) {
      if (!isEnoent(e)) throw new NetnsError(path, 'cannot delete', { cause: e });
    }
  }

  /** Names of all namespace files in the directory (mounted or left over). */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => NAME_RE.test(n));
    } catch (e) {
      if (isEnoent(e)) return [];
      throw e;
    }
  }
}
