import { existsSync, readFileSync } from 'node:fs';
import { Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip =
  containerSkipReason() ?? (existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed');
if (skip) console.warn(`skipping container network tests: ${skip}`);

const NET = { name: 'lpts-ctr-test', subnet: '10.213.97.0/24', bridge: 'lpts-ctr97' };

describe.skipIf(skip !== undefined)('bridge networking through @libpod-ts/network', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('container-network');
    lp = await Libpod.open({
      root: env.root,
      runRoot: env.runRoot,
      storage: false,
      network: { defaultNetwork: NET },
    });
  });
  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.networks.teardownAll().catch(() => {});
      await lp.networks.removeNetwork(NET.name, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  it('gives a bridge container an address on the network and tears it down at exit', async () => {
    const r = await lp.containers.run({
      rootfs: env.rootfs,
      network: 'bridge',
      // ping needs CAP_NET_RAW, not in Podman's default set: also proves spec options pass through.
      spec: { capAdd: ['NET_RAW'] },
      command: [
        'sh',
        '-c',
        'ip -4 addr show eth0 | grep -o "inet [0-9.]*"; ping -c1 -W2 10.213.97.1 >/dev/null && echo gw-ok',
      ],
      rm: true,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^inet 10\.213\.97\.\d+\ngw-ok\n$/);
    expect(r.exitCode).toBe(0);
    // no netns left for it
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(`${env.runRoot}/netns/${r.id}`);
  });

  it('a network none container has only loopback', async () => {
    const r = await lp.containers.run({
      rootfs: env.rootfs,
      command: ['sh', '-c', 'ls /sys/class/net'],
      rm: true,
    });
    expect(r.stdout.trim().split(/\s+/)).toEqual(['lo']);
  });
});
