import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSpec } from './defaults.js';
import { specFromImage } from './from-image.js';
import { generateSpec } from './generate.js';
import { blkioWeightSupported, withBlkioWeight, withMemoryLimit, withPidsLimit } from './opts/linux.js';
import { withReadOnlyRootfs } from './opts/mounts.js';
import { withArgs } from './opts/process.js';
import { withDefaultSeccomp } from './opts/security.js';
import {
  loadRuntimeSpecValidator,
  makeBusyboxRootfs,
  runtimeSchemaDir,
  type Validate,
} from './test-helpers.js';

const loaded = loadRuntimeSpecValidator();
const missing = typeof loaded === 'function' ? undefined : loaded.missing;
if (missing) console.log(`skipping runtime-spec schema tests: ${missing}`);
const validate = (typeof loaded === 'function' ? loaded : () => []) as Validate;

describe.skipIf(missing !== undefined)('config.json against the runtime-spec schema', () => {
  let dir: string;
  let rootfs: string;
  beforeAll(async () => {
    dir = await makeTempDir('spec-schema');
    rootfs = join(dir, 'rootfs');
    await makeBusyboxRootfs(rootfs);
    await writeFile(
      join(rootfs, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
    );
    await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');
    for (const f of ['hosts', 'resolv.conf', 'hostname', 'containerenv']) await writeFile(join(dir, f), '');
    await mkdir(join(dir, 'data'));
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('the runtime-spec examples: good ones pass, bad ones fail', () => {
    const ex = join(runtimeSchemaDir(), 'examples');
    for (const f of readdirSync(join(ex, 'good'))) {
      const json = JSON.parse(readFileSync(join(ex, 'good', f), 'utf8'));
      expect(validate(json), `good/${f}`).toEqual([]);
    }
    for (const f of readdirSync(join(ex, 'bad'))) {
      const text = readFileSync(join(ex, 'bad', f), 'utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        continue; // invalid-json.json: not JSON at all, which is its point
      }
      expect(validate(json).length, `bad/${f}`).toBeGreaterThan(0);
    }
  });

  it('the defaults (with the default seccomp profile) are valid', async () => {
    const spec = await generateSpec(undefined, withArgs('/bin/true'), withDefaultSeccomp());
    expect(validate(spec)).toEqual([]);
    expect(validate(defaultSpec())).toEqual([]);
  });

  it('composed opts are valid and do not touch the base', async () => {
    const base = defaultSpec();
    const before = JSON.stringify(base);
    const spec = await generateSpec(
      base,
      withArgs('sh'),
      withMemoryLimit(64 << 20),
      withReadOnlyRootfs(),
      withPidsLimit(10),
      withBlkioWeight(300),
    );
    expect(JSON.stringify(base)).toBe(before);
    expect(spec.linux?.resources?.memory?.limit).toBe(64 << 20);
    expect(spec.root?.readonly).toBe(true);
    expect(validate(spec)).toEqual([]);
  });

  it('specFromImage with defaults is valid', async () => {
    const spec = await specFromImage({ config: { Cmd: ['/bin/true'] } }, rootfs, { hooksDirs: [] });
    expect(validate(spec)).toEqual([]);
  });

  it('specFromImage with a fully loaded option set is valid', async () => {
    const spec = await specFromImage(
      {
        config: {
          Entrypoint: ['/bin/sh', '-c'],
          Cmd: ['id'],
          Env: ['FOO=bar', 'PATH=/bin'],
          WorkingDir: '/work/dir',
          User: 'app',
          Labels: { a: 'b' },
          StopSignal: 'SIGINT',
          ExposedPorts: { '80/tcp': {} },
          Volumes: { '/vol': {} },
        },
      },
      rootfs,
      {
        command: ['echo hi'],
        env: { A: '1' },
        user: 'app:wheel',
        groups: ['root', '4242'],
        tty: true,
        hostname: 'box',
        domainname: 'example.test',
        annotations: { 'com.example.x': 'y' },
        readOnly: true,
        capAdd: ['NET_ADMIN', 'sys_ptrace'],
        capDrop: ['CAP_CHOWN'],
        noNewPrivileges: true,
        umask: 0o027,
        oomScoreAdj: 100,
        mounts: [
          {
            type: 'bind',
            source: join(dir, 'data'),
            destination: '/data',
            readOnly: true,
            propagation: 'rslave',
          },
          { type: 'tmpfs', destination: '/scratch', size: 1 << 20, mode: 0o700 },
          { type: 'volume', source: join(dir, 'data'), destination: '/vol', name: 'v1' },
        ],
        devices: [{ path: '/dev/null', containerPath: '/dev/xnull', permissions: 'rw' }],
        shmSize: 1 << 20,
        resources: {
          memory: 64 << 20,
          memorySwap: 128 << 20,
          memoryReservation: 32 << 20,
          cpus: 1.5,
          cpuShares: 512,
          cpusetCpus: '0',
          cpusetMems: '0',
          pidsLimit: 100,
          ...(blkioWeightSupported() ? { blkioWeight: 500 } : {}),
        },
        ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
        init: true,
        initPath: '/bin/busybox',
        sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '65536' },
        namespaces: {
          pid: 'private',
          network: { path: '/proc/1/ns/net' },
          ipc: 'private',
          cgroup: 'private',
        },
        idMappings: {
          uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
          gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
        },
        hooksDirs: [],
        containerId: 'a'.repeat(64),
        etcFiles: {
          hosts: join(dir, 'hosts'),
          resolvConf: join(dir, 'resolv.conf'),
          hostname: join(dir, 'hostname'),
          containerEnv: join(dir, 'containerenv'),
        },
      },
    );
    expect(validate(spec)).toEqual([]);
    expect(spec.process?.args).toEqual(['/run/libpod-ts-init', '--', '/bin/sh', '-c', 'echo hi']);
    expect(spec.process?.cwd).toBe('/work/dir');
    expect(spec.linux?.namespaces).toContainEqual({ type: 'network', path: '/proc/1/ns/net' });
    expect(spec.linux?.namespaces).toContainEqual({ type: 'user' });
    expect(spec.linux?.cgroupsPath).toBe(`/libpod_parent/libpod-${'a'.repeat(64)}`);
    expect(spec.hostname).toBe('box');
  });

  it('a privileged spec is valid', async () => {
    const spec = await specFromImage({ config: { Cmd: ['/bin/true'] } }, rootfs, {
      privileged: true,
      hooksDirs: [],
    });
    expect(validate(spec)).toEqual([]);
    expect(spec.linux?.seccomp).toBeUndefined();
    expect(spec.linux?.maskedPaths).toEqual([]);
    expect(spec.linux?.devices?.some((d) => d.path === '/dev/null')).toBe(true);
  });
});
