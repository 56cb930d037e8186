/**
 * `lp.networks.connect/disconnect` on containers of the store (by name or id): the CNI attachment
 * of a running container, what inspect reports, the record's network list (what the next start
 * attaches), and the hosts files of the container and its peers. Real runc, conmon, CNI plugins.
 * Subnets 10.213.132-133.0/24 and bridges lpts-nc13x belong to this file; traffic goes only to
 * this file's containers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';
import { addApplets, addWww, networkOpenOptions, startSleeper } from './network-fixtures.js';

const skip =
  containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed');
if (skip) console.warn(`skipping network connect tests: ${skip}`);

const DEFAULT = { name: 'lpts-nc-default', subnet: '10.213.132.0/24', bridge: 'lpts-nc132' };
const NET2 = 'lpts-nc-two';
const APPLETS = ['httpd', 'wget', 'timeout', 'ip', 'grep', 'sleep'];

describe.skipIf(skip !== undefined)('network connect/disconnect of containers', () => {
  let env: TestEnv;
  let lp: Libpod;
  beforeAll(async () => {
    env = await makeTestEnv('network-connect');
    await addApplets(env.rootfs, APPLETS);
    await addWww(env.rootfs, 'peer\n');
    lp = await Libpod.open(networkOpenOptions(env, DEFAULT));
    await lp.networks.createNetwork({
      name: NET2,
      subnets: [{ subnet: '10.213.133.0/24' }],
      bridge: 'lpts-nc133',
    });
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      for (const n of [NET2, DEFAULT.name])
        await lp.networks.removeNetwork(n, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  const hostsOf = (id: string) => readFileSync(join(env.root, 'containers', id, 'userdata', 'hosts'), 'utf8');

  it('a running container: attached now, inspect, record and both hosts files follow', async () => {
    const peer = await lp.containers.create({
      rootfs: env.rootfs,
      name: 'nc-peer',
      network: 'bridge',
      networks: [NET2],
      command: ['httpd', '-f', '-p', '80', '-h', '/www'],
    });
    await lp.containers.start(peer.id);
    const a = await startSleeper(lp, env.rootfs, { name: 'nc-a', network: 'bridge' });
    expect(Object.keys((await lp.containers.inspect(a.id)).NetworkSettings.Networks)).toEqual([DEFAULT.name]);
    expect(hostsOf(peer.id)).not.toContain('nc-a');

    const att = await lp.networks.connect('nc-a', { name: NET2, aliases: ['nc-a-alias'] });
    expect(att.addresses[0]).toMatch(/^10\.213\.133\.\d+\/24$/);
    const ip = att.addresses[0]!.split('/')[0]!;
    const ins = await lp.containers.inspect(a.id);
    expect(Object.keys(ins.NetworkSettings.Networks).sort()).toEqual([DEFAULT.name, NET2].sort());
    expect(ins.NetworkSettings.Networks[NET2]).toMatchObject({ IPAddress: ip, Aliases: ['nc-a-alias'] });
    // the peer's hosts file learnt the new name and alias; the container's own lists the peer
    expect(hostsOf(peer.id)).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\s.*nc-a\\b.*nc-a-alias`, 'm'));
    expect(hostsOf(a.id)).toContain('nc-peer');
    const got = await lp.containers.exec(a.id, {
      command: [
        'sh',
        '-c',
        'ip -4 -o addr show eth1 | grep -o "inet [0-9.]*"; timeout 5 wget -q -O - http://nc-peer/',
      ],
    });
    expect(got.stdout).toBe(`inet ${ip}\npeer\n`);

    await expect(lp.networks.connect(a.id, NET2)).rejects.toMatchObject({
      code: 'ERR_NETWORK_INVALID_INPUT',
    });

    await lp.networks.disconnect(a.id, NET2);
    const after = await lp.containers.inspect(a.id);
    expect(Object.keys(after.NetworkSettings.Networks)).toEqual([DEFAULT.name]);
    expect(hostsOf(peer.id)).not.toContain('nc-a');
    expect(hostsOf(a.id)).not.toContain('nc-peer');
    const gone = await lp.containers.exec(a.id, { command: ['sh', '-c', 'ls /sys/class/net'] });
    expect(gone.stdout.trim().split(/\s+/).sort()).toEqual(['eth0', 'lo']);
    await expect(lp.networks.disconnect(a.id, NET2)).rejects.toMatchObject({
      code: 'ERR_NETWORK_NOT_ATTACHED',
    });

    // a restart keeps what connect/disconnect left in the record
    await lp.networks.connect(a.id, NET2);
    await lp.containers.stop(a.id, { timeout: 1 });
    expect((await lp.containers.inspect(a.id)).NetworkSettings.Networks[NET2]?.IPAddress).toBe('');
    await lp.containers.start(a.id);
    const restarted = await lp.containers.inspect(a.id);
    expect(Object.keys(restarted.NetworkSettings.Networks).sort()).toEqual([DEFAULT.name, NET2].sort());
    expect(restarted.NetworkSettings.Networks[NET2]?.IPAddress).toMatch(/^10\.213\.133\.\d+$/);
    expect(hostsOf(peer.id)).toContain('nc-a');
    // podman's network events: connect, disconnect, connect (the refused ones wrote none)
    const netEvents: string[] = [];
    for await (const e of lp.events.read({ type: ['network'], container: ['nc-a'] }))
      netEvents.push(`${e.action} ${e.name} ${e.attributes.network}`);
    expect(netEvents).toEqual([`connect nc-a ${NET2}`, `disconnect nc-a ${NET2}`, `connect nc-a ${NET2}`]);

    for (const id of [a.id, peer.id]) await lp.containers.remove(id, { force: true });
  });

  it('disconnected from its last network: loopback only, also after a restart, until a connect', async () => {
    const ifaces = async (id: string) =>
      (await lp.containers.exec(id, { command: ['ls', '/sys/class/net'] })).stdout.trim().split(/\s+/).sort();
    const c = await startSleeper(lp, env.rootfs, { name: 'nc-last', network: 'bridge' });
    expect(await ifaces(c.id)).toEqual(['eth0', 'lo']);
    await lp.networks.disconnect('nc-last', DEFAULT.name);
    expect(await ifaces(c.id)).toEqual(['lo']);
    expect((await lp.containers.inspect(c.id)).NetworkSettings.Networks).toEqual({});

    // the next start does not fall back to the default network: its own netns, lo only (up)
    await lp.containers.stop(c.id, { timeout: 1 });
    expect((await lp.containers.inspect(c.id)).NetworkSettings.Networks).toEqual({});
    await lp.containers.start(c.id);
    const ins = await lp.containers.inspect(c.id);
    expect(ins.HostConfig.NetworkMode).toBe('bridge');
    expect(ins.NetworkSettings.Networks).toEqual({});
    expect(ins.NetworkSettings.IPAddress).toBe('');
    expect(await ifaces(c.id)).toEqual(['lo']);
    const lo = await lp.containers.exec(c.id, {
      command: ['sh', '-c', 'ip -o addr show lo | grep -o "inet [0-9.]*"'],
    });
    expect(lo.stdout).toBe('inet 127.0.0.1\n');

    // a connect attaches to that netns now and is what the following starts attach
    const att = await lp.networks.connect(c.id, NET2);
    expect(att.ifName).toBe('eth0');
    expect(att.addresses[0]).toMatch(/^10\.213\.133\.\d+\/24$/);
    expect(Object.keys((await lp.containers.inspect(c.id)).NetworkSettings.Networks)).toEqual([NET2]);
    await lp.containers.stop(c.id, { timeout: 1 });
    await lp.containers.start(c.id);
    expect(Object.keys((await lp.containers.inspect(c.id)).NetworkSettings.Networks)).toEqual([NET2]);
    expect(await ifaces(c.id)).toEqual(['eth0', 'lo']);

    // the same for a container that is not running: only the list changes
    await lp.containers.stop(c.id, { timeout: 1 });
    await lp.networks.disconnect(c.id, NET2);
    await lp.containers.start(c.id);
    expect(await ifaces(c.id)).toEqual(['lo']);
    expect((await lp.containers.inspect(c.id)).NetworkSettings.Networks).toEqual({});
    await lp.containers.remove(c.id, { force: true });
  });

  it('a container that is not running: only its network list changes; refusals are typed', async () => {
    const c = await lp.containers.create({
      rootfs: env.rootfs,
      name: 'nc-idle',
      network: 'bridge',
      command: ['true'],
    });
    const att = await lp.networks.connect('nc-idle', NET2);
    expect(att.addresses).toEqual([]);
    const ins = await lp.containers.inspect(c.id);
    expect(Object.keys(ins.NetworkSettings.Networks).sort()).toEqual([DEFAULT.name, NET2].sort());
    await lp.networks.disconnect('nc-idle', DEFAULT.name);
    expect(Object.keys((await lp.containers.inspect(c.id)).NetworkSettings.Networks)).toEqual([NET2]);
    await expect(lp.networks.connect('nc-idle', 'lpts-nc-missing')).rejects.toMatchObject({
      code: 'ERR_NETWORK_NOT_FOUND',
    });
    const none = await lp.containers.create({ rootfs: env.rootfs, command: ['true'] });
    await expect(lp.networks.connect(none.id, NET2)).rejects.toMatchObject({
      code: 'ERR_NETWORK_INVALID_INPUT',
    });
    for (const id of [c.id, none.id]) await lp.containers.remove(id, { force: true });
  });
});
