import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OciRuntimeError } from '../errors.js';
import { findBinary } from './binaries.js';
import { conmonSupports } from './conmon.js';
import { spawnerReady, spawnHeldConmon } from './conmon-spawner.js';

function processesWithArg(arg: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (argv.includes(arg) && !/\) Z /.test(stat)) pids.push(Number(p));
    } catch {}
  }
  return pids;
}

describe('conmon spawner thread', () => {
  const conmon = (() => {
    try {
      return findBinary('conmon');
    } catch {
      return undefined;
    }
  })();

  it.skipIf(!conmon)('starts held conmons off the main thread; failures are typed errors', async () => {
    expect(await spawnerReady()).toBe(true);
    // `--version` prints and exits: no pid on the sync pipe.
    const held = spawnHeldConmon(conmon!, ['--version'], 'c1');
    expect(held).toBeDefined();
    await expect(held!.go()).rejects.toThrow(/conmon exited without a pid/);
    const missing = spawnHeldConmon('/nonexistent/conmon', ['-c', 'x'], 'c2');
    const err = await missing!.go().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciRuntimeError);
    expect((err as Error).message).toMatch(/ENOENT/);
    expect(await conmonSupports(conmon!, '--no-sync-log')).toBe(true);
    expect(await conmonSupports(conmon!, '--no-such-option')).toBe(false);
  });

  it('cancel kills the held process and resolves once it is gone', async () => {
    expect(await spawnerReady()).toBe(true);
    const marker = '3171.5';
    const held = spawnHeldConmon('/bin/sleep', [marker], 'c3');
    for (let i = 0; i < 100 && processesWithArg(marker).length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(processesWithArg(marker).length).toBe(1);
    await held!.cancel();
    expect(processesWithArg(marker)).toEqual([]);
    // go after cancel is refused.
    await expect(held!.go()).rejects.toThrow(/already started or cancelled/);
  });

  it('never keeps a program alive: one that used it (or only started it) exits on its own', async () => {
    const spawner = join(import.meta.dirname, 'conmon-spawner.ts');
    const scripts = [
      // Started while booting (the caller spawns directly), then nothing more.
      `const { spawnHeldConmon } = await import(${JSON.stringify(spawner)});
       console.log(spawnHeldConmon('/bin/true', [], 'x') === undefined ? 'booting' : 'ready');`,
      // Used once, then the program ends.
      `const { spawnerReady, spawnHeldConmon } = await import(${JSON.stringify(spawner)});
       await spawnerReady();
       await spawnHeldConmon('/bin/true', [], 'x').go().catch(() => {});
       console.log('used');`,
    ];
    for (const code of scripts) {
      const out = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', code],
          { timeout: 20_000, cwd: import.meta.dirname },
          (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
        );
      });
      expect(['booting', 'ready', 'used']).toContain(out);
    }
  });
});
