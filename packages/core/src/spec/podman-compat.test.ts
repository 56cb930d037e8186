/**
 * Field-by-field comparison with what Podman 4.3 generated on this host for the same options
 * (testdata/podman-*.json, captured with `podman create` + `podman init`; see
 * docs/decisions/runtime-spec.md for how, and for the differences we keep on purpose).
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specFromImage } from './from-image.js';
import { hostCapabilities } from './opts/security.js';
import { parseProcLimits } from './rlimits.js';
import { makeBusyboxRootfs } from './test-helpers.js';
import type { Mount, Spec } from './types.js';

const podman = (name: string): Spec =>
  JSON.parse(readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8'));
const byDest = (spec: Spec) => new Map((spec.mounts ?? []).map((m) => [m.destination, m] as [string, Mount]));
// Podman ran without CAP_SYS_RESOURCE and with these limits: the same host as these tests.
const HOST = parseProcLimits(
  'x\nMax processes             96368                96368                processes\nMax open files            20000                20000                files\n',
);

describe('same fields as Podman 4.3', () => {
  let dir: string;
  let rootfs: string;
  beforeAll(async () => {
    dir = await makeTempDir('spec-podman');
    rootfs = join(dir, 'rootfs');
    await makeBusyboxRootfs(rootfs);
    await mkdir(join(dir, 'vol'));
    for (const f of ['hosts', 'hostname', 'containerenv']) await writeFile(join(dir, f), '');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('defaults (podman create --network none --rootfs ... /bin/id)', async () => {
    const ref = podman('podman-default.json');
    const id = ref.linux!.cgroupsPath!.split('libpod-')[1]!;
    const ours = await specFromImage(
      undefined,
      rootfs,
      {
        command: ['/bin/id'],
        containerId: id,
        hooksDirs: [],
        etcFiles: {
          hosts: join(dir, 'hosts'),
          hostname: join(dir, 'hostname'),
          containerEnv: join(dir, 'containerenv'),
        },
      },
      { hostRlimits: HOST },
    );
    expect(ours.process!.args).toEqual(ref.process!.args);
    expect(ours.process!.user).toEqual(ref.process!.user);
    expect(ours.process!.cwd).toEqual(ref.process!.cwd);
    expect(ours.process!.capabilities).toEqual(ref.process!.capabilities);
    expect(ours.hostname).toBe(ref.hostname);
    expect(ours.process!.env).toEqual(expect.arrayContaining(ref.process!.env!));
    expect(ours.linux!.maskedPaths).toEqual(ref.linux!.maskedPaths);
    expect(ours.linux!.readonlyPaths).toEqual(ref.linux!.readonlyPaths);
    expect(ours.linux!.namespaces).toEqual(ref.linux!.namespaces);
    expect(ours.linux!.resources).toEqual(ref.linux!.resources);
    expect(ours.linux!.sysctl).toEqual(ref.linux!.sysctl);
    expect(ours.linux!.cgroupsPath).toBe(ref.linux!.cgroupsPath);
    expect(ours.linux!.seccomp).toEqual(ref.linux!.seccomp);
    const mine = byDest(ours);
    for (const m of ref.mounts!) {
      if (m.type === 'bind') {
        // Host paths differ; the destinations and options are the same (/dev/shm: see below).
        if (m.destination === '/dev/shm') continue;
        expect(mine.get(m.destination)?.options, m.destination).toEqual(m.options);
      } else expect(mine.get(m.destination), m.destination).toEqual(m);
    }
    expect([...mine.keys()].sort()).toEqual(ref.mounts!.map((m) => m.destination).sort());
    // Our /dev/shm is a private tmpfs unless the caller gives a host one (shmPath).
    expect(mine.get('/dev/shm')).toMatchObject({
      type: 'tmpfs',
      options: expect.arrayContaining(['nosuid', 'noexec', 'nodev']),
    });
    // Differences kept on purpose: clamped default rlimits (Podman asked for none here only
    // because containers.conf had default_ulimits = []), the manager annotation.
    expect(ours.process!.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
      { type: 'RLIMIT_NPROC', soft: 96368, hard: 96368 },
    ]);
    expect(ours.process!.env).toContain('container=libpod-ts');
    expect(ours.annotations!['org.opencontainers.image.stopSignal']).toBe(
      ref.annotations!['org.opencontainers.image.stopSignal'],
    );
  });

  it('an image: env order and workdir (podman import --change ENV/WORKDIR)', async () => {
    const ref = podman('podman-image.json');
    const ours = await specFromImage(
      {
        config: {
          Env: ['FOO=bar', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          WorkingDir: '/work',
          Cmd: ['/bin/id'],
        },
      },
      rootfs,
      { hostname: ref.hostname, hooksDirs: [] },
      { hostRlimits: HOST },
    );
    expect(ours.process!.cwd).toBe(ref.process!.cwd);
    const strip = (env: string[]) => env.filter((e) => !e.startsWith('container='));
    expect(new Set(strip(ours.process!.env!))).toEqual(new Set(strip(ref.process!.env!)));
  });

  it('a fully loaded podman create', async () => {
    const ref = podman('podman-full.json');
    const ours = await specFromImage(
      {
        config: {
          Env: ['FOO=bar', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          WorkingDir: '/work',
          Cmd: ['/bin/id'],
        },
      },
      rootfs,
      {
        entrypoint: ['/bin/sh'],
        command: ['-c', 'true'],
        env: { A: '1' },
        user: '1000:1000',
        groups: ['10'],
        hostname: 'myhost',
        readOnly: true,
        capAdd: ['NET_ADMIN'],
        capDrop: ['CHOWN'],
        noNewPrivileges: true,
        mounts: [
          {
            type: 'bind',
            source: join(dir, 'vol'),
            destination: '/data',
            readOnly: true,
            propagation: 'rslave',
          },
          { type: 'tmpfs', destination: '/scratch', size: 1 << 20 },
        ],
        devices: [{ path: '/dev/null', containerPath: '/dev/xnull', permissions: 'rw' }],
        shmSize: 1 << 20,
        resources: {
          memory: 64 << 20,
          memorySwap: 128 << 20,
          cpus: 1.5,
          cpuShares: 512,
          cpusetCpus: '0',
          pidsLimit: 100,
        },
        ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
        init: true,
        sysctls: { 'net.ipv4.ip_forward': '1' },
        hooksDirs: [],
      },
      { hostRlimits: HOST },
    );
    const p = ours.process!;
    const r = ref.process!;
    expect(p.args!.slice(2)).toEqual(r.args!.slice(2));
    expect(p.args![1]).toBe('--');
    expect(p.user).toEqual(r.user);
    expect(p.capabilities).toEqual(r.capabilities);
    expect(p.noNewPrivileges).toBe(true);
    expect(p.env).toEqual(expect.arrayContaining(r.env!.filter((e) => !e.startsWith('container='))));
    expect(ours.root!.readonly).toBe(true);
    expect(p.rlimits![0]).toEqual(r.rlimits![0]);
    // Podman asks for nproc 1048576, which fails here without CAP_SYS_RESOURCE; ours is clamped.
    expect(p.rlimits![1]).toEqual({ type: 'RLIMIT_NPROC', soft: 96368, hard: 96368 });
    expect(ours.linux!.resources).toEqual(ref.linux!.resources);
    expect(ours.linux!.sysctl).toEqual(ref.linux!.sysctl);
    const { fileMode: _a, ...dev } = ours.linux!.devices![0]!;
    const { fileMode: _b, ...refDev } = ref.linux!.devices![0]!;
    expect(dev).toEqual(refDev);
    const mine = byDest(ours);
    for (const d of [
      '/run',
      '/tmp',
      '/var/tmp',
      '/data',
      '/sys',
      '/proc',
      '/dev',
      '/dev/pts',
      '/dev/mqueue',
      '/sys/fs/cgroup',
    ]) {
      const m = ref.mounts!.find((x) => x.destination === d)!;
      expect(mine.get(d)?.options, d).toEqual(m.options);
    }
    expect(mine.get('/scratch')?.options).toEqual([
      'size=1048576',
      'rw',
      'rprivate',
      'nosuid',
      'nodev',
      'tmpcopyup',
    ]);
    expect(ours.linux!.seccomp).toEqual(ref.linux!.seccomp);
  });

  it('privileged', async () => {
    const ref = podman('podman-priv.json');
    const ours = await specFromImage(
      { config: { Cmd: ['/bin/true'] } },
      rootfs,
      { privileged: true, hooksDirs: [] },
      { hostRlimits: HOST },
    );
    // Podman's set is its own bounding set, like ours (this host lacks CAP_SYS_RESOURCE).
    expect(ours.process!.capabilities!.bounding).toEqual(hostCapabilities());
    expect(ours.process!.capabilities!.bounding).toEqual(ref.process!.capabilities!.bounding);
    expect(ours.linux!.seccomp).toBeUndefined();
    expect(ref.linux!.seccomp).toBeUndefined();
    expect(ours.linux!.resources!.devices).toEqual(ref.linux!.resources!.devices);
    expect(byDest(ours).get('/sys')!.options).toContain('rw');
    const paths = new Set(ours.linux!.devices!.map((d) => d.path));
    for (const d of ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'])
      expect(paths.has(d), d).toBe(true);
  });
});
