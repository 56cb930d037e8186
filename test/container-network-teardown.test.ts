/**
 * Network teardown through every exit path of a container (real runc, conmon, CNI, iptables):
 * stop, forced rm, the exit hook when no program waits, and a store opened after a crash of the
 * program that started the container (conmon killed too); plus 20 containers set up at once.
 * Subnets 10.213.12x.0/24 and bridges lpts-cn12x belong to this file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { findExitHook, Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';
import { networkOpenOptions } from './network-fixtures.js';

const skip =
  containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed');
if (skip) console.warn(`skipping container network teardown tests: ${skip}`);
const hook = findExitHook();
if (!skip && !hook)
  console.warn('skipping the exit hook test: the hook is not built (npm run build -w @libpod-ts/core)');

const DEFAULT = { name: 'lpts-cnt-default', subnet: '10.213.120.0/24', bridge: 'lpts-cn120' };
const NET = 'lpts-cnt-many';
const REPO = join(__dirname, '..');

async function until<T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

describe.skipIf(skip !== undefined)('container network teardown', () => {
  let env: TestEnv;
  let lp: Libpod;
  const opts = () => networkOpenOptions(env, DEFAULT);

  beforeAll(async () => {
    env = await makeTestEnv('container-network-teardown');
    lp = await Libpod.open(opts());
    await lp.networks.createNetwork({
      name: NET,
      subnets: [{ subnet: '10.213.121.0/24' }],
      bridge: 'lpts-cn121',
    });
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      for (const n of [NET, DEFAULT.name])
        await lp.networks.removeNetwork(n, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  /** What the network side holds for a container: netns mount, record, cache files, IPAM leases, chain. */
  function networkState(id: string): string[] {
    const netRun = join(env.runRoot, 'network');
    const found: string[] = [];
    if (existsSync(join(env.runRoot, 'netns', id))) found.push('netns file');
    if (readFileSync('/proc/self/mounts', 'utf8').includes(id)) found.push('mount');
    if (existsSync(join(netRun, 'containers', `${id}.json`))) found.push('record');
    const cache = existsSync(join(netRun, 'results')) ? readdirSync(join(netRun, 'results')) : [];
    for (const f of cache) if (f.includes(id)) found.push(`cache ${f}`);
    const ipam = join(netRun, 'ipam');
    for (const net of existsSync(ipam) ? readdirSync(ipam) : []) {
      for (const f of readdirSync(join(ipam, net))) {
        if (/^\d/.test(f) && readFileSync(join(ipam, net, f), 'utf8').includes(id)) found.push(`ipam ${f}`);
      }
    }
    return found;
  }

  const bridgePorts = (bridge: string) =>
    existsSync(`/sys/class/net/${bridge}/brif`) ? readdirSync(`/sys/class/net/${bridge}/brif`) : [];

  it('20 containers created concurrently on one network get distinct addresses; rm -f tears all down', async () => {
    const ids = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = await lp.containers.create({
          rootfs: env.rootfs,
          name: `many-${i}`,
          network: 'bridge',
          networks: [NET],
          command: ['sleep', '60'],
        });
        await lp.containers.start(c.id);
        return c.id;
      }),
    );
    const ips = await Promise.all(
      ids.map(async (id) => (await lp.containers.inspect(id)).NetworkSettings.Networks[NET]?.IPAddress ?? ''),
    );
    for (const ip of ips) expect(ip).toMatch(/^10\.213\.121\.\d+$/);
    expect(new Set(ips).size).toBe(20);
    expect(bridgePorts('lpts-cn121')).toHaveLength(20);
    // every container's hosts file knows the 19 others
    const hosts = await lp.containers.exec(ids[0]!, { command: ['cat', '/etc/hosts'] });
    for (let i = 1; i < 20; i++) expect(hosts.stdout).toContain(`${ips[i]}\tmany-${i}`);
    await Promise.all(ids.map((id) => lp.containers.remove(id, { force: true })));
    for (const id of ids) expect(networkState(id)).toEqual([]);
    expect(bridgePorts('lpts-cn121')).toEqual([]);
  });

  it('stop tears the network down; a restart sets it up again', async () => {
    const c = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'bridge',
      command: ['sleep', '60'],
    });
    await lp.containers.start(c.id);
    expect(networkState(c.id)).toContain('record');
    await lp.containers.stop(c.id, { timeout: 0 });
    expect(networkState(c.id)).toEqual([]);
    await lp.containers.start(c.id);
    const ip = (await lp.containers.inspect(c.id)).NetworkSettings.IPAddress;
    expect(ip).toMatch(/^10\.213\.120\.\d+$/);
    await lp.containers.remove(c.id, { force: true });
    expect(networkState(c.id)).toEqual([]);
  });

  it.skipIf(!hook)('the exit hook tears down a container that exits while no program waits', async () => {
    const c = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'bridge',
      command: ['sleep', '0.3'],
    });
    await lp.containers.start(c.id);
    expect(networkState(c.id)).toContain('record');
    // Read the record file directly: calls on lp would record the exit themselves.
    await until(async () => {
      const rec = JSON.parse(await readFile(join(env.root, 'containers', c.id, 'container.json'), 'utf8'));
      return rec.state.status === 'exited' ? true : undefined;
    });
    await until(async () => (networkState(c.id).length === 0 ? true : undefined), 5000);
    await lp.containers.remove(c.id);
  });

  it('a store opened after a crash (program and conmon killed) cleans the dead container network', async () => {
    const script = join(env.dir, 'crash-child.mts');
    await writeFile(
      script,
      `import { Libpod } from '@libpod-ts/core';
const lp = await Libpod.open(${JSON.stringify(opts())});
const c = await lp.containers.create({ rootfs: ${JSON.stringify(env.rootfs)}, name: 'crashed', network: 'bridge', command: ['sleep', '600'] });
await lp.containers.start(c.id);
const i = await lp.containers.inspect(c.id);
console.log(JSON.stringify({ id: c.id, pid: i.State.Pid, conmon: i.State.ConmonPid }));
setInterval(() => {}, 1000);
`,
    );
    let child: ChildProcess | undefined;
    let info: { id: string; pid: number; conmon: number };
    try {
      child = spawn('npx', ['tsx', script], {
        cwd: REPO,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(REPO, 'tsconfig.json') },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const proc = child;
      info = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(
          () => reject(new Error(`the child printed nothing in 30 s: ${out}`)),
          30_000,
        );
        proc.stdout?.on('data', (d) => {
          out += d;
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve(JSON.parse(out.split('\n')[0]!));
          }
        });
        proc.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`the child exited (${code}) early: ${out}`));
        });
      });
    } finally {
      // The crash: the program, conmon and the container process all die at once.
      if (child?.pid) kill(child.pid);
      child?.kill('SIGKILL');
    }
    kill(info.conmon);
    kill(info.pid);
    await until(async () => {
      try {
        process.kill(info.pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    expect(networkState(info.id)).toEqual(
      expect.arrayContaining(['netns file', 'record', expect.stringMatching(/^ipam /)]),
    );
    expect(bridgePorts('lpts-cn120')).toHaveLength(1);
    const lp2 = await Libpod.open(opts());
    try {
      expect(networkState(info.id)).toEqual([]);
      expect(bridgePorts('lpts-cn120')).toEqual([]);
      const ins = await lp2.containers.inspect('crashed');
      expect(ins.State.Status).toBe('exited');
      await lp2.containers.remove('crashed');
    } finally {
      await lp2.close();
    }
  });

  it('a failed init leaves nothing: runtime create failing during the ADDs, an ADD failing after create', async () => {
    const missing = lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      command: ['/no/such/program'],
      rm: true,
    });
    await expect(missing).rejects.toMatchObject({ exitCode: 127 });
    // A host socket holds the port: the portmap side refuses while runc create has already run.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '0.0.0.0', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const held = lp.containers.run({
        rootfs: env.rootfs,
        network: 'bridge',
        ports: [{ containerPort: 80, hostPort: port }],
        command: ['true'],
        rm: true,
      });
      await expect(held).rejects.toMatchObject({ code: 'ERR_NETWORK_PORT_IN_USE' });
    } finally {
      await new Promise((r) => srv.close(r));
    }
    expect(await lp.containers.list({ all: true })).toEqual([]);
    expect(readdirSync(join(env.runRoot, 'netns'))).toEqual([]);
    expect(readdirSync(join(env.runRoot, 'runtime'))).toEqual([]);
    expect(bridgePorts('lpts-cn120')).toEqual([]);
  });

  it('cleanup at open leaves running containers alone', async () => {
    const c = await lp.containers.create({ rootfs: env.rootfs, network: 'bridge', command: ['sleep', '60'] });
    await lp.containers.start(c.id);
    const lp2 = await Libpod.open(opts());
    await lp2.close();
    expect(networkState(c.id)).toContain('netns file');
    expect((await lp.containers.inspect(c.id)).NetworkSettings.IPAddress).toMatch(/^10\.213\.120\./);
    await lp.containers.remove(c.id, { force: true });
    expect(networkState(c.id)).toEqual([]);
  });
});
