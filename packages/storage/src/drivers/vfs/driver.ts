/**
 * vfs: every layer is a full copy of its parent plus its own changes. Works on any file system,
 * needs no mounts; costs space and create time (mitigated by `cp --reflink=auto` on btrfs/xfs).
 *
 * Layout: <home>/dir/<id>/ is the layer's complete tree. mount() returns that directory (nothing
 * is mounted), so a container's "mount" is its layer dir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer } from '../../archive/apply.js';
import { changesBetweenTrees } from '../../archive/changes.js';
import { diffTar } from '../../archive/diff.js';
import { DriverOperationError, StorageError } from '../../errors.js';
import { checkId, exists, run, runOrThrow } from '../common.js';
import type { ApplyDiffOptions, Change, Driver, DriverOptions, MountOptions, ProbeResult } from '../types.js';

export class VfsDriver implements Driver {
  readonly name = 'vfs' as const;
  readonly home: string;

  constructor(opts: DriverOptions) {
    this.home = path.resolve(opts.home);
  }

  layerDir(id: string): string {
    return path.join(this.home, 'dir', checkId(id));
  }

  async probe(): Promise<ProbeResult> {
    try {
      await fs.promises.mkdir(path.join(this.home, 'dir'), { recursive: true });
    } catch (err) {
      return { ok: false, reason: `vfs: cannot create ${this.home}: ${(err as Error).message}` };
    }
    try {
      const r = await run('cp', ['--version']);
      if (r.code !== 0) return { ok: false, reason: 'vfs: cp --version failed' };
    } catch {
      return { ok: false, reason: 'vfs: the cp executable (GNU coreutils) is not on PATH' };
    }
    return { ok: true };
  }

  async exists(id: string): Promise<boolean> {
    return exists(this.layerDir(id));
  }

  async createLayer(id: string, parentId: string | undefined): Promise<void> {
    const dir = this.layerDir(id);
    await fs.promises.mkdir(path.dirname(dir), { recursive: true });
    if (exists(dir)) throw new StorageError('ERR_LAYER_EXISTS', `vfs: layer ${id} already exists`);
    if (parentId === undefined) {
      await fs.promises.mkdir(dir, { mode: 0o755 });
      return;
    }
    const parent = this.layerDir(parentId);
    if (!exists(parent)) throw new DriverOperationError('vfs', id, `create (parent ${parentId} missing)`);
    // cp -a keeps owners, modes, mtimes, hardlinks, xattrs (incl. security.capability), devices;
    // --reflink=auto shares blocks where the file system can. One spawn per layer.
    await runOrThrow('vfs', id, 'copy of parent', 'cp', ['-a', '--reflink=auto', '--', parent, dir]);
  }

  async applyDiff(
    id: string,
    _parentId: string | undefined,
    tar: Readable,
    opts: ApplyDiffOptions = {},
  ): Promise<{ size: number }> {
    const r = await applyLayer(this.layerDir(id), tar, {
      whiteouts: 'apply',
      limits: opts.limits,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    return { size: r.size };
  }

  async mount(id: string, _chain: readonly string[], _opts?: MountOptions): Promise<string> {
    const dir = this.layerDir(id);
    if (!exists(dir)) throw new DriverOperationError('vfs', id, 'mount (no such layer)');
    return dir;
  }

  async unmount(_id: string): Promise<void> {}

  async isMounted(_id: string): Promise<boolean> {
    return false;
  }

  async removeLayer(id: string): Promise<void> {
    await fs.promises.rm(this.layerDir(id), { recursive: true, force: true });
  }

  async changes(id: string, parentChain: readonly string[]): Promise<Change[]> {
    return strip(this.layerChanges(id, parentChain));
  }

  private layerChanges(id: string, parentChain: readonly string[]) {
    const parent = parentChain.at(-1);
    return changesBetweenTrees(this.layerDir(id), parent === undefined ? undefined : this.layerDir(parent));
  }

  diff(id: string, parentChain: readonly string[]): Readable {
    checkId(id);
    return diffTar(this.layerDir(id), () => this.layerChanges(id, parentChain));
  }
}

export function strip(c: { path: string; kind: Change['kind'] }[]): Change[] {
  return c.map(({ path, kind }) => ({ path, kind }));
}
