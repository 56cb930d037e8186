import { existsSync } from 'node:fs';
import { BinaryNotFoundError, Libpod, OciRuntimeError } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
if (skip) console.warn(`skipping container runtime tests: ${skip}`);

describe.skipIf(skip !== undefined)('OCI runtimes by name or path; wait conditions', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await makeTestEnv('container-runtimes');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('a missing runtime or conmon is a typed error naming the Debian package', async () => {
    const e = await Libpod.open({ root: env.root, runRoot: env.runRoot, runtime: '/nonexistent/crun' }).catch(
      (x) => x,
    );
    expect(e).toBeInstanceOf(BinaryNotFoundError);
    expect(e.debianPackage).toBe('crun');
    const e2 = await Libpod.open({ root: env.root, runRoot: env.runRoot, conmon: '/nope/conmon' }).catch(
      (x) => x,
    );
    expect(e2.code).toBe('ERR_BINARY_NOT_FOUND');
  });

  it('runs with runc given by path, and with crun where this host lets it', async () => {
    await using lp = await Libpod.open({
      root: env.root,
      runRoot: env.runRoot,
      runtime: '/usr/sbin/runc',
      storage: false,
    });
    const r = await lp.containers.run({ rootfs: env.rootfs, command: ['echo', 'runc'], rm: true });
    expect(r.stdout).toBe('runc\n');
    if (!existsSync('/usr/bin/crun')) {
      console.warn('crun part skipped: crun is not installed');
      return;
    }
    await using lc = await Libpod.open({
      root: `${env.root}-crun`,
      runRoot: `${env.runRoot}-crun`,
      runtime: 'crun',
      storage: false,
    });
    try {
      const rc = await lc.containers.run({ rootfs: env.rootfs, command: ['echo', 'crun'], rm: true });
      expect(rc.stdout).toBe('crun\n');
    } catch (err) {
      // crun 1.8 (Debian 12) refuses hybrid cgroup hosts: a typed runtime error, nothing left behind.
      expect(err).toBeInstanceOf(OciRuntimeError);
      console.warn(
        `crun part skipped: crun cannot run containers here: ${(err as Error).message.slice(0, 200)}`,
      );
      expect(await lc.containers.list({ all: true })).toEqual([]);
    }
  });

  it('wait() on conditions: running, then exited with the code; timeouts are typed', async () => {
    await using lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false });
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sh', '-c', 'sleep 0.5; exit 9'],
    });
    const running = lp.containers.wait(id, { condition: 'running', timeout: 10_000 });
    await lp.containers.start(id);
    await running;
    await expect(lp.containers.wait(id, { timeout: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(await lp.containers.wait(id)).toBe(9);
    await lp.containers.remove(id);
  });
});
