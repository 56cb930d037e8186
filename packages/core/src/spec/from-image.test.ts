import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_CAPABILITIES } from './defaults.js';
import { specFromImage } from './from-image.js';
import { blkioWeightSupported } from './opts/linux.js';
import { hostCapabilities } from './opts/security.js';

describe('specFromImage options', () => {
  let dir: string;
  let rootfs: string;
  beforeAll(async () => {
    dir = await makeTempDir('spec-from-image');
    rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });
  const img = { config: { Cmd: ['/bin/true'], Volumes: { '/var/lib/data': {}, '/cache': {} } } };

  it('image volumes: a mount per volume, or tmpfs, or ignored', async () => {
    await expect(specFromImage(img, rootfs, { hooksDirs: [] })).rejects.toMatchObject({
      code: 'ERR_IMAGE_VOLUME_UNMOUNTED',
      destinations: ['/var/lib/data', '/cache'],
    });
    const withVolumes = await specFromImage(img, rootfs, {
      hooksDirs: [],
      mounts: [
        { type: 'volume', source: join(dir, 'v1'), destination: '/var/lib/data/', name: 'v1' },
        { type: 'volume', source: join(dir, 'v2'), destination: '/cache' },
      ],
    });
    expect(withVolumes.mounts?.find((m) => m.destination === '/var/lib/data')).toEqual({
      destination: '/var/lib/data',
      type: 'bind',
      source: join(dir, 'v1'),
      options: ['rw', 'rprivate', 'rbind'],
    });
    const tmpfs = await specFromImage(img, rootfs, { hooksDirs: [], imageVolume: 'tmpfs' });
    expect(
      tmpfs.mounts?.filter((m) => m.type === 'tmpfs' && ['/cache', '/var/lib/data'].includes(m.destination)),
    ).toHaveLength(2);
    const ignored = await specFromImage(img, rootfs, { hooksDirs: [], imageVolume: 'ignore' });
    expect(ignored.mounts?.some((m) => m.destination === '/cache')).toBe(false);
    await expect(
      specFromImage({ config: { Cmd: ['x'], Volumes: { '/../../../../var/lib/kubelet': {} } } }, rootfs, {
        hooksDirs: [],
        imageVolume: 'tmpfs',
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_VOLUME_PATH' });
  });

  it('host namespaces: no hostname with host UTS, no net.* sysctls with host network', async () => {
    const spec = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      containerId: 'abcdef0123456789',
      namespaces: { uts: 'host', network: 'host', pid: { path: '/proc/1/ns/pid' } },
    });
    expect(spec.hostname).toBeUndefined();
    expect(spec.linux?.sysctl).toEqual({});
    expect(spec.linux?.namespaces?.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'pid']);
    expect(spec.linux?.namespaces).toContainEqual({ type: 'pid', path: '/proc/1/ns/pid' });
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
        hooksDirs: [],
        namespaces: { network: 'host' },
        sysctls: { 'net.ipv4.ip_forward': '1' },
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_SPEC_OPTION' });
  });

  it('no command, NUL bytes, bad options and an aborted signal are typed errors', async () => {
    await expect(specFromImage({ config: {} }, rootfs, { hooksDirs: [] })).rejects.toMatchObject({
      code: 'ERR_NO_COMMAND',
    });
    await expect(specFromImage({ config: { Cmd: ['a\0b'] } }, rootfs, {})).rejects.toMatchObject({
      code: 'ERR_INVALID_SPEC_OPTION',
    });
    await expect(specFromImage({ config: { Cmd: ['x'], Env: ['A=\0'] } }, rootfs, {})).rejects.toMatchObject({
      code: 'ERR_INVALID_SPEC_OPTION',
    });
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, { capAdd: ['FLY'] }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
      issues: [{ path: 'capAdd.0', message: 'unknown capability' }],
    });
    const ac = new AbortController();
    ac.abort();
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, {}, { signal: ac.signal }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    });
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, { init: true, initPath: '/nonexistent/init' }),
    ).rejects.toMatchObject({
      code: 'ERR_INIT_NOT_FOUND',
    });
  });

  it('seccomp unconfined, a profile path, and capability changes reach the filter', async () => {
    const unconfined = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      seccompProfile: 'unconfined',
    });
    expect(unconfined.linux?.seccomp).toBeUndefined();
    const admin = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      capAdd: ['SYS_ADMIN'],
    });
    const allowed = admin
      .linux!.seccomp!.syscalls!.filter((s) => s.action === 'SCMP_ACT_ALLOW')
      .flatMap((s) => s.names);
    expect(allowed).toContain('bpf');
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
        hooksDirs: [],
        seccompProfile: join(dir, 'missing.json'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_SECCOMP_PROFILE' });
  });

  it('explicit private UTS keeps the hostname; privileged honours capDrop', async () => {
    const spec = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      hostname: 'h1',
      namespaces: { uts: 'private' },
    });
    expect(spec.hostname).toBe('h1');
    const joined = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      hostname: 'h1',
      namespaces: { uts: { path: '/proc/1/ns/uts' } },
    });
    expect(joined.hostname).toBeUndefined();
    const priv = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      privileged: true,
      capDrop: ['SYS_ADMIN'],
    });
    expect(priv.process?.capabilities?.bounding).not.toContain('CAP_SYS_ADMIN');
    expect(priv.process?.capabilities?.bounding).toContain('CAP_NET_ADMIN');
  });

  it('a capability the host cannot grant is refused up front', async () => {
    const missing = ALL_CAPABILITIES.find((c) => !hostCapabilities().includes(c));
    if (!missing) {
      console.log('skipping: this process holds every capability');
      return;
    }
    await expect(
      specFromImage({ config: { Cmd: ['x'] } }, rootfs, { hooksDirs: [], capAdd: [missing] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_SPEC_OPTION', option: 'capAdd' });
  });

  it('only namespaced sysctls are accepted', async () => {
    const spec = await specFromImage({ config: { Cmd: ['x'] } }, rootfs, {
      hooksDirs: [],
      sysctls: { 'kernel.shmmax': '1000000', 'fs.mqueue.msg_max': '20', 'net.core.somaxconn': '1024' },
    });
    expect(spec.linux?.sysctl).toMatchObject({ 'kernel.shmmax': '1000000', 'net.core.somaxconn': '1024' });
    for (const bad of ['vm.swappiness', 'kernel.panic', 'fs.file-max']) {
      await expect(
        specFromImage({ config: { Cmd: ['x'] } }, rootfs, { hooksDirs: [], sysctls: { [bad]: '1' } }),
        bad,
      ).rejects.toMatchObject({ code: 'ERR_INVALID_SPEC_OPTION' });
    }
  });

  it('a block IO weight on a host without one is refused up front', async () => {
    const opts = { hooksDirs: [], resources: { blkioWeight: 500 } };
    if (blkioWeightSupported()) {
      await expect(specFromImage({ config: { Cmd: ['x'] } }, rootfs, opts)).resolves.toBeDefined();
    } else {
      await expect(specFromImage({ config: { Cmd: ['x'] } }, rootfs, opts)).rejects.toMatchObject({
        code: 'ERR_INVALID_SPEC_OPTION',
        option: 'resources.blkioWeight',
      });
    }
  });

  it('an image whose /dev, /proc or /sys is a symlink is refused', async () => {
    for (const d of ['dev', 'proc', 'sys']) {
      const r = join(dir, `hostile-${d}`);
      await mkdir(r);
      await symlink(`/libpod-ts-hostile-${d}`, join(r, d));
      await expect(specFromImage({ config: { Cmd: ['x'] } }, r, { hooksDirs: [] }), d).rejects.toMatchObject({
        code: 'ERR_ROOTFS_FILE',
        file: `/${d}`,
      });
    }
  });
});
