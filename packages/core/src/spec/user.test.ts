import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { specFromImage } from './from-image.js';
import { parseId, resolveUser } from './user.js';

const PASSWD =
  'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n';
const GROUP = 'root:x:0:\nwheel:x:10:app,web\napp:x:1000:\nwww-data:x:33:\naudio:x:29:app\n';

describe('user and group resolution inside the rootfs', () => {
  let dir: string;
  let rootfs: string;
  beforeEach(async () => {
    dir = await makeTempDir('spec-user');
    rootfs = join(dir, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  async function plainDb() {
    await writeFile(join(rootfs, 'etc/passwd'), PASSWD);
    await writeFile(join(rootfs, 'etc/group'), GROUP);
  }

  it('names, numbers, groups and supplementary groups', async () => {
    await plainDb();
    expect(await resolveUser(rootfs, '')).toEqual({
      uid: 0,
      gid: 0,
      additionalGids: [],
      home: '/root',
      username: 'root',
    });
    expect(await resolveUser(rootfs, 'app')).toEqual({
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 10, 29],
      home: '/home/app',
      username: 'app',
    });
    expect(await resolveUser(rootfs, '33')).toMatchObject({
      uid: 33,
      gid: 33,
      username: 'web',
      additionalGids: [33, 10],
    });
    // An explicit group: exactly that group, no /etc/group membership.
    expect(await resolveUser(rootfs, 'app:www-data')).toMatchObject({
      uid: 1000,
      gid: 33,
      additionalGids: [],
    });
    expect(await resolveUser(rootfs, '4242:4343')).toEqual({
      uid: 4242,
      gid: 4343,
      additionalGids: [],
      home: '/',
    });
    // A numeric uid not listed: gid 0, home / (runc).
    expect(await resolveUser(rootfs, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
    // --group-add by name and number.
    expect(await resolveUser(rootfs, '4242:4343', { groups: ['audio', '7'] })).toMatchObject({
      gid: 4343,
      additionalGids: [4343, 29, 7],
    });
  });

  it('unknown names are typed errors', async () => {
    await plainDb();
    await expect(resolveUser(rootfs, 'nobody')).rejects.toMatchObject({ code: 'ERR_USER_NOT_FOUND' });
    await expect(resolveUser(rootfs, 'app:nogroup')).rejects.toMatchObject({ code: 'ERR_GROUP_NOT_FOUND' });
    await expect(resolveUser(rootfs, '0', { groups: ['nogroup'] })).rejects.toMatchObject({
      code: 'ERR_GROUP_NOT_FOUND',
    });
    await expect(resolveUser(rootfs, 'a:b:c')).rejects.toMatchObject({ code: 'ERR_INVALID_USER' });
  });

  it('numeric uid/gid overflow is refused, never wrapped to root (CVE-2024-40635)', async () => {
    await plainDb();
    for (const u of ['4294967296', '2147483648', '99999999999999999999', '0:4294967296', '1:2147483648']) {
      await expect(resolveUser(rootfs, u), u).rejects.toMatchObject({ code: 'ERR_INVALID_USER' });
    }
    await expect(resolveUser(rootfs, '1', { groups: ['4294967296'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_USER',
    });
    expect((await resolveUser(rootfs, '2147483647')).uid).toBe(2147483647);
    expect(parseId('-1', 'uid', '-1')).toBeUndefined(); // not a number: looked up as a name
    await expect(resolveUser(rootfs, '-1')).rejects.toMatchObject({ code: 'ERR_USER_NOT_FOUND' });
    // A passwd line with an overflowing uid is ignored rather than wrapped.
    await writeFile(join(rootfs, 'etc/passwd'), 'evil:x:4294967296:0::/:/bin/sh\n');
    await expect(resolveUser(rootfs, 'evil')).rejects.toMatchObject({ code: 'ERR_USER_NOT_FOUND' });
  });

  it('/etc/passwd -> /etc/passwd of the host resolves inside the rootfs (CVE-2024-9676 class)', async () => {
    // The link's absolute target is the rootfs's own /etc/passwd... which is the link itself: a loop.
    await symlink('/etc/passwd', join(rootfs, 'etc/passwd'));
    await expect(resolveUser(rootfs, 'root')).rejects.toMatchObject({ code: 'ERR_ROOTFS_FILE' });
    // 'daemon' is in the host's /etc/passwd: never read from there.
    await expect(resolveUser(rootfs, 'daemon')).rejects.toMatchObject({ code: 'ERR_ROOTFS_FILE' });
    // A link to another absolute path lands on the rootfs's copy, not the host's.
    await mkdir(join(rootfs, 'host/etc'), { recursive: true });
    await writeFile(join(rootfs, 'host/etc/passwd'), 'inside:x:5:5::/in:/bin/sh\n');
    await symlink('/host/etc/passwd', join(rootfs, 'etc/passwd2'));
    await symlink('/etc/passwd', join(rootfs, 'etc/group'));
    // Replace the loop with a link whose target exists on the host but not in the rootfs.
    await removeAndLink(join(rootfs, 'etc/passwd'), '/etc/../../../../../etc/passwd2');
    const u = await resolveUser(rootfs, 'inside');
    expect(u).toMatchObject({ uid: 5, gid: 5, home: '/in' });
    // The host's root entry is not visible.
    await expect(resolveUser(rootfs, 'daemon')).rejects.toMatchObject({ code: 'ERR_USER_NOT_FOUND' });
  });

  it('/etc as a symlink out of the rootfs, relative climbs, and missing files', async () => {
    await symlink('../../../../../../etc', join(rootfs, 'etc2'));
    await mkdir(join(rootfs, 'real'), { recursive: true });
    // rootfs/etc -> /real (absolute, must mean rootfs/real).
    await removeAndLink(join(rootfs, 'etc'), '/real');
    // Nothing in rootfs/real: no passwd at all, so only numeric users resolve.
    expect(await resolveUser(rootfs, '0')).toMatchObject({ uid: 0, gid: 0, home: '/' });
    await expect(resolveUser(rootfs, 'root')).rejects.toMatchObject({ code: 'ERR_USER_NOT_FOUND' });
    await writeFile(join(rootfs, 'real/passwd'), 'r:x:7:8::/r:/bin/sh\n');
    expect(await resolveUser(rootfs, 'r')).toMatchObject({ uid: 7, gid: 8 });
    // rootfs/etc -> ../../../../etc climbs clamp at the rootfs.
    await removeAndLink(join(rootfs, 'etc'), '../../../../../../real');
    expect(await resolveUser(rootfs, 'r')).toMatchObject({ uid: 7 });
  });

  it('a FIFO or a directory as /etc/passwd is refused, not read forever', async () => {
    await mkdir(join(rootfs, 'etc/passwd'));
    await expect(resolveUser(rootfs, 'root')).rejects.toMatchObject({ code: 'ERR_ROOTFS_FILE' });
  });

  it('specFromImage takes the image User and sets HOME from /etc/passwd', async () => {
    await plainDb();
    const spec = await specFromImage({ config: { User: 'app', Cmd: ['x'] } }, rootfs, { hooksDirs: [] });
    expect(spec.process?.user).toEqual({
      uid: 1000,
      gid: 1000,
      umask: 0o022,
      additionalGids: [1000, 10, 29],
    });
    expect(spec.process?.env).toContain('HOME=/home/app');
    const spec2 = await specFromImage({ config: { User: 'app', Cmd: ['x'] } }, rootfs, {
      user: '0',
      env: { HOME: '/h' },
      hooksDirs: [],
    });
    expect(spec2.process?.user.uid).toBe(0);
    expect(spec2.process?.env).toContain('HOME=/h');
  });
});

async function removeAndLink(p: string, target: string) {
  const { rm } = await import('node:fs/promises');
  await rm(p, { recursive: true, force: true });
  await symlink(target, p);
}

describe('withUser', () => {
  it('numeric without a rootfs, names need one, objects are range-checked', async () => {
    const { generateSpec } = await import('./generate.js');
    const { withUser } = await import('./user.js');
    expect((await generateSpec(undefined, withUser('7:8'))).process?.user).toEqual({
      uid: 7,
      gid: 8,
      umask: 0o022,
    });
    expect(
      (await generateSpec(undefined, withUser({ uid: 1, gid: 2, additionalGids: [3] }))).process?.user,
    ).toMatchObject({
      uid: 1,
      gid: 2,
      additionalGids: [3],
    });
    await expect(generateSpec(undefined, withUser('app'))).rejects.toMatchObject({
      code: 'ERR_INVALID_USER',
    });
    await expect(generateSpec(undefined, withUser('4294967296'))).rejects.toMatchObject({
      code: 'ERR_INVALID_USER',
    });
    await expect(generateSpec(undefined, withUser({ uid: 2 ** 32, gid: 0 }))).rejects.toMatchObject({
      code: 'ERR_INVALID_USER',
    });
  });
});
