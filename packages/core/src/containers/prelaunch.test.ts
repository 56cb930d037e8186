import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from '../../../../test/container-fixtures.js';
import { InvalidOptionsError, UserNotFoundError } from '../errors.js';
import { Libpod } from '../libpod.js';

const skip = containerSkipReason();

/** conmon processes whose arguments mention `text` (zombies excluded). */
function conmonsMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (stat.includes('(conmon)') && !/\) Z /.test(stat) && argv.includes(text)) pids.push(Number(p));
    } catch {}
  }
  return pids;
}

describe.skipIf(skip !== undefined)('run() prelaunches conmon (held on its start pipe)', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('prelaunch');
    lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false, network: false });
  });

  afterAll(async () => {
    await lp?.close();
    await env?.cleanup();
  });

  const containerDirs = () =>
    readdirSync(join(env.root, 'containers')).filter((n) => /^[0-9a-f]{64}$/.test(n));

  it('a create that fails after the prelaunch leaves no conmon and no container directory', async () => {
    // Fails in the spec generator (after conmon was started for the new id).
    await expect(
      lp.containers.run({ rootfs: env.rootfs, command: ['true'], user: 'nobody-here', rm: true }),
    ).rejects.toBeInstanceOf(UserNotFoundError);
    // Fails before anything of the container is written.
    await expect(
      lp.containers.run({ rootfs: join(env.dir, 'missing'), command: ['true'], rm: true }),
    ).rejects.toBeInstanceOf(InvalidOptionsError);
    expect(containerDirs()).toEqual([]);
    expect(conmonsMentioning(env.root)).toEqual([]);
    expect(await lp.containers.list({ all: true })).toEqual([]);
  });

  it('runs use the held conmon, one after another and side by side, with output and exit codes', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await lp.containers.run({
        rootfs: env.rootfs,
        command: ['sh', '-c', `echo run${i}; exit ${i}`],
        rm: true,
      });
      expect(r.exitCode).toBe(i);
      expect(r.stdout).toBe(`run${i}\n`);
    }
    const many = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        lp.containers.run({
          rootfs: env.rootfs,
          command: ['sh', '-c', `echo p${i} >&2`],
          rm: true,
          name: `pre-${i}`,
        }),
      ),
    );
    expect(many.map((r) => r.stderr)).toEqual(['p0\n', 'p1\n', 'p2\n', 'p3\n']);
    // A name conflict is found after conmon was prelaunched: refused, nothing left.
    const kept = await lp.containers.run({ rootfs: env.rootfs, command: ['true'], name: 'pre-kept' });
    await expect(
      lp.containers.run({ rootfs: env.rootfs, command: ['true'], name: 'pre-kept', rm: true }),
    ).rejects.toThrow(/already in use|conflict/i);
    await lp.containers.remove(kept.id);
    expect(containerDirs()).toEqual([]);
    // The kept container's conmon may still be running its exit hook (no waiter: Node starts).
    for (let i = 0; i < 100 && conmonsMentioning(env.root).length > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(conmonsMentioning(env.root)).toEqual([]);
  });
});
