import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfList } from '../config/schema.js';
import { CniPluginError, PluginNotFoundError } from '../errors.js';
import { ResultCache } from './cache.js';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  isSharedChainRace,
  statusNetworkList,
} from './chain.js';
import { invokePlugin, pluginVersion } from './exec.js';
import { DEFAULT_PLUGIN_DIRS } from './plugins.js';

const skip =
  process.getuid?.() !== 0 ? 'needs root' : execOk('/usr/lib/cni/loopback') ? undefined : 'no CNI plugins';
function execOk(p: string): boolean {
  try {
    execFileSync('test', ['-x', p]);
    return true;
  } catch {
    return false;
  }
}
if (skip) console.log(`skip CNI invocation tests: ${skip}`);

describe.skipIf(!!skip)('CNI invocation (real plugins)', () => {
  let dir: string;
  let ns: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'libpod-ts-test-cni-'));
    ns = join(dir, 'ns');
    execFileSync('touch', [ns]);
    execFileSync('unshare', [`--net=${ns}`, 'true']);
  });
  afterAll(async () => {
    execFileSync('umount', ['-l', ns]);
    await rm(dir, { recursive: true, force: true });
  });
  const rt = (over: Partial<{ ifName: string }> = {}) => ({
    containerId: 'cni-unit',
    netns: ns,
    ifName: over.ifName ?? 'lo',
    args: [['IgnoreUnknown', '1']] as [string, string][],
    capabilityArgs: {},
  });

  it('VERSION lists the spec versions', async () => {
    const v = await pluginVersion('bridge', DEFAULT_PLUGIN_DIRS);
    expect(v.supportedVersions).toContain('1.0.0');
  });

  it('ADD/CHECK/DEL of a list with the result cache; STATUS reported unsupported by 1.1.1 plugins', async () => {
    const cache = new ResultCache(join(dir, 'results'));
    const list: ConfList = { cniVersion: '1.0.0', name: 'lpts-lo', plugins: [{ type: 'loopback' }] };
    const res = await addNetworkList(list, rt(), { pluginDirs: DEFAULT_PLUGIN_DIRS, cache });
    expect(res.cniVersion).toBe('1.0.0');
    expect(res.interfaces?.[0]?.name).toBe('lo');
    const cached = await cache.get('lpts-lo', 'cni-unit', 'lo');
    expect(cached?.status).toBe('added');
    expect(cached?.result).toEqual(res);
    await checkNetworkList(list, rt(), res, { pluginDirs: DEFAULT_PLUGIN_DIRS, cache });
    await delNetworkList(list, rt(), res, { pluginDirs: DEFAULT_PLUGIN_DIRS, cache });
    await cache.remove('lpts-lo', 'cni-unit', 'lo');
    expect(await readdir(join(dir, 'results'))).toEqual([]);
    const st = await statusNetworkList(list, { pluginDirs: DEFAULT_PLUGIN_DIRS });
    expect(st[0]).toMatchObject({ plugin: 'loopback', status: 'unsupported' });
  });

  it('parses error objects into typed errors with the spec code', async () => {
    const err = await invokePlugin({
      command: 'ADD',
      config: { type: 'bridge', name: 'x', cniVersion: '9.9.9' },
      rt: rt({ ifName: 'eth0' }),
      network: 'x',
      pluginDirs: DEFAULT_PLUGIN_DIRS,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect((err as CniPluginError).cniCode).toBe(1);
    expect((err as CniPluginError).code).toBe('ERR_CNI_PLUGIN_FAILED');
  });

  it('names a missing plugin and refuses path-like plugin types', async () => {
    for (const type of ['lpts-nope', '../../../bin/sh']) {
      const err = await invokePlugin({
        command: 'ADD',
        config: { type, name: 'x', cniVersion: '1.0.0' },
        rt: rt(),
        network: 'x',
        pluginDirs: DEFAULT_PLUGIN_DIRS,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PluginNotFoundError);
      expect((err as PluginNotFoundError).plugin).toBe(type);
    }
  });
});

describe('shared-chain race (concurrent first ADDs)', () => {
  const failure = (msg: string) =>
    new CniPluginError({ plugin: 'firewall', command: 'ADD', network: 'n', cniCode: 999, msg });

  it('recognises the chain-creation collision of both iptables backends, and nothing else', () => {
    expect(
      isSharedChainRace(
        failure(
          'running [/usr/sbin/iptables -t filter -N CNI-ADMIN --wait]: exit status 4: iptables v1.8.9 (nf_tables):  CHAIN_USER_ADD failed (File exists): chain CNI-ADMIN',
        ),
      ),
    ).toBe(true);
    expect(isSharedChainRace(failure('iptables: Chain already exists.'))).toBe(true);
    expect(isSharedChainRace(failure('failed to allocate for range 0: no IP addresses available'))).toBe(
      false,
    );
    expect(isSharedChainRace(new Error('CHAIN_USER_ADD failed (File exists)'))).toBe(false);
  });
});
