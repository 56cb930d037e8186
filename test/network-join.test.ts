/**
 * Network modes that join a namespace someone else made: `container:<id|name>` (the target's
 * netns, its /etc/hosts and /etc/resolv.conf shared as podman does) and `ns:<path>` (an existing
 * netns by path; here one the test makes with `ip netns add` and deletes). Real runc, conmon and
 * CNI plugins. Subnet 10.213.130.0/24 and bridge lpts-nj130 belong to this file; traffic goes
 * only to this file's containers.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';
import { addApplets, eventually, networkOpenOptions, startSleeper } from './network-fixtures.js';

const skip =
  containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed');
if (skip) console.warn(`skipping network join tests: ${skip}`);

const DEFAULT = { name: 'lpts-nj-default', subnet: '10.213.130.0/24', bridge: 'lpts-nj130' };
const NETNS = `lpts-nj-${process.pid}`;
const APPLETS = ['httpd', 'wget', 'timeout', 'ip', 'grep'];

describe.skipIf(skip !== undefined)('network container:<id> and ns:<path>', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('network-join');
    await addApplets(env.rootfs, APPLETS);
    lp = await Libpod.open(networkOpenOptions(env, DEFAULT));
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      await lp.networks.removeNetwork(DEFAULT.name, { force: true }).catch(() => {});
      await lp.close();
    }
    try {
      execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
    } catch {}
    await env?.cleanup();
  });

  /** Runs a command in a new container joined to `network`; stdout, exit code. */
  async function runIn(network: string, script: string) {
    const r = await lp.containers.run({
      rootfs: env.rootfs,
      network,
      command: ['sh', '-c', script],
      rm: true,
    });
    return { out: r.stdout, code: r.exitCode, err: r.stderr };
  }

  it('container:<name> joins a bridge container: same address, its localhost, its hosts and resolv.conf', async () => {
    const target = await lp.containers.create({
      rootfs: env.rootfs,
      name: 'nj-target',
      network: 'bridge',
      dnsSearch: ['nj.example'],
      addHosts: ['nj-extra:10.213.130.250'],
      // listens on the namespace's loopback only: reachable from a joiner, not from the bridge
      command: ['httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/etc'],
    });
    await lp.containers.start(target.id);
    const ip = (await lp.containers.inspect(target.id)).NetworkSettings.IPAddress;
    expect(ip).toMatch(/^10\.213\.130\.\d+$/);

    const joiner = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'container:nj-target',
      command: ['sleep', '60'],
    });
    expect((await lp.containers.inspect(joiner.id)).HostConfig.NetworkMode).toBe(`container:${target.id}`);
    await lp.containers.start(joiner.id);

    const { stdout, exitCode } = await eventually(async () => {
      const r = await lp.containers.run({
        rootfs: env.rootfs,
        network: `container:${target.id.slice(0, 12)}`,
        command: [
          'sh',
          '-c',
          'ip -4 -o addr show eth0 | grep -o "inet [0-9.]*"; echo @@; timeout 5 wget -q -O - http://127.0.0.1:8080/hostname; echo @@; cat /etc/hosts; echo @@; cat /etc/resolv.conf',
        ],
        rm: true,
      });
      if (!r.stdout.includes(target.id.slice(0, 12))) throw new Error(`httpd not answering yet: ${r.stderr}`);
      return r;
    });
    expect(exitCode).toBe(0);
    const [addr, hostname, hosts, resolv] = stdout.split('@@\n');
    expect(addr).toContain(`inet ${ip}`);
    // the target's hostname file, served by the target's httpd over the shared loopback
    expect(hostname).toBe(`${target.id.slice(0, 12)}\n`);
    // the target's files, byte for byte
    const userdata = join(env.root, 'containers', target.id, 'userdata');
    expect(hosts).toBe(readFileSync(join(userdata, 'hosts'), 'utf8'));
    expect(hosts).toContain('nj-extra');
    expect(resolv).toBe(readFileSync(join(userdata, 'resolv.conf'), 'utf8'));
    expect(resolv).toContain('nj.example');

    // the joiner's removal leaves the target's network alone
    await lp.containers.remove(joiner.id, { force: true });
    expect((await lp.containers.inspect(target.id)).NetworkSettings.IPAddress).toBe(ip);
    await lp.containers.stop(target.id, { timeout: 1 });
    await lp.containers.remove(target.id);
  });

  it('container:<id> joins a none container (the namespace of its process)', async () => {
    const target = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['httpd', '-f', '-p', '127.0.0.1:8081', '-h', '/etc'],
    });
    await lp.containers.start(target.id);
    const r = await eventually(async () => {
      const x = await runIn(
        `container:${target.id}`,
        'timeout 5 wget -q -O - http://127.0.0.1:8081/hostname',
      );
      if (x.code !== 0) throw new Error(`wget failed: ${x.err}`);
      return x;
    });
    expect(r.out.trim()).toBe(target.id.slice(0, 12));
    await lp.containers.stop(target.id, { timeout: 1 });
    await lp.containers.remove(target.id);
  });

  it('refuses a missing or stopped target, and options a joined netns cannot have', async () => {
    await expect(
      lp.containers.create({ rootfs: env.rootfs, network: 'container:nj-nope' }),
    ).rejects.toMatchObject({ code: 'ERR_CONTAINER_NOT_FOUND' });
    const stopped = await lp.containers.create({ rootfs: env.rootfs, name: 'nj-stopped', command: ['true'] });
    const joiner = await lp.containers.create({
      rootfs: env.rootfs,
      network: 'container:nj-stopped',
      command: ['true'],
    });
    await expect(lp.containers.start(joiner.id)).rejects.toMatchObject({
      code: 'ERR_CONTAINER_NOT_RUNNING',
      containerId: stopped.id,
    });
    for (const bad of [
      { ports: [{ containerPort: 80 }] },
      { networks: ['x'] },
      { dns: ['1.1.1.1'] },
      { addHosts: ['a:1.2.3.4'] },
    ]) {
      await expect(
        lp.containers.create({ rootfs: env.rootfs, network: 'container:nj-stopped', ...bad }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    }
    await expect(
      lp.containers.create({ rootfs: env.rootfs, network: 'ns:/run/x', ports: [{ containerPort: 80 }] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    await lp.containers.remove(joiner.id, { force: true });
    await lp.containers.remove(stopped.id, { force: true });
  });

  it('a target with joiners cannot be removed (even with force); stopping it is allowed', async () => {
    const target = await startSleeper(lp, env.rootfs, { name: 'nj-dep-target', network: 'bridge' });
    const running = await startSleeper(lp, env.rootfs, { network: 'container:nj-dep-target' });
    const created = await lp.containers.create({
      rootfs: env.rootfs,
      network: `container:${target.id}`,
      command: ['true'],
    });
    expect((await lp.containers.inspect(running.id)).Dependencies).toEqual([target.id]);
    expect((await lp.containers.inspect(target.id)).Dependencies).toEqual([]);
    for (const force of [false, true]) {
      const err = await lp.containers.remove('nj-dep-target', { force }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_CONTAINER_HAS_DEPENDENTS', containerId: target.id });
      expect([...(err as { dependents: string[] }).dependents].sort()).toEqual(
        [running.id, created.id].sort(),
      );
      expect((err as Error).message).toContain(running.id.slice(0, 12));
    }
    // nothing happened to it: still running, still networked
    expect((await lp.containers.inspect(target.id)).State.Status).toBe('running');

    const ifaces = async () =>
      (await lp.containers.exec(running.id, { command: ['ls', '/sys/class/net'] })).stdout
        .trim()
        .split(/\s+/)
        .sort();
    expect(await ifaces()).toEqual(['eth0', 'lo']);
    // stopping the target is allowed: its interface goes (its address is free again), also
    // from the namespace the running joiner keeps alive; a joiner cannot start into it then
    await lp.containers.stop(target.id, { timeout: 1 });
    expect(await ifaces()).toEqual(['lo']);
    await expect(lp.containers.start(created.id)).rejects.toMatchObject({
      code: 'ERR_CONTAINER_NOT_RUNNING',
      containerId: target.id,
    });
    // an exited dependent still counts
    await lp.containers.stop(running.id, { timeout: 1 });
    await lp.containers.remove(created.id);
    await expect(lp.containers.remove(target.id, { force: true })).rejects.toMatchObject({
      code: 'ERR_CONTAINER_HAS_DEPENDENTS',
      dependents: [running.id],
    });
    await lp.containers.remove(running.id);
    await lp.containers.remove(target.id);
    await expect(lp.containers.inspect(target.id)).rejects.toMatchObject({ code: 'ERR_CONTAINER_NOT_FOUND' });
  });

  it('ns:<path> joins an existing namespace (ip netns add) and leaves it in place', async () => {
    execFileSync('ip', ['netns', 'add', NETNS]);
    try {
      execFileSync('ip', ['-n', NETNS, 'link', 'add', 'lptsnj0', 'type', 'veth', 'peer', 'name', 'lptsnj1']);
      execFileSync('ip', ['-n', NETNS, 'addr', 'add', '10.213.131.7/24', 'dev', 'lptsnj0']);
      execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lptsnj0', 'up']);
      const path = `/run/netns/${NETNS}`;
      const r = await runIn(
        `ns:${path}`,
        'ls /sys/class/net; ip -4 -o addr show lptsnj0 | grep -o "inet [0-9.]*"',
      );
      expect(r.err).toBe('');
      expect(r.out).toMatch(/lptsnj0/);
      expect(r.out).toContain('inet 10.213.131.7');
      // still there, still ours to delete
      expect(
        execFileSync('ip', ['-n', NETNS, '-o', 'link', 'show', 'lptsnj0'], { encoding: 'utf8' }),
      ).toContain('lptsnj0');
      await expect(
        lp.containers.create({ rootfs: env.rootfs, network: `ns:/run/netns/${NETNS}-missing` }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
      await expect(
        lp.containers.create({ rootfs: env.rootfs, network: 'ns:/etc/hostname' }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    } finally {
      execFileSync('ip', ['netns', 'del', NETNS]);
    }
    expect(existsSync(`/run/netns/${NETNS}`)).toBe(false);
  });
});
