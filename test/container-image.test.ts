import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageNotFoundError, Libpod } from '@libpod-ts/core';
import { buildBusyboxImage } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, importRigImage, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
if (skip) console.warn(`skipping image container tests: ${skip}`);

const mountsUnder = (dir: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));

describe.skipIf(skip !== undefined)('containers from images in the store (writable layer + mount)', () => {
  let env: TestEnv;
  let lp: Libpod;
  let driver: 'overlay' | 'vfs' = 'overlay';

  beforeAll(async () => {
    env = await makeTestEnv('container-image');
    try {
      lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: { driver } });
      await lp.images.store();
    } catch (err) {
      console.warn(`overlay unavailable (${(err as Error).message}); using vfs`);
      await lp?.close();
      driver = 'vfs';
      lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: { driver } });
    }
    await importRigImage(await lp.images.store(), join(env.dir, 'layout'), 'localhost/rig/busybox:latest', {
      env: ['FOO=from-image'],
      user: 'rig',
      workingDir: '/home/rig',
      cmd: ['sh', '-c', 'echo default-cmd'],
      labels: { 'org.example': 'yes' },
    });
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => [])) {
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      }
      await lp.close();
    }
    await env?.cleanup();
  });

  it('runs the image config (cmd, user, workdir, env) and leaves no mount or layer with rm', async () => {
    const r = await lp.containers.run({ image: 'localhost/rig/busybox:latest', rm: true });
    expect(r.stdout).toBe('default-cmd\n');
    const r2 = await lp.containers.run({
      image: 'localhost/rig/busybox',
      command: ['sh', '-c', 'id -u; id -g; pwd; echo $FOO'],
      rm: true,
    });
    expect(r2.stdout).toBe('1000\n1000\n/home/rig\nfrom-image\n');
    expect(r2.exitCode).toBe(0);
    const store = await lp.images.store();
    expect(await store.listContainers()).toEqual([]);
    expect(mountsUnder(env.dir)).toEqual([]);
  });

  it('keeps the writable layer across restarts, unmounts on exit, deletes it on remove', async () => {
    const { id } = await lp.containers.create({
      image: 'localhost/rig/busybox:latest',
      user: 'root',
      command: ['sh', '-c', 'echo hello >> /data.txt; cat /data.txt'],
    });
    await lp.containers.start(id);
    expect(await lp.containers.wait(id)).toBe(0);
    expect(mountsUnder(env.dir)).toEqual([]);
    await lp.containers.start(id);
    expect(await lp.containers.wait(id)).toBe(0);
    const lines: string[] = [];
    for await (const l of lp.containers.logs(id)) lines.push(l.line);
    expect(lines).toEqual(['hello', 'hello', 'hello']);
    const ins = await lp.containers.inspect(id);
    expect(ins.ImageName).toBe('localhost/rig/busybox:latest');
    expect(ins.Image).toMatch(/^[0-9a-f]{64}$/);
    expect(
      (await lp.containers.list({ all: true, filters: { ancestor: ['localhost/rig/busybox'] } })).length,
    ).toBe(1);
    await lp.containers.remove(id);
    expect(await (await lp.images.store()).listContainers()).toEqual([]);
  });

  it('run() keeps one mount from create to init and none after the exit, also when start fails', async () => {
    const store = await lp.images.store();
    const ok = await lp.containers.run({ image: 'localhost/rig/busybox:latest', command: ['true'] });
    expect(ok.exitCode).toBe(0);
    const missing = await lp.containers
      .run({ image: 'localhost/rig/busybox:latest', command: ['/no/such/binary'] })
      .catch((e) => e);
    expect(missing).toBeInstanceOf(Error);
    expect(mountsUnder(env.dir)).toEqual([]);
    // The writable layer of an image container is stored under the container's id.
    expect(await store.mountCount(ok.id)).toBe(0);
    // A later start mounts again (count 1 while running) and its exit unmounts (count 0).
    await lp.containers.start(ok.id);
    expect(await lp.containers.wait(ok.id)).toBe(0);
    expect(mountsUnder(env.dir)).toEqual([]);
    for (const c of await lp.containers.list({ all: true }))
      await lp.containers.remove(c.Id, { force: true });
    expect(await store.listContainers()).toEqual([]);
  });

  it("an rm container's layer is mounted volatile (podman --rm), a kept one is not", async (ctx) => {
    if (driver !== 'overlay') return ctx.skip('volatile is an overlay mount option; this host runs vfs');
    const rootOpts = async (rm: boolean) => {
      const r = await lp.containers.run({
        image: 'localhost/rig/busybox:latest',
        user: 'root',
        command: ['sh', '-c', "grep ' / ' /proc/self/mounts"],
        rm,
      });
      if (!rm) await lp.containers.remove(r.id);
      return r.stdout;
    };
    expect(await rootOpts(true)).toMatch(/\bvolatile\b/);
    expect(await rootOpts(false)).not.toMatch(/\bvolatile\b/);
  });

  it('pulls an image from an OCI layout into the store (image package, containers-storage:) and runs it', async () => {
    const layout = join(env.dir, 'layout-pull');
    await buildBusyboxImage({ dir: layout, config: { cmd: ['echo', 'pulled'] } });
    const img = await lp.images.pull(`oci:${layout}:latest`, { name: 'localhost/pulled/busybox:1' });
    expect(img.names).toContain('localhost/pulled/busybox:1');
    expect((await lp.images.list()).length).toBeGreaterThanOrEqual(2);
    const r = await lp.containers.run({ image: 'localhost/pulled/busybox:1', rm: true });
    expect(r.stdout).toBe('pulled\n');
    await lp.images.remove('localhost/pulled/busybox:1');
    expect(await lp.images.exists('localhost/pulled/busybox:1')).toBe(false);
    await expect(lp.images.pull(`oci:${layout}:latest`)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
  });

  it('a missing image is a typed error and leaves nothing behind', async () => {
    const err = await lp.containers
      .create({ image: 'localhost/nope:latest', command: ['true'] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ImageNotFoundError);
    expect(err.code).toBe('ERR_IMAGE_NOT_FOUND');
    expect(await lp.containers.list({ all: true })).toEqual([]);
    expect(await (await lp.images.store()).listContainers()).toEqual([]);
  });
});
