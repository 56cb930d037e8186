/**
 * Published host ports are held open while the container lives, as podman (rootful, CNI) does:
 * bound by the engine before anything is created, handed to conmon, so a host process cannot take
 * them, also after the program that started the container exited; free again once it is gone.
 * A restart by the exit hook hands the held ports on to the new conmon. Real runc, conmon, CNI.
 * Subnet 10.213.134.0/24 and bridge lpts-nh134 belong to this file; traffic goes only to
 * 127.0.0.1 and this file's containers.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findExitHook, Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';
import { addWww, freePort, networkOpenOptions } from './network-fixtures.js';

const execFileP = promisify(execFile);
const skip =
  containerSkipReason() ??
  (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed') ??
  (findExitHook() ? undefined : 'the exit hook is not built (npm run build)');
if (skip) console.warn(`skipping port reservation tests: ${skip}`);

const DEFAULT = { name: 'lpts-nh-default', subnet: '10.213.134.0/24', bridge: 'lpts-nh134' };

/** Resolves true when the port can be bound on the host (then releases it). */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s: Server = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '0.0.0.0', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(fn: () => Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((e) => {
      last = e;
      return undefined;
    });
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what} not reached in ${ms} ms (last: ${String(last ?? v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** pids holding a listening socket on the port (ss). */
function holders(port: number): string {
  return execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
}

describe.skipIf(skip !== undefined)('published host ports are held like podman', () => {
  let env: TestEnv;
  let lp: Libpod;
  const openOpts = () => networkOpenOptions(env, DEFAULT);

  beforeAll(async () => {
    env = await makeTestEnv('network-ports-hold');
    for (const a of ['httpd', 'sleep']) await symlink('busybox', join(env.rootfs, 'bin', a)).catch(() => {});
    await addWww(env.rootfs, 'held\n');
    lp = await Libpod.open(openOpts());
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      await lp.networks.removeNetwork(DEFAULT.name, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  it('conmon holds the port while the container runs; traffic still reaches the container', async () => {
    const port = await freePort();
    const c = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'bridge',
      ports: [{ containerPort: 80, hostPort: port }],
      command: ['httpd', '-f', '-p', '80', '-h', '/www'],
    });
    await lp.containers.start(c.id);
    const conmon = (await lp.containers.inspect(c.id)).State.ConmonPid;
    expect(await canBind(port)).toBe(false);
    expect(holders(port)).toContain(`pid=${conmon},`);
    expect(await until(() => httpGet(port))).toBe('held\n');
    // conmon alone holds it: the runtime did not pass it into the container
    const pid = (await lp.containers.inspect(c.id)).State.Pid;
    expect(holders(port)).not.toContain(`pid=${pid},`);
    expect(holders(port).match(/pid=/g)).toHaveLength(1);
    await lp.containers.stop(c.id, { timeout: 1 });
    expect(await canBind(port)).toBe(true);
    await lp.containers.remove(c.id);
  });

  it('a port a host process holds fails before anything is created', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen({ host: '0.0.0.0', port: 0 }, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const c = await lp.containers.create({
        rootfs: env.rootfs,
        network: 'bridge',
        ports: [{ containerPort: 80, hostPort: port }],
        command: ['true'],
      });
      await expect(lp.containers.start(c.id)).rejects.toMatchObject({
        code: 'ERR_NETWORK_PORT_IN_USE',
        hostPort: port,
      });
      expect(existsSync(join(env.runRoot, 'netns', c.id))).toBe(false);
      expect(existsSync(join(env.runRoot, 'runtime', c.id))).toBe(false);
      expect((await lp.containers.inspect(c.id)).State.Status).toBe('configured');
      await lp.containers.remove(c.id);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('run --rm twice on one fixed port: the first run frees it before it resolves', async () => {
    const port = await freePort();
    for (let i = 0; i < 2; i++) {
      const r = await lp.containers.run({
        rootfs: env.rootfs,
        network: 'bridge',
        ports: [{ containerPort: 80, hostPort: port }],
        command: ['true'],
        rm: true,
      });
      expect(r.exitCode).toBe(0);
      expect(await canBind(port)).toBe(true);
    }
  });

  it('the hold outlives the program that started the container; a hook restart hands it on', async () => {
    const port = await freePort();
    const code = `import { Libpod } from '@libpod-ts/core';
const lp = await Libpod.open(${JSON.stringify(openOpts())});
const c = await lp.containers.create({ rootfs: ${JSON.stringify(env.rootfs)}, network: 'bridge',
  ports: [{ containerPort: 80, hostPort: ${port} }], restartPolicy: 'on-failure:1',
  command: ['sh', '-c', 'test -e /www/again && exec httpd -f -p 80 -h /www; touch /www/again; sleep 1; exit 3'] });
await lp.containers.start(c.id);
console.log(c.id);
await lp.close();
process.exit(0);`;
    const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', code], {
      cwd: join(__dirname, '..'),
    });
    const id = stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    // the program is gone; its conmon holds the port
    expect(await canBind(port)).toBe(false);
    // the container exits 3 after ~1 s; the exit hook restarts it (no program involved)
    const restarted = await until(
      async () => {
        const ins = await lp.containers.inspect(id);
        if (ins.RestartCount === 1 && ins.State.Status === 'running') return ins;
        throw new Error(`restarts ${ins.RestartCount}, ${ins.State.Status}, error ${ins.State.Error}`);
      },
      30_000,
      'the hook restart',
    );
    const body = await until(() => httpGet(port), 15_000, 'httpd after the restart').catch((e) => {
      const sh = (c: string) => {
        try {
          return execFileSync('sh', ['-c', c], { encoding: 'utf8' });
        } catch (x) {
          return String(x);
        }
      };
      console.error(
        'DIAG',
        JSON.stringify(restarted.State),
        restarted.NetworkSettings.IPAddress,
        sh(`iptables-save -t nat | grep -e ${port} -e DN- -e DNAT`),
        sh(`ss -Hltnp sport = :${port}`),
        sh(`nsenter -t ${restarted.State.Pid} -n ss -ltn; nsenter -t ${restarted.State.Pid} -n ip -4 addr`),
        sh('ip -o link | grep veth; bridge link'),
      );
      throw e;
    });
    expect(body).toBe('held\n');
    expect(await canBind(port)).toBe(false);
    expect(holders(port)).toContain(`pid=${restarted.State.ConmonPid},`);
    await lp.containers.stop(id, { timeout: 1 });
    expect(await until(() => canBind(port), 10_000, 'the port free after stop')).toBe(true);
    await lp.containers.remove(id);
    rmAgain(env);
  });
});

/** The restart marker lives in the shared rootfs; remove it for re-runs. */
function rmAgain(env: TestEnv): void {
  rmSync(join(env.rootfs, 'www', 'again'), { force: true });
}
