/**
 * Containers on user-defined networks, through the whole stack (core + network package, real
 * runc, conmon, CNI plugins and iptables): name and alias resolution, hosts and resolv.conf,
 * published ports from the host at 127.0.0.1, inspect, `none` and `host` modes, internal
 * networks. Traffic goes only to 127.0.0.1 and to this file's containers; subnets 10.213.11x.0/24
 * and bridges lpts-cn11x belong to this file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';
import { addApplets, addWww, eventually, freePort, networkOpenOptions } from './network-fixtures.js';

const skip =
  containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed');
if (skip) console.warn(`skipping container network name/port tests: ${skip}`);

const DEFAULT = { name: 'lpts-cn-default', subnet: '10.213.110.0/24', bridge: 'lpts-cn110' };
const USER = 'lpts-cn-user';
const OTHER = 'lpts-cn-other';
const INTERNAL = 'lpts-cn-internal';
const APPLETS = ['httpd', 'wget', 'timeout', 'ip', 'grep', 'route', 'ping', 'sed'];

function httpGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(skip !== undefined)('containers on networks: names, ports, modes', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('container-network-names');
    await addApplets(env.rootfs, APPLETS);
    await addWww(env.rootfs, 'hello from httpd\n');
    lp = await Libpod.open(networkOpenOptions(env, DEFAULT));
    await lp.networks.createNetwork({
      name: USER,
      subnets: [{ subnet: '10.213.111.0/24' }],
      bridge: 'lpts-cn111',
    });
    await lp.networks.createNetwork({
      name: OTHER,
      subnets: [{ subnet: '10.213.112.0/24' }],
      bridge: 'lpts-cn112',
    });
    await lp.networks.createNetwork({
      name: INTERNAL,
      subnets: [{ subnet: '10.213.113.0/24' }],
      bridge: 'lpts-cn113',
      internal: true,
    });
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      for (const n of [USER, OTHER, INTERNAL, DEFAULT.name])
        await lp.networks.removeNetwork(n, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  /** Nothing of the container's networking is left: netns, record, cache, IPAM, veth, chain. */
  function expectNoNetworkState(id: string): void {
    const netRun = join(env.runRoot, 'network');
    expect(existsSync(join(env.runRoot, 'netns', id))).toBe(false);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(id);
    expect(existsSync(join(netRun, 'containers', `${id}.json`))).toBe(false);
    const cache = existsSync(join(netRun, 'results')) ? readdirSync(join(netRun, 'results')) : [];
    expect(cache.filter((f) => f.includes(id))).toEqual([]);
    const ipam = join(netRun, 'ipam');
    for (const net of existsSync(ipam) ? readdirSync(ipam) : []) {
      for (const f of readdirSync(join(ipam, net))) {
        if (!/^\d/.test(f)) continue;
        expect(readFileSync(join(ipam, net, f), 'utf8')).not.toContain(id);
      }
    }
  }

  it('two containers on a user network reach each other by name and alias; hosts and resolv.conf are right', async () => {
    const srv = await lp.containers.create({
      rootfs: env.rootfs,
      name: 'web-server',
      network: 'bridge',
      networks: [{ name: USER, aliases: ['www-alias'] }],
      command: ['httpd', '-f', '-p', '80', '-h', '/www'],
    });
    await lp.containers.start(srv.id);
    const srvIns = await lp.containers.inspect(srv.id);
    const srvIp = srvIns.NetworkSettings.Networks[USER]?.IPAddress ?? '';
    expect(srvIp).toMatch(/^10\.213\.111\.\d+$/);
    expect(srvIns.NetworkSettings.IPAddress).toBe(srvIp);
    expect(srvIns.NetworkSettings.Gateway).toBe('10.213.111.1');
    expect(srvIns.NetworkSettings.Networks[USER]?.Aliases).toEqual(['www-alias']);
    expect(srvIns.NetworkSettings.MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);

    const r = await lp.containers.run({
      rootfs: env.rootfs,
      name: 'web-client',
      hostname: 'client-host',
      network: 'bridge',
      networks: [USER],
      dns: ['10.213.111.53'],
      dnsSearch: ['lpts.test'],
      dnsOptions: ['ndots:2'],
      addHosts: ['extra-host:10.213.111.250'],
      command: [
        'sh',
        '-c',
        // busybox 1.35's wget -T segfaults here: timeout bounds it instead.
        'cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; timeout 5 wget -q -O - http://web-server/ && timeout 5 wget -q -O - http://www-alias/',
      ],
      rm: true,
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const [hosts, resolv, body] = r.stdout.split('---\n');
    const line = (name: string) => hosts?.split('\n').find((l) => l.split(/\s+/).slice(1).includes(name));
    expect(line('web-server')).toBe(`${srvIp}\tweb-server www-alias`);
    expect(line('localhost')).toMatch(/^127\.0\.0\.1\t/);
    expect(line('extra-host')).toBe('10.213.111.250\textra-host');
    // its own address, with hostname and name
    expect(line('client-host')).toMatch(/^10\.213\.111\.\d+\tclient-host web-client$/);
    expect(resolv).toBe('search lpts.test\nnameserver 10.213.111.53\noptions ndots:2\n');
    expect(body).toBe('hello from httpd\nhello from httpd\n');
    expectNoNetworkState(r.id);

    // The server's hosts file saw the client come and go (rewritten in place, same bind mount).
    const after = await lp.containers.exec(srv.id, { command: ['cat', '/etc/hosts'] });
    expect(after.stdout).not.toContain('web-client');
    expect(after.stdout).toContain(`${srvIp}\t${srvIns.Config.Hostname} web-server www-alias`);

    // A container on another network does not see it.
    const other = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      networks: [OTHER],
      command: ['sh', '-c', 'grep -c web-server /etc/hosts; true'],
      rm: true,
    });
    expect(other.stdout.trim()).toBe('0');

    await lp.containers.stop(srv.id, { timeout: 0 });
    expectNoNetworkState(srv.id);
    expect((await lp.containers.inspect(srv.id)).NetworkSettings.IPAddress).toBe('');
    await lp.containers.remove(srv.id);
  });

  it('a published port serves httpd at 127.0.0.1 (fixed and auto-chosen host port, in inspect)', async () => {
    const fixed = await freePort();
    const c = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'bridge',
      networks: [USER],
      ports: [
        { containerPort: 80, hostPort: fixed },
        { containerPort: 8080, hostIp: '127.0.0.1' },
      ],
      command: ['sh', '-c', 'httpd -p 8080 -h /www; exec httpd -f -p 80 -h /www'],
    });
    await lp.containers.start(c.id);
    const ins = await lp.containers.inspect(c.id);
    expect(ins.NetworkSettings.Ports['80/tcp']).toEqual([{ HostIp: '', HostPort: String(fixed) }]);
    const auto = Number(ins.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
    expect(ins.NetworkSettings.Ports['8080/tcp']?.[0]?.HostIp).toBe('127.0.0.1');
    expect(auto).toBeGreaterThan(0);
    expect(auto).not.toBe(fixed);
    expect(ins.HostConfig.PortBindings).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: String(fixed) }],
      '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
    });
    expect(await eventually(() => httpGet(fixed))).toEqual({ status: 200, body: 'hello from httpd\n' });
    expect(await eventually(() => httpGet(auto))).toEqual({ status: 200, body: 'hello from httpd\n' });
    await lp.containers.remove(c.id, { force: true });
    expectNoNetworkState(c.id);
    // the DNAT rules are gone with it
    await expect(httpGet(fixed)).rejects.toThrow();
  });

  it('an internal network has no route out; a normal one has its default route', async () => {
    const inner = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      networks: [INTERNAL],
      command: ['sh', '-c', 'ip -4 route'],
      rm: true,
    });
    expect(inner.exitCode).toBe(0);
    expect(inner.stdout).not.toMatch(/default/);
    expect(inner.stdout).toMatch(/^10\.213\.113\.0\/24 dev eth0/m);
    const outer = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      networks: [USER],
      command: ['sh', '-c', 'ip -4 route'],
      rm: true,
    });
    expect(outer.stdout).toMatch(/^default via 10\.213\.111\.1 dev eth0/m);
  });

  it('the default network is used when none is named', async () => {
    const r = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      command: ['sh', '-c', 'ip -4 -o addr show eth0'],
      rm: true,
    });
    expect(r.stdout).toMatch(/inet 10\.213\.110\.\d+\/24/);
  });

  it('hostile hosts, dns and alias values are refused before anything lands in a file', async () => {
    const base = { rootfs: env.rootfs, command: ['true'], network: 'bridge' as const, networks: [USER] };
    await expect(
      lp.containers.create({ ...base, addHosts: ['evil:10.213.111.9\n10.213.111.8 injected'] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    await expect(
      lp.containers.create({ ...base, dns: ['10.213.111.53\nnameserver 10.213.111.54'] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    await expect(lp.containers.create({ ...base, dnsOptions: ['ndots:1 debug'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
    // Aliases are validated by the network package at init: a typed error, nothing left.
    const bad = lp.containers.run({
      ...base,
      networks: [{ name: USER, aliases: ['ok', 'bad\n10.213.111.7 injected'] }],
      rm: true,
    });
    await expect(bad).rejects.toMatchObject({ code: 'ERR_NETWORK_INVALID_INPUT' });
    await expect(
      lp.containers.run({ ...base, networks: ['lpts-cn-no-such-network'], rm: true }),
    ).rejects.toMatchObject({ code: 'ERR_NETWORK_NOT_FOUND' });
    expect(await lp.containers.list({ all: true })).toEqual([]);
    expect(readdirSync(join(env.runRoot, 'netns'))).toEqual([]);
  });

  it('network none: loopback only; network host: the host interfaces', async () => {
    const none = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'none',
      command: ['sh', '-c', 'ls /sys/class/net; ip -4 route | grep -c . ; true'],
      rm: true,
    });
    expect(none.stdout.trim().split(/\s+/)).toEqual(['lo', '0']);
    const host = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'host',
      command: ['ls', '/sys/class/net'],
      rm: true,
    });
    // Compare with interfaces that are not this file's or another test's short-lived veths.
    const hostIfs = readdirSync('/sys/class/net').filter((n) => !n.startsWith('veth'));
    const seen = host.stdout.trim().split(/\s+/);
    for (const n of hostIfs) expect(seen).toContain(n);
    expect(existsSync(join(env.runRoot, 'netns', host.id))).toBe(false);
  });
});
