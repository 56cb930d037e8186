/**
 * overlay: the kernel's overlayfs. Each layer keeps only its own changes (upper dir); a mount
 * stacks the parent chain as lower dirs.
 *
 * Layout under <home>:
 *   <id>/diff    the layer's files (whiteouts: 0/0 char devices; opaque: trusted.overlay.opaque=y)
 *   <id>/work    overlayfs work dir (must be on the same fs as diff)
 *   <id>/merged  the mount point
 *   <id>/empty   an empty lower for base layers (created on demand)
 *   l/<short>    symlink -> ../<id>/diff, so that lowerdir= stays short
 *
 * Mount options are limited to one page (4096 bytes). mount(8) runs with cwd=<home> and every
 * path in the options is relative (`l/<16 hex>` per lower), so 128 layers need ~2.5 KiB.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer } from '../../archive/apply.js';
import { changesInUpper } from '../../archive/changes.js';
import { diffTar } from '../../archive/diff.js';
import { DriverOperationError, StorageError } from '../../errors.js';
import { checkId, exists, mountPoints, run } from '../common.js';
import type { ApplyDiffOptions, Change, Driver, DriverOptions, MountOptions, ProbeResult } from '../types.js';
import { strip } from '../vfs/driver.js';
import { currentOwner, processStartTime } from '../../store/owner.js';
import { type Mounter, SyscallMounter, toolMounter } from './mounter.js';

let featureOff: string[] | undefined;

/** `<feature>=off` for each overlay feature this kernel knows (it has a module parameter). */
function featureOffOptions(): string[] {
  if (featureOff) return featureOff;
  featureOff = ['redirect_dir', 'metacopy', 'index']
    .filter((f) => exists(`/sys/module/overlay/parameters/${f}`))
    .map((f) => `${f}=off`);
  return featureOff;
}

/** False once the kernel refused `volatile` (before 5.10): later mounts leave it out. */
let volatileOk = true;

/** Linux limits the mount data to one page. */
const MAX_MOUNT_DATA = 4095;

export class OverlayDriver implements Driver {
  readonly name = 'overlay' as const;
  readonly home: string;
  private readonly mounter: Mounter;
  /** Background deletions of trees removeLayer moved aside. */
  private readonly removals = new Set<Promise<void>>();
  private removed = 0;

  constructor(opts: DriverOptions) {
    this.home = path.resolve(opts.home);
    this.mounter = new SyscallMounter(toolMounter(run));
  }

  close(): void {
    this.mounter.close();
  }

  private dir(id: string): string {
    return path.join(this.home, checkId(id));
  }

  layerDir(id: string): string {
    return path.join(this.dir(id), 'diff');
  }

  private mergedDir(id: string): string {
    return path.join(this.dir(id), 'merged');
  }

  /** Short, stable name of a layer's link (derived from the id: no metadata needed). */
  private short(id: string): string {
    return createHash('sha256').update(checkId(id)).digest('hex').slice(0, 16);
  }

  async probe(): Promise<ProbeResult> {
    try {
      const fss = fs.readFileSync('/proc/filesystems', 'utf8');
      if (!/\toverlay$/m.test(fss)) {
        return { ok: false, reason: 'overlay: the kernel has no overlay file system (modprobe overlay?)' };
      }
    } catch {
      return { ok: false, reason: 'overlay: cannot read /proc/filesystems' };
    }
    try {
      fs.mkdirSync(this.home, { recursive: true });
    } catch (err) {
      return { ok: false, reason: `overlay: cannot create ${this.home}: ${(err as Error).message}` };
    }
    const t = fs.mkdtempSync(path.join(this.home, '.probe-'));
    try {
      for (const d of ['lower', 'upper', 'work', 'merged']) fs.mkdirSync(path.join(t, d));
      fs.writeFileSync(path.join(t, 'lower', 'f'), 'x');
      const name = path.basename(t);
      let r: Awaited<ReturnType<typeof run>>;
      try {
        r = await run(
          'mount',
          [
            '-t',
            'overlay',
            'overlay',
            '-o',
            `lowerdir=${name}/lower,upperdir=${name}/upper,workdir=${name}/work`,
            `${name}/merged`,
          ],
          { cwd: this.home },
        );
      } catch (err) {
        return { ok: false, reason: `overlay: cannot run mount: ${(err as Error).message}` };
      }
      if (r.code !== 0) return { ok: false, reason: `overlay: kernel refused mount: ${r.stderr.trim()}` };
      try {
        fs.writeFileSync(path.join(t, 'merged', 'g'), 'y');
        if (fs.readFileSync(path.join(t, 'merged', 'f'), 'utf8') !== 'x') {
          return { ok: false, reason: 'overlay: lower file not visible through the mount' };
        }
      } finally {
        await run('umount', [path.join(t, 'merged')]);
      }
      return { ok: true };
    } finally {
      fs.rmSync(t, { recursive: true, force: true });
    }
  }

  async exists(id: string): Promise<boolean> {
    return exists(this.layerDir(id));
  }

  async createLayer(id: string, parentId: string | undefined): Promise<void> {
    const dir = this.dir(id);
    if (parentId !== undefined && !exists(this.layerDir(parentId))) {
      throw new DriverOperationError('overlay', id, `create (parent ${parentId} missing)`);
    }
    // A handful of syscalls on small dirs: inline, not eight thread-pool round trips (~1.5 ms of
    // every container create on a busy 2-core host).
    fs.mkdirSync(this.home, { recursive: true });
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new StorageError('ERR_LAYER_EXISTS', `overlay: layer ${id} already exists`);
      }
      throw err;
    }
    fs.mkdirSync(path.join(dir, 'diff'), { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'work'), { mode: 0o700 });
    fs.mkdirSync(path.join(dir, 'merged'), { mode: 0o755 });
    fs.mkdirSync(path.join(this.home, 'l'), { recursive: true });
    const link = path.join(this.home, 'l', this.short(id));
    fs.rmSync(link, { force: true });
    fs.symlinkSync(`../${id}/diff`, link);
  }

  async applyDiff(
    id: string,
    _parentId: string | undefined,
    tar: Readable,
    opts: ApplyDiffOptions = {},
  ): Promise<{ size: number }> {
    const lowerDirs = [...(opts.parentChain ?? [])].reverse().map((p) => this.layerDir(p));
    const r = await applyLayer(this.layerDir(id), tar, {
      whiteouts: 'overlay',
      lowerDirs,
      limits: opts.limits,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    return { size: r.size };
  }

  /** The `-o` data for mounting `id` on `parentChain`; exported for the length test. */
  mountData(id: string, parentChain: readonly string[], opts: MountOptions = {}): string {
    const lowers = [...parentChain].reverse().map((p) => `l/${this.short(p)}`);
    let data: string;
    if (opts.readonly) {
      const all = [`l/${this.short(id)}`, ...lowers];
      if (all.length < 2) all.push(`${id}/empty`); // overlayfs needs two lowers without an upper
      data = `lowerdir=${all.join(':')}`;
    } else {
      if (lowers.length === 0) lowers.push(`${id}/empty`);
      data = `lowerdir=${lowers.join(':')},upperdir=${id}/diff,workdir=${id}/work`;
      // The upper dir must stay a plain OCI-style changeset that changes()/diff() can read:
      // no redirect xattrs for renamed dirs, no metadata-only copy-ups, no inode index.
      for (const o of featureOffOptions()) data += ',' + o;
      if (opts.volatile && volatileOk) data += ',volatile';
    }
    for (const o of opts.mountOptions ?? []) {
      // one option each; a comma only inside a quoted SELinux context ("...:s0:c1,c2")
      if (o.includes(',') && !/^(fs|def|root)?context="[^"]*"$/.test(o)) {
        throw new StorageError('ERR_MOUNT_OPTION', `bad mount option ${o}`);
      }
      data += ',' + o;
    }
    return data;
  }

  async mount(id: string, parentChain: readonly string[], opts: MountOptions = {}): Promise<string> {
    const merged = this.mergedDir(id);
    if (!exists(this.layerDir(id))) throw new DriverOperationError('overlay', id, 'mount (no such layer)');
    if (mountPoints().has(merged)) return merged;
    for (const p of parentChain) {
      if (!exists(path.join(this.home, 'l', this.short(p)))) {
        throw new DriverOperationError('overlay', id, `mount (lower layer ${p} missing)`);
      }
    }
    const data = this.mountData(id, parentChain, opts);
    if (Buffer.byteLength(data) > MAX_MOUNT_DATA) {
      throw new DriverOperationError(
        'overlay',
        id,
        `mount (options are ${data.length} bytes, over one page)`,
      );
    }
    if (data.includes(`${id}/empty`)) fs.mkdirSync(path.join(this.dir(id), 'empty'), { recursive: true });
    const volatile = opts.volatile === true && volatileOk && !opts.readonly;
    // A volatile mount leaves work/incompat/volatile behind, and overlayfs refuses to mount that
    // workdir again until it is gone (the upper may have lost writes: the caller asked for that).
    if (volatile)
      fs.rmSync(path.join(this.dir(id), 'work', 'work', 'incompat'), { recursive: true, force: true });
    const mountOnce = async (d: string) => {
      try {
        await this.mounter.mount({
          fstype: 'overlay',
          source: 'overlay',
          target: `${id}/merged`,
          data: d,
          readonly: opts.readonly === true,
          cwd: this.home,
        });
      } catch (err) {
        // A helper that died mid-call may have mounted before it could say so.
        if (mountPoints().has(merged)) return;
        throw new DriverOperationError('overlay', id, `mount (${(err as Error).message})`, { cause: err });
      }
    };
    try {
      await mountOnce(data);
    } catch (err) {
      if (!volatile) throw err;
      await mountOnce(this.mountData(id, parentChain, { ...opts, volatile: false }));
      volatileOk = false;
    }
    return merged;
  }

  async unmount(id: string): Promise<void> {
    const merged = this.mergedDir(id);
    if (!mountPoints().has(merged)) return;
    try {
      await this.mounter.unmount(merged);
    } catch (err) {
      if (!mountPoints().has(merged)) return;
      throw new DriverOperationError('overlay', id, `unmount (${(err as Error).message})`, { cause: err });
    }
  }

  async isMounted(id: string): Promise<boolean> {
    return mountPoints().has(this.mergedDir(id));
  }

  async removeLayer(id: string): Promise<void> {
    await this.unmount(id);
    fs.rmSync(path.join(this.home, 'l', this.short(id)), { force: true });
    // One rename takes the layer off its path; the tree (a container's upper can be large) is
    // deleted after, off the caller's path: `run --rm` waited ~3 ms here for a dozen entries.
    const trash = this.trashDir();
    const me = currentOwner();
    const aside = path.join(trash, `${id}.${me.pid}-${me.start}.${++this.removed}`);
    try {
      fs.mkdirSync(trash, { recursive: true, mode: 0o700 });
      fs.renameSync(this.dir(id), aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      // Whatever refused the rename: delete in place.
      await fs.promises.rm(this.dir(id), { recursive: true, force: true });
      return;
    }
    const done: Promise<void> = fs.promises
      .rm(aside, { recursive: true, force: true })
      .catch(() => {})
      .finally(() => this.removals.delete(done));
    this.removals.add(done);
  }

  async settle(): Promise<void> {
    while (this.removals.size > 0) await Promise.all([...this.removals]);
  }

  /** Trees moved aside by processes that are gone (`<id>.<pid>-<start time>.<n>`); a live one finishes its own. */
  async recover(): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.trashDir());
    } catch {
      return;
    }
    const me = currentOwner();
    for (const name of names) {
      const parts = name.split('.');
      const [pid, start] = (parts.at(-2) ?? '').split('-');
      const mine = Number(pid) === me.pid && start === me.start;
      if (mine ? this.removals.size > 0 : processStartTime(Number(pid)) === start) continue;
      await fs.promises.rm(path.join(this.trashDir(), name), { recursive: true, force: true });
    }
  }

  private trashDir(): string {
    return path.join(this.home, '.trash');
  }

  async changes(id: string, parentChain: readonly string[]): Promise<Change[]> {
    return strip(this.layerChanges(id, parentChain));
  }

  private layerChanges(id: string, parentChain: readonly string[]) {
    const lowers = [...parentChain].reverse().map((p) => this.layerDir(p));
    return changesInUpper(this.layerDir(id), lowers);
  }

  diff(id: string, parentChain: readonly string[]): Readable {
    checkId(id);
    return diffTar(this.layerDir(id), () => this.layerChanges(id, parentChain));
  }
}
