/**
 * Network setup + teardown cost alone: a new netns attached to a bridge network (bridge +
 * host-local + portmap + firewall + tuning ADD) and torn down again (DEL + netns removal).
 *   npx tsx bench/network-setup.ts
 * ours: NetworkManager.setup() + teardown() in this process.
 * reference: the same plugin chain driven by a minimal python3 "engine" (ip netns add, each plugin
 * ADD with prevResult chaining, DEL in reverse, ip netns del) — podman 4 has no command that sets
 * up a network without a container. It pays python's start-up and two extra ip calls, so it is a
 * naive engine rather than a floor; the floor is the plugins' own time (bridge ADD/DEL ~90-130 ms
 * each here, iptables-nft), printed in the notes as the setup/teardown split.
 * Teardown as core does it (the container's processes are gone: netns first, DELs without it).
 * The notes also give each plugin's own ADD and DEL time (invoked directly).
 * Uses its own subnet (10.213.200.0/24) and bridge (lpts-bench0); removes both at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CniResult,
  DEFAULT_PLUGIN_DIRS,
  invokePlugin,
  NetworkManager,
} from '../packages/network/src/index.js';
import { runBenchmark, withHostLock } from './lib/harness.js';

const PY = `
import json, os, subprocess, sys
conf = json.load(open(sys.argv[1]))
ns = 'lpts-bench-ref'
path = '/run/netns/' + ns
subprocess.run(['ip', 'netns', 'add', ns], check=True)
subprocess.run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'], check=True)
def call(cmd, plugin, prev):
    c = dict(plugin, name=conf['name'], cniVersion=conf['cniVersion'])
    if prev is not None: c['prevResult'] = prev
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID='bench-ref', CNI_NETNS=path, CNI_IFNAME='eth0',
               CNI_ARGS='IgnoreUnknown=1', CNI_PATH='/usr/lib/cni')
    r = subprocess.run(['/usr/lib/cni/' + plugin['type']], input=json.dumps(c).encode(), env=env, capture_output=True)
    if r.returncode != 0: raise SystemExit(r.stdout.decode())
    return json.loads(r.stdout) if cmd == 'ADD' else None
prev = None
for p in conf['plugins']: prev = call('ADD', p, prev)
for p in reversed(conf['plugins']): call('DEL', p, prev)
subprocess.run(['ip', 'netns', 'del', ns], check=True)
`;

await withHostLock(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'libpod-ts-bench-net-'));
  const net = new NetworkManager({ root: join(dir, 'root'), runRoot: join(dir, 'run'), extraConfigDirs: [] });
  try {
    const info = await net.createNetwork({
      name: 'lpts-bench',
      subnets: [{ subnet: '10.213.200.0/24' }],
      bridge: 'lpts-bench0',
    });
    const conf = structuredClone(info.conflist) as { plugins: { ipam?: Record<string, unknown> }[] };
    conf.plugins[0]!.ipam!.dataDir = join(dir, 'ref-ipam');
    await writeFile(join(dir, 'ref.conflist'), JSON.stringify(conf));
    await writeFile(join(dir, 'ref.py'), PY);

    // Each plugin's own ADD and DEL (invoked directly, in a netns of ours, DEL with the netns
    // as the plugins do it by default), for the notes: what is the plugins' and what is ours.
    const per: Record<string, number[]> = {};
    const conflist = info.conflist as {
      name: string;
      cniVersion: string;
      plugins: Record<string, unknown>[];
    };
    conflist.plugins[0]!.ipam = {
      ...(conflist.plugins[0]!.ipam as object),
      dataDir: join(dir, 'split-ipam'),
    };
    for (let i = 0; i < 5; i++) {
      const id = `bench-p${i}`;
      const netns = await net.createNetns(id);
      const rt = {
        containerId: id,
        netns,
        ifName: 'eth0',
        args: [['IgnoreUnknown', '1']] as [string, string][],
        capabilityArgs: {},
      };
      const call = async (
        command: 'ADD' | 'DEL',
        p: Record<string, unknown>,
        prev: CniResult | undefined,
      ) => {
        const t0 = performance.now();
        const r = await invokePlugin({
          command,
          config: {
            ...p,
            name: conflist.name,
            cniVersion: conflist.cniVersion,
            ...(prev ? { prevResult: prev } : {}),
          },
          rt,
          network: conflist.name,
          pluginDirs: DEFAULT_PLUGIN_DIRS,
        });
        const key = `${command} ${String(p.type)}`;
        per[key] = [...(per[key] ?? []), performance.now() - t0];
        return r;
      };
      let prev: CniResult | undefined;
      for (const p of conflist.plugins) prev = await call('ADD', p, prev);
      for (const p of [...conflist.plugins].reverse()) await call('DEL', p, prev);
      await net.removeNetns(netns);
    }
    const perNote = Object.entries(per)
      .map(([k, v]) => `${k} ${v.sort((a, b) => a - b)[2]!.toFixed(0)}`)
      .join(', ');
    console.log(`per plugin (median of 5, ms): ${perNote}`);

    // Split of one warm run, for the notes. Teardown as core does it (processes gone: netns first).
    await net.setup({ containerId: 'bench-warm', networks: [{ name: 'lpts-bench' }] });
    await net.teardown('bench-warm', undefined, { processesGone: true });
    const split: { setup: number; teardown: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await net.setup({ containerId: `bench-s${i}`, networks: [{ name: 'lpts-bench' }] });
      const t1 = performance.now();
      await net.teardown(`bench-s${i}`, undefined, { processesGone: true });
      split.push({ setup: t1 - t0, teardown: performance.now() - t1 });
    }
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const notes =
      `one bridge network, no port mappings; plugins bridge+host-local, portmap, firewall, tuning (iptables-nft); ` +
      `split of 5 extra runs: setup median ${med(split.map((s) => s.setup)).toFixed(0)} ms, ` +
      `teardown median ${med(split.map((s) => s.teardown)).toFixed(0)} ms (as core: netns first); ` +
      `each plugin alone, median of 5 (ms): ${perNote}`;
    console.log(notes);

    let i = 0;
    await runBenchmark({
      name: 'network setup + teardown (netns + bridge chain ADD + DEL): NetworkManager vs raw plugin chain',
      ours: async () => {
        const id = `bench-${i++}`;
        await net.setup({ containerId: id, networks: [{ name: 'lpts-bench' }] });
        await net.teardown(id, undefined, { processesGone: true });
      },
      reference: { cmd: ['python3', join(dir, 'ref.py'), join(dir, 'ref.conflist')] },
      referenceLabel: 'python3 script: ip netns add + the 4 plugins ADD/DEL + ip netns del',
      dropCaches: false,
      rounds: Number(process.env.BENCH_ROUNDS ?? 10),
      notes,
    });
  } finally {
    await net.teardownAll().catch(() => {});
    await net.removeNetwork('lpts-bench', { force: true }).catch(() => {});
    try {
      execFileSync('ip', ['netns', 'del', 'lpts-bench-ref'], { stdio: 'ignore' });
    } catch {
      // not left over
    }
    await rm(dir, { recursive: true, force: true });
  }
}).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
