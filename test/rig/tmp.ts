/**
 * Temp dirs for tests. Every dir made here is named `libpod-ts-test-<label>-XXXXXX` directly under
 * os.tmpdir(), so the leak check can find one that a test forgot, even from another process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prefix of every rig temp dir under os.tmpdir(); the leak check scans for it. */
export const TEMP_PREFIX = 'libpod-ts-test-';

/**
 * Creates a fresh private dir under os.tmpdir(), named `libpod-ts-test-<label>-p<pid>-XXXXXX` so
 * the leak check can tell whose it is. The caller MUST remove it (removeTempDir) before
 * its test file ends, or the leak check fails the file naming it.
 */
export async function makeTempDir(label = 'tmp'): Promise<string> {
  const safe = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40) || 'tmp';
  return mkdtemp(join(tmpdir(), `${TEMP_PREFIX}${safe}-p${process.pid}-`));
}

/** The pid that created a makeTempDir dir (from its base name), if the name carries one. */
export function tempDirCreator(name: string): number | undefined {
  const m = /-p(\d+)-[^-]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Removes a dir made by makeTempDir (recursively; a missing dir is not an error). */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
