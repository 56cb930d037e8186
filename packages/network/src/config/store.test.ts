import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidConfigListError,
  InvalidNetworkInputError,
  NetworkExistsError,
  NetworkNotFoundError,
  NetworkReadOnlyError,
  SubnetOverlapError,
} from '../errors.js';
import { hostRoutes } from '../host/routes.js';
import { formatCidr } from '../ip/cidr.js';
import { ConfigStore, loadConfFile } from './store.js';

let dir: string;
let extra: string;
let store: ConfigStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lpts-netconf-'));
  extra = await mkdtemp(join(tmpdir(), 'lpts-netconf-ro-'));
  store = new ConfigStore({
    configDir: dir,
    extraConfigDirs: [extra],
    defaultNetwork: { name: 'podman', subnet: '10.213.240.0/24', bridge: 'lpts-def0' },
  });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(extra, { recursive: true, force: true });
});

describe('network definitions', () => {
  it('writes a podman-4-shaped conflist with cniVersion 1.0.0', async () => {
    const n = await store.create({
      name: 'lpts-a',
      subnets: [{ subnet: '10.213.1.0/24', range: '10.213.1.128/25' }],
      mtu: 1400,
      labels: { app: 'x' },
      bridge: 'lpts-br-a',
    });
    const onDisk = JSON.parse(await readFile(join(dir, 'lpts-a.conflist'), 'utf8'));
    expect(onDisk.cniVersion).toBe('1.0.0');
    expect(onDisk.args.podman_labels).toEqual({ app: 'x' });
    expect(onDisk.args.podman_options).toEqual({ mtu: '1400' });
    expect(onDisk.plugins.map((p: { type: string }) => p.type)).toEqual([
      'bridge',
      'portmap',
      'firewall',
      'tuning',
    ]);
    expect(onDisk.plugins[0]).toMatchObject({
      bridge: 'lpts-br-a',
      isGateway: true,
      ipMasq: true,
      mtu: 1400,
      hairpinMode: true,
      capabilities: { ips: true },
      ipam: {
        type: 'host-local',
        routes: [{ dst: '0.0.0.0/0' }],
        ranges: [
          [
            {
              subnet: '10.213.1.0/24',
              gateway: '10.213.1.1',
              rangeStart: '10.213.1.129',
              rangeEnd: '10.213.1.254',
            },
          ],
        ],
      },
    });
    expect(onDisk.plugins[1]).toEqual({ type: 'portmap', capabilities: { portMappings: true } });
    expect(n.info).toMatchObject({
      name: 'lpts-a',
      driver: 'bridge',
      networkInterface: 'lpts-br-a',
      internal: false,
      dnsEnabled: true,
    });
    expect(n.info.id).toMatch(/^[0-9a-f]{64}$/);
    expect((await store.get('lpts-a')).info.subnets).toEqual([
      {
        subnet: '10.213.1.0/24',
        gateway: '10.213.1.1',
        leaseRange: { startIp: '10.213.1.129', endIp: '10.213.1.254' },
      },
    ]);
  });

  it('writes internal and dual-stack networks without gateway, routes or masquerade', async () => {
    const n = await store.create({
      name: 'lpts-int',
      internal: true,
      subnets: [{ subnet: '10.213.2.0/24' }, { subnet: 'fd00:213:2::/64' }],
      bridge: 'lpts-br-int',
    });
    const bridge = n.conf.plugins[0] as Record<string, unknown>;
    expect(bridge.isGateway).toBe(false);
    expect(bridge.ipMasq).toBeUndefined();
    expect((bridge.ipam as Record<string, unknown>).routes).toBeUndefined();
    expect(n.info.ipv6Enabled).toBe(true);
    expect(n.info.internal).toBe(true);
    expect(n.info.subnets.every((s) => s.gateway === undefined)).toBe(true);
  });

  it('picks a free subnet and bridge name when none is given', async () => {
    const a = await store.create({ name: 'lpts-auto1' });
    const b = await store.create({ name: 'lpts-auto2', ipv6: true });
    expect(a.info.subnets[0]!.subnet).not.toBe(b.info.subnets[0]!.subnet);
    expect(b.info.subnets.some((s) => s.subnet.includes(':'))).toBe(true);
    expect(a.info.networkInterface).toMatch(/^cni-podman\d+$/);
    expect(a.info.networkInterface).not.toBe(b.info.networkInterface);
  });

  it('writes macvlan networks and requires an existing parent', async () => {
    const n = await store.create({
      name: 'lpts-mv',
      driver: 'macvlan',
      parent: 'lo',
      subnets: [{ subnet: '10.213.3.0/24' }],
    });
    expect(n.conf.plugins).toHaveLength(1);
    expect(n.conf.plugins[0]).toMatchObject({ type: 'macvlan', master: 'lo' });
    await expect(
      store.create({ name: 'lpts-mv2', driver: 'macvlan', subnets: [{ subnet: '10.213.4.0/24' }] }),
    ).rejects.toBeInstanceOf(InvalidNetworkInputError);
    await expect(
      store.create({
        name: 'lpts-mv3',
        driver: 'macvlan',
        parent: 'nosuchif0',
        subnets: [{ subnet: '10.213.4.0/24' }],
      }),
    ).rejects.toMatchObject({ code: 'ERR_NETWORK_INVALID_INPUT', field: 'parent' });
  });

  it('refuses duplicates, overlaps and malformed input with typed errors', async () => {
    await store.create({ name: 'lpts-b', subnets: [{ subnet: '10.213.8.0/24' }], bridge: 'lpts-br-b' });
    await expect(
      store.create({ name: 'lpts-b', subnets: [{ subnet: '10.213.9.0/24' }] }),
    ).rejects.toBeInstanceOf(NetworkExistsError);
    await expect(
      store.create({ name: 'lpts-c', subnets: [{ subnet: '10.213.8.128/25' }] }),
    ).rejects.toMatchObject({
      code: 'ERR_NETWORK_SUBNET_OVERLAP',
      subnet: '10.213.8.128/25',
    });
    await expect(
      store.create({ name: 'lpts-c', subnets: [{ subnet: '10.213.0.0/16' }] }),
    ).rejects.toBeInstanceOf(SubnetOverlapError);
    await expect(
      store.create({ name: 'lpts-c', subnets: [{ subnet: '10.213.10.0/24' }], bridge: 'lpts-br-b' }),
    ).rejects.toBeInstanceOf(NetworkExistsError);
    const bad: [unknown, string][] = [
      [{ name: 'lpts-c', subnets: [{ subnet: '10.213.10.1/24' }] }, 'subnets.0.subnet'],
      [{ name: 'lpts-c', subnets: [{ subnet: '10.213.10.0/33' }] }, 'subnets.0.subnet'],
      [{ name: 'lpts-c', subnets: [{ subnet: 'banana' }] }, 'subnets.0.subnet'],
      [
        { name: 'lpts-c', subnets: [{ subnet: '10.213.10.0/24', gateway: '10.213.11.1' }] },
        'subnets.0.gateway',
      ],
      [
        { name: 'lpts-c', subnets: [{ subnet: '10.213.10.0/24', range: '10.213.12.0/25' }] },
        'subnets.0.range',
      ],
      [{ name: '../evil', subnets: [] }, 'name'],
      [{ name: 'lpts-c', bridge: 'a-very-long-bridge-name' }, 'bridge'],
      [{ name: 'lpts-c', mtu: 10 }, 'mtu'],
      [{ name: 'lpts-c', subnets: [{ subnet: '10.213.10.0/24' }, { subnet: '10.213.10.0/25' }] }, ''],
    ];
    for (const [input, field] of bad) {
      const err = await store.create(input as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(input)).toBeInstanceOf(
        field ? InvalidNetworkInputError : SubnetOverlapError,
      );
      if (field) expect((err as InvalidNetworkInputError).field).toBe(field);
    }
    expect((await store.loadAll()).map((n) => n.conf.name)).toEqual(['lpts-b']);
  });

  it('refuses a subnet overlapping a host route', async () => {
    const routes = (await hostRoutes()).filter((r) => r.route.family === 4);
    if (!routes.length) {
      console.log('skip: host has no non-default IPv4 route to collide with');
      return;
    }
    const err = await store
      .create({ name: 'lpts-r', subnets: [{ subnet: formatCidr(routes[0]!.route) }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubnetOverlapError);
    expect((err as SubnetOverlapError).conflictsWith).toContain('host route');
  });

  it('reads extra dirs read-only, creates the default network on first use, lists and removes', async () => {
    await writeFile(
      join(extra, '50-foreign.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: 'foreign',
        plugins: [
          {
            type: 'bridge',
            bridge: 'lpts-fx0',
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.213.20.0/24' }]] },
          },
        ],
      }),
    );
    await writeFile(join(extra, '60-broken.conflist'), '{not json');
    expect((await store.get('foreign')).info.readOnly).toBe(true);
    await expect(store.remove('foreign')).rejects.toBeInstanceOf(NetworkReadOnlyError);
    await expect(loadConfFile(join(extra, '60-broken.conflist'), true)).rejects.toBeInstanceOf(
      InvalidConfigListError,
    );
    await expect(
      store.create({ name: 'lpts-d', subnets: [{ subnet: '10.213.20.0/25' }] }),
    ).rejects.toBeInstanceOf(SubnetOverlapError);
    const def = await store.get('podman');
    expect(def.info).toMatchObject({
      name: 'podman',
      networkInterface: 'lpts-def0',
      dnsEnabled: false,
      readOnly: false,
    });
    expect((await store.loadAll()).map((n) => n.conf.name).sort()).toEqual(['foreign', 'podman']);
    await store.remove('podman');
    await expect(store.remove('podman')).rejects.toBeInstanceOf(NetworkNotFoundError);
  });

  it('writes conflists podman reads', async () => {
    await store.create({
      name: 'lpts-pm',
      subnets: [{ subnet: '10.213.30.0/24' }],
      labels: { k: 'v' },
      bridge: 'lpts-br-pm',
    });
    let out: string;
    try {
      out = execFileSync(
        'podman',
        ['--network-backend', 'cni', '--network-config-dir', dir, 'network', 'inspect', 'lpts-pm'],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    } catch (e) {
      console.log(`skip: podman cannot run here: ${(e as Error).message}`);
      return;
    }
    const [info] = JSON.parse(out);
    expect(info).toMatchObject({
      name: 'lpts-pm',
      driver: 'bridge',
      network_interface: 'lpts-br-pm',
      subnets: [{ subnet: '10.213.30.0/24', gateway: '10.213.30.1' }],
      labels: { k: 'v' },
      internal: false,
    });
  });
});
