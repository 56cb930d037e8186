import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Layout } from '../runtime/layout.js';
import { ContainerStore } from './store.js';

describe('ContainerStore.delete', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("removes a container directory another process is still writing into (conmon's last files)", async () => {
    const root = mkdtempSync(join(tmpdir(), 'ctr-store-'));
    dirs.push(root);
    const store = new ContainerStore(new Layout(root, join(root, 'run')));
    await store.init();
    const id = 'a'.repeat(64);
    const persist = join(root, 'containers', id, 'persist');
    for (let n = 0; n < 20; n++) {
      // A writer that keeps creating files for ~150 ms, as conmon finishing its exit does.
      await execa('mkdir', ['-p', persist]);
      const writer = execa('sh', [
        '-c',
        `end=$(( $(date +%s%N) + 150000000 )); i=0; while [ $(date +%s%N) -lt $end ]; do mkdir -p "${persist}" 2>/dev/null; true > "${persist}/f$i" 2>/dev/null; i=$((i+1)); done`,
      ]);
      try {
        await new Promise((r) => setTimeout(r, 20));
        await store.delete(id);
      } finally {
        // Also when delete fails: the writer must be gone before the temp dir is removed.
        await writer.catch(() => {});
      }
      // The writer may recreate the directory after delete returns; what delete owns is gone
      // once nobody writes: a second delete always succeeds.
      await store.delete(id);
      expect(existsSync(join(root, 'containers', id))).toBe(false);
    }
  });
});
