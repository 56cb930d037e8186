/**
 * A minimal copy-per-layer driver for the store's own tests, so store logic (records, locking,
 * crash repair) is tested without depending on a real driver's state. It implements the Driver
 * contract with `applyLayer` (whiteouts applied) and `cp -a` for the parent copy; `changes` and
 * `diff` are not implemented (the shared driver scenarios cover them with the real drivers).
 * Not exported from the package.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { applyLayer } from '../../archive/apply.js';
import type { ApplyDiffOptions, Change, Driver, ProbeResult } from '../../drivers/types.js';

const run = promisify(execFile);

export class DirTestDriver implements Driver {
  readonly name = 'vfs' as const;
  constructor(readonly home: string) {}
  async probe(): Promise<ProbeResult> {
    await mkdir(this.home, { recursive: true });
    return { ok: true };
  }
  layerDir(id: string): string {
    return join(this.home, id);
  }
  async createLayer(id: string, parentId: string | undefined): Promise<void> {
    if (parentId === undefined) await mkdir(this.layerDir(id));
    else await run('cp', ['-a', '--', this.layerDir(parentId), this.layerDir(id)]);
  }
  async applyDiff(
    id: string,
    _p: string | undefined,
    tar: Readable,
    o?: ApplyDiffOptions,
  ): Promise<{ size: number }> {
    const r = await applyLayer(this.layerDir(id), tar, { whiteouts: 'apply', ...o });
    return { size: r.size };
  }
  async mount(id: string): Promise<string> {
    return this.layerDir(id);
  }
  async unmount(): Promise<void> {}
  async isMounted(): Promise<boolean> {
    return false;
  }
  async removeLayer(id: string): Promise<void> {
    await rm(this.layerDir(id), { recursive: true, force: true });
  }
  async exists(id: string): Promise<boolean> {
    return stat(this.layerDir(id)).then(
      () => true,
      () => false,
    );
  }
  async changes(): Promise<Change[]> {
    throw new Error('DirTestDriver: changes() not implemented');
  }
  diff(): Readable {
    throw new Error('DirTestDriver: diff() not implemented');
  }
}
