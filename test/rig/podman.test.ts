import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePodmanReference, makeTempDir, PODMAN_REFERENCE_CONF, removeTempDir } from './index.js';

describe('ensurePodmanReference', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('podman-conf');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('writes the reference containers.conf only when none exists', async () => {
    const path = join(dir, 'etc', 'containers', 'containers.conf');
    expect(await ensurePodmanReference(path)).toEqual({ path, written: true });
    const text = await readFile(path, 'utf8');
    expect(text).toBe(PODMAN_REFERENCE_CONF);
    expect(text).toMatch(/^\[containers\]\ndefault_ulimits = \[\]$/m);
    expect(text).toMatch(/^\[engine\]\nruntime = "runc"$/m);
    expect(await ensurePodmanReference(path)).toEqual({ path, written: false });
  });

  it('leaves an existing file untouched', async () => {
    const path = join(dir, 'mine.conf');
    await writeFile(path, '[engine]\nruntime = "crun"\n');
    expect((await ensurePodmanReference(path)).written).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('[engine]\nruntime = "crun"\n');
  });
});
