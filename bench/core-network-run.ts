/**
 * `containers.run` of busybox `true` on a bridge network (rm on), sequential, in one Node process:
 *   (1) against `podman run --rm` of the same busybox image on podman's default bridge network
 *       (CNI backend, rig reference containers.conf), target <= 0.5x podman;
 *   (2) against our own `run` with `network: 'none'`: what networking adds to a run.
 * Network setup + teardown alone is bench/network-setup.ts.
 *   npx tsx bench/core-network-run.ts    (BENCH_ROUNDS, default 20; BENCH_SKIP_PODMAN=1 to skip (1))
 * Our default network is test-owned: lpts-bench-run, 10.213.202.0/24, bridge lpts-bench2; removed
 * at the end. podman's own `cni-podman0` bridge is removed too if it did not exist before.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Libpod } from '../packages/core/src/index.js';
import { makeTestEnv } from '../test/container-fixtures.js';
import { buildBusyboxImage, ensurePodmanReference } from '../test/rig/index.js';
import { runBenchmark, withHostLock } from './lib/harness.js';
import { settleProcesses } from './lib/settle.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 20);
const NET = { name: 'lpts-bench-run', subnet: '10.213.202.0/24', bridge: 'lpts-bench2' };
const PODMAN_IMAGE = 'localhost/busybox:latest';

await withHostLock(async () => {
  const env = await makeTestEnv('bench-core-network-run');
  const podmanBridgeBefore = existsSync('/sys/class/net/cni-podman0');
  const lp = await Libpod.open({
    root: env.root,
    runRoot: env.runRoot,
    storage: false,
    network: { defaultNetwork: NET, extraConfigDirs: [] },
  });
  let podmanImage = false;
  try {
    const runOn = (network: 'bridge' | 'none') => async () => {
      const r = await lp.containers.run({ rootfs: env.rootfs, command: ['true'], network, rm: true });
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.stderr}`);
    };

    if (!process.env.BENCH_SKIP_PODMAN && existsSync('/usr/bin/podman')) {
      await ensurePodmanReference();
      const layout = join(env.dir, 'layout');
      await buildBusyboxImage({ dir: layout });
      execFileSync('skopeo', ['copy', '-q', `oci:${layout}:latest`, `containers-storage:${PODMAN_IMAGE}`], {
        stdio: 'inherit',
      });
      podmanImage = true;
      await runBenchmark({
        name: 'core+network: containers.run(rootfs, busybox true, bridge, rm) vs podman run --rm --rootfs (bridge)',
        ours: runOn('bridge'),
        // Like for like: both run the same exploded rootfs (until 2026-12-05 podman ran its image,
        // which added its container-layer cost to its side only).
        reference: { cmd: ['podman', 'run', '--rm', '--rootfs', env.rootfs, 'true'] },
        referenceLabel: 'podman run --rm --rootfs <same dir> (default bridge network, CNI)',
        rounds,
        warmup: 2,
        dropCaches: false,
        prepare: () => settleProcesses(['podman', 'conmon', 'runc']),
        notes:
          'before every timed run (either side) the bench waits until no live podman/conmon/runc process is left (a guard against background work of one side landing in the timing of the other); sequential, one Node process, the same exploded busybox rootfs on both sides; ours: test-owned default bridge network (bridge+host-local+portmap+firewall+tuning, no ports), network set up at init and torn down before run() resolves; podman 4.3 + runc, CNI backend; target <= 0.5x podman. Network setup+teardown alone: bench/network-setup.ts (~250 ms here)',
      });
    }

    await runBenchmark({
      name: 'core+network: containers.run(busybox true, rm) bridge vs none',
      ours: runOn('bridge'),
      reference: runOn('none'),
      referenceLabel: "containers.run with network: 'none'",
      rounds,
      warmup: 2,
      dropCaches: false,
      notes: 'the difference is what bridge networking (CNI ADD at init, DEL at exit, netns) adds to a run',
    });
  } finally {
    for (const c of await lp.containers.list({ all: true }).catch(() => []))
      await lp.containers.remove(c.Id, { force: true }).catch(() => {});
    await lp.networks.teardownAll().catch(() => {});
    await lp.networks.removeNetwork(NET.name, { force: true }).catch(() => {});
    await lp.close();
    if (podmanImage) {
      try {
        execFileSync('podman', ['rmi', '-f', PODMAN_IMAGE], { stdio: 'ignore' });
      } catch {}
    }
    if (!podmanBridgeBefore && existsSync('/sys/class/net/cni-podman0')) {
      try {
        execFileSync('ip', ['link', 'del', 'cni-podman0'], { stdio: 'ignore' });
      } catch {}
    }
    await env.cleanup();
  }
});
