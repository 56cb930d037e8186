import { lstat, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { specFromImage } from './from-image.js';
import { withCwd } from './opts/process.js';
import { resolveWorkdir } from './workdir.js';

describe('working directory (CVE-2024-21626)', () => {
  let dir: string;
  let rootfs: string;
  beforeEach(async () => {
    dir = await makeTempDir('spec-workdir');
    rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('refuses /proc/self/fd/N and anything under /proc or /sys, lexically', async () => {
    for (const w of [
      '/proc/self/fd/7',
      '/proc/1/cwd',
      '/proc',
      '/sys/fs/cgroup',
      '/a/../proc/self/fd/8',
      '//proc/thread-self/fd/3',
    ]) {
      await expect(resolveWorkdir(rootfs, w), w).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
      expect(() => withCwd(w), w).toThrow(expect.objectContaining({ code: 'ERR_INVALID_WORKDIR' }));
    }
    expect(() => withCwd('relative')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_WORKDIR' }));
    // Names that only look like it are fine.
    expect(await resolveWorkdir(rootfs, '/procx/self')).toBe('/procx/self');
  });

  it('refuses a workdir that reaches /proc through a symlink in the image', async () => {
    await symlink('/proc/self/fd/7', join(rootfs, 'app'));
    await expect(resolveWorkdir(rootfs, '/app')).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
    await symlink('../../../proc/self', join(rootfs, 'up'));
    await expect(resolveWorkdir(rootfs, '/up/fd/5')).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
    await expect(
      specFromImage({ config: { Cmd: ['x'], WorkingDir: '/app' } }, rootfs, { hooksDirs: [] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, { workdir: '/proc/self/fd/9', hooksDirs: [] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
  });

  it('creates a missing workdir inside the rootfs, owned by the user, even through an escaping symlink', async () => {
    // /srv -> /../../../../tmp-evil: resolved inside, so the host's /tmp-evil is never created.
    await symlink('/../../../../tmp-evil-libpod-ts', join(rootfs, 'srv'));
    const cwd = await resolveWorkdir(rootfs, '/srv/app/data', { uid: 1000, gid: 1001 });
    expect(cwd).toBe('/tmp-evil-libpod-ts/app/data');
    const st = await stat(join(rootfs, 'tmp-evil-libpod-ts/app/data'));
    expect(st.isDirectory()).toBe(true);
    expect([st.uid, st.gid]).toEqual([1000, 1001]);
    await expect(lstat('/tmp-evil-libpod-ts')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an existing file in the way is an error; create: false needs the directory', async () => {
    await writeFile(join(rootfs, 'file'), 'x');
    await expect(resolveWorkdir(rootfs, '/file')).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
    await expect(resolveWorkdir(rootfs, '/file/sub')).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
    await expect(resolveWorkdir(rootfs, '/missing', { create: false })).rejects.toMatchObject({
      code: 'ERR_INVALID_WORKDIR',
    });
    expect(await resolveWorkdir(rootfs, 'rel/dir')).toBe('/rel/dir');
  });
});

describe('workdir creation is the last step', () => {
  it('a failing option leaves the rootfs untouched', async () => {
    const dir = await makeTempDir('spec-workdir-late');
    try {
      const rootfs = join(dir, 'rootfs');
      await mkdir(rootfs);
      await expect(
        specFromImage({ config: { Cmd: ['x'], WorkingDir: '/new/dir', Volumes: { '/v': {} } } }, rootfs, {
          hooksDirs: [],
        }),
      ).rejects.toMatchObject({ code: 'ERR_IMAGE_VOLUME_UNMOUNTED' });
      await expect(
        specFromImage({ config: { Cmd: ['x'], WorkingDir: '/new/dir' } }, rootfs, {
          devices: [{ path: '/nonexistent-device' }],
          hooksDirs: [],
        }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_SPEC_OPTION' });
      await expect(lstat(join(rootfs, 'new'))).rejects.toMatchObject({ code: 'ENOENT' });
      const spec = await specFromImage({ config: { Cmd: ['x'], WorkingDir: '/new/dir' } }, rootfs, {
        hooksDirs: [],
      });
      expect(spec.process?.cwd).toBe('/new/dir');
      expect((await stat(join(rootfs, 'new/dir'))).isDirectory()).toBe(true);
      await expect(
        specFromImage({ config: { Cmd: ['x'], WorkingDir: '/other' } }, rootfs, {
          createWorkdir: false,
          hooksDirs: [],
        }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_WORKDIR' });
      await expect(lstat(join(rootfs, 'other'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await removeTempDir(dir);
    }
  });
});
