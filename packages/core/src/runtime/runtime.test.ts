import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BinaryNotFoundError,
  CommandNotExecutableError,
  CommandNotFoundError,
  OciRuntimeError,
} from '../errors.js';
import { findBinary } from './binaries.js';
import { conmonCreateArgs, conmonSupports } from './conmon.js';
import { classifyRuntimeError, OciRuntime } from './oci-runtime.js';

describe('runtime layer', () => {
  it('names the missing binary and its Debian package', () => {
    const err = (() => {
      try {
        findBinary('conmon', { PATH: '/nonexistent' });
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    // conmon may be in a usual dir even with an empty PATH; a made-up name never is.
    expect(() => findBinary('/nonexistent/crun')).toThrow(BinaryNotFoundError);
    try {
      findBinary('/nonexistent/crun');
    } catch (e) {
      expect((e as BinaryNotFoundError).code).toBe('ERR_BINARY_NOT_FOUND');
      expect((e as BinaryNotFoundError).debianPackage).toBe('crun');
      expect((e as Error).message).toContain('apt-get install crun');
    }
    if (err) expect(err).toBeInstanceOf(BinaryNotFoundError);
  });

  it('classifies runtime errors into Podman exit codes', () => {
    const nf = classifyRuntimeError('exec: "nope": executable file not found in $PATH', 'x');
    expect(nf).toBeInstanceOf(CommandNotFoundError);
    expect(nf.exitCode).toBe(127);
    const ne = classifyRuntimeError('exec /etc/passwd: permission denied');
    expect(ne).toBeInstanceOf(CommandNotExecutableError);
    expect(ne.exitCode).toBe(126);
    const other = classifyRuntimeError('cgroup: something broke');
    expect(other).toBeInstanceOf(OciRuntimeError);
    expect(other.exitCode).toBe(125);
    expect(other.code).toBe('ERR_OCI_RUNTIME');
  });

  it('builds conmon arguments like podman, with the exit command last', () => {
    const args = conmonCreateArgs({
      conmonPath: '/usr/bin/conmon',
      runtime: { path: '/usr/sbin/runc', globalArgs: ['--root', '/run/x/runtime'] } as never,
      containerId: 'a'.repeat(64),
      uuid: 'a'.repeat(12),
      name: 'web',
      bundle: '/run/x/containers/a',
      pidFile: '/run/x/containers/a/pidfile',
      exitDir: '/run/x/exits',
      socketDir: '/run/x/socket',
      persistDir: '/var/x/persist',
      conmonPidFile: '/run/x/containers/a/conmon.pid',
      logDriver: 'k8s-file:/var/x/ctr.log',
      terminal: false,
      stdin: true,
      exitCommand: ['/usr/bin/node', '/hook.js', '--root', '/var/x', 'id'],
    });
    const s = args.join(' ');
    expect(s).toContain('--api-version 1 -c aaaa');
    expect(s).toContain('-r /usr/sbin/runc');
    expect(s).toContain('--runtime-arg --root --runtime-arg /run/x/runtime');
    expect(s).toContain('-l k8s-file:/var/x/ctr.log');
    expect(s).toContain(' -i');
    expect(s).not.toContain(' -t');
    expect(s).toContain('--exit-command /usr/bin/node --exit-command-arg /hook.js --exit-command-arg --root');
    expect(args.at(-1)).toBe('id');
  });

  it.skipIf(!existsSync('/usr/sbin/runc') && !existsSync('/usr/bin/runc'))(
    'in-process start/delete fall back to runc, which reports a container it does not know',
    async () => {
      const root = await mkdtemp(join(tmpdir(), 'libpod-ts-runtime-'));
      try {
        const rt = new OciRuntime('runc', root);
        await expect(rt.start('missing')).rejects.toBeInstanceOf(OciRuntimeError);
        // A state dir that is not runc's layout (no live init, no fifo): runc start decides.
        await mkdir(join(root, 'odd'));
        await writeFile(join(root, 'odd', 'state.json'), '{"init_process_pid": 999999999}');
        await expect(rt.start('odd')).rejects.toBeInstanceOf(OciRuntimeError);
        // Hostile ids never reach the path join.
        await expect(rt.start('../etc')).rejects.toBeInstanceOf(OciRuntimeError);
        await rt.deleteStopped('missing');
        // Cgroup paths outside /sys/fs/cgroup are refused: runc delete handles (and rejects) it.
        await writeFile(
          join(root, 'odd', 'state.json'),
          '{"init_process_pid": 999999999, "cgroup_paths": {"x": "/tmp/../etc"}}',
        );
        await rt.deleteStopped('odd').catch(() => {});
        expect(existsSync('/etc')).toBe(true);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  );

  it('reads which options this conmon knows from its --help', async () => {
    let conmon: string;
    try {
      conmon = findBinary('conmon');
    } catch {
      return;
    }
    expect(await conmonSupports(conmon, '--no-sync-log')).toBe(true);
    expect(await conmonSupports(conmon, '--no-such-option')).toBe(false);
    expect(await conmonSupports('/nonexistent/conmon', '--no-sync-log')).toBe(false);
  });
});
