/**
 * One real run: the generated config.json (Podman's defaults: namespaces, seccomp, capabilities,
 * masked paths, clamped rlimits, cgroupfs path) accepted by runc on this host.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specFromImage } from './from-image.js';
import { swapLimitSupported } from './opts/linux.js';
import { hostRlimits } from './rlimits.js';
import { makeBusyboxRootfs } from './test-helpers.js';

const RUNC = ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc'].find((p) =>
  existsSync(p),
);
const reason =
  process.getuid?.() !== 0
    ? 'needs root'
    : !RUNC
      ? 'runc not installed'
      : !existsSync('/bin/busybox')
        ? 'no /bin/busybox'
        : undefined;
if (reason) console.log(`skipping the runc run: ${reason}`);

describe.skipIf(reason !== undefined)('runc runs the generated config', () => {
  let dir: string;
  const id = `libpod-ts-spec-${process.pid}-${Date.now().toString(36)}`;
  beforeAll(async () => {
    dir = await makeTempDir('spec-runc');
    // The user-namespace run's root is host uid 100000: it must be able to reach the rootfs.
    await chmod(dir, 0o755);
    await makeBusyboxRootfs(join(dir, 'rootfs'), [
      'sh',
      'true',
      'id',
      'cat',
      'grep',
      'tail',
      'hostname',
      'pwd',
    ]);
    await writeFile(
      join(dir, 'rootfs/etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
    );
    await writeFile(join(dir, 'rootfs/etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');
  });
  afterAll(async () => {
    if (RUNC) await execa(RUNC, ['delete', '-f', id], { reject: false });
    await removeTempDir(dir);
  });

  it('exits 0 with the expected id, limits, capabilities and an lo-only network namespace', async () => {
    const script = [
      'id',
      'ulimit -n',
      'grep -E "^(CapBnd|CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
      'tail -n +3 /proc/net/dev',
      'hostname',
      'pwd',
    ].join('; ');
    const spec = await specFromImage(
      { config: { Cmd: ['/bin/sh', '-c', script], WorkingDir: '/w' } },
      join(dir, 'rootfs'),
      {
        user: 'app',
        capAdd: ['NET_RAW'],
        containerId: id,
        hooksDirs: [],
      },
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    const r = await execa(RUNC!, ['run', '--bundle', dir, id], {
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)');
    const nofile = hostRlimits().get('RLIMIT_NOFILE');
    expect(lines[1]).toBe(String(Math.min(1048576, nofile?.hard ?? 1048576)));
    // Non-root with --cap-add NET_RAW: the bounding set is Podman's default plus NET_RAW, the
    // effective set only NET_RAW (bit 13).
    expect(lines).toContain('CapBnd:\t00000000800425fb');
    expect(lines).toContain('CapEff:\t0000000000002000');
    expect(lines).toContain('Seccomp:\t2');
    const netdevs = lines
      .filter((l) => /^\s*[\w.-]+:\s+\d+\s+\d+/.test(l))
      .map((l) => l.trim().split(':')[0]);
    expect(netdevs).toEqual(['lo']);
    expect(lines).toContain(id.slice(0, 12));
    expect(lines.at(-1)).toBe('/w');
  });

  it('runs OCI hooks loaded from a hooks.d directory (createRuntime and poststop get the state)', async () => {
    const hooksDir = join(dir, 'hooks.d');
    await mkdir(hooksDir, { recursive: true });
    const hook = (stage: string) =>
      JSON.stringify({
        version: '1.0.0',
        hook: { path: '/bin/sh', args: ['sh', '-c', `cat > ${join(dir, `${stage}.json`)}`], timeout: 10 },
        when: { commands: ['^/bin/true$'] },
        stages: [stage],
      });
    await writeFile(join(hooksDir, '10-create.json'), hook('createRuntime'));
    await writeFile(join(hooksDir, '20-stop.json'), hook('poststop'));
    const spec = await specFromImage({ config: { Cmd: ['/bin/true'] } }, join(dir, 'rootfs'), {
      containerId: id,
      hooksDirs: [hooksDir],
    });
    expect(spec.hooks?.createRuntime).toHaveLength(1);
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    const r = await execa(RUNC!, ['run', '--bundle', dir, id], {
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const created = JSON.parse(await readFile(join(dir, 'createRuntime.json'), 'utf8'));
    expect(created).toMatchObject({ id, status: 'creating', bundle: dir });
    const stopped = JSON.parse(await readFile(join(dir, 'poststop.json'), 'utf8'));
    expect(stopped).toMatchObject({ id });
  });

  it('runs in a user namespace with uid/gid mappings', async () => {
    const spec = await specFromImage(
      { config: { Cmd: ['/bin/sh', '-c', 'id; cat /proc/self/uid_map /proc/self/gid_map'] } },
      join(dir, 'rootfs'),
      {
        idMappings: {
          uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
          gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
        },
        containerId: id,
        hooksDirs: [],
      },
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    const r = await execa(RUNC!, ['run', '--bundle', dir, id], {
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['uid=0(root) gid=0(root)', '0 100000 65536', '0 100000 65536']);
  });

  it('accepts a loaded option set: catatonit as PID 1, read-only rootfs, tmpfs, ro bind, limits', async () => {
    const init = ['/usr/libexec/podman/catatonit', '/usr/bin/catatonit'].find((p) => existsSync(p));
    if (!init) {
      console.log('skipping the loaded runc run: catatonit not installed');
      return;
    }
    await writeFile(join(dir, 'data.txt'), 'from the host\n');
    const script = [
      'cat /proc/1/cmdline | tr "\\0" " "; echo',
      'ulimit -n',
      'grep NoNewPrivs /proc/self/status',
      'touch /newfile 2>/dev/null && echo rw || echo ro',
      'touch /scratch/f && echo tmpfs-ok',
      'cat /data/data.txt',
      'echo $FOO',
      'echo x > /dev/xnull && echo dev-ok',
    ].join('; ');
    const spec = await specFromImage(
      { config: { Cmd: ['/bin/sh', '-c', script], Env: ['FOO=bar'] } },
      join(dir, 'rootfs'),
      {
        init: true,
        initPath: init,
        readOnly: true,
        noNewPrivileges: true,
        mounts: [
          { type: 'tmpfs', destination: '/scratch', size: 1 << 20 },
          { type: 'bind', source: join(dir, 'data.txt'), destination: '/data/data.txt', readOnly: true },
        ],
        resources: {
          memory: 64 << 20,
          ...(swapLimitSupported() ? { memorySwap: 128 << 20 } : {}),
          memoryReservation: 32 << 20,
          pidsLimit: 50,
          cpus: 0.5,
          cpuShares: 512,
          cpusetCpus: '0',
        },
        ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
        devices: [{ path: '/dev/null', containerPath: '/dev/xnull', permissions: 'rw' }],
        containerId: id,
        hooksDirs: [],
      },
    );
    await mkdir(join(dir, 'rootfs', 'data'), { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    const r = await execa(RUNC!, ['run', '--bundle', dir, id], {
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      '/run/libpod-ts-init -- /bin/sh -c ' + script + ' ',
      '1024',
      'NoNewPrivs:\t1',
      'ro',
      'tmpfs-ok',
      'from the host',
      'bar',
      'dev-ok',
    ]);
  });
});
