/**
 * `containers.run` of busybox `true` (no network, rm on), sequential, in one Node process, against
 *   (1) raw `runc run` of the same config.json (what our engine generated), and
 *   (2) `podman run --rm --network none --rootfs` of the same exploded rootfs, and
 *   (3) ours from an image in our store vs `podman run --rm --network none <image>` (both create,
 *       mount, unmount and delete an overlay container layer per run).
 * Then: listing 1000 containers (target <= 50 ms).
 *   npx tsx bench/core-run.ts        (BENCH_ROUNDS, default 20; BENCH_SKIP_PODMAN=1 to skip (2) and (3))
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Libpod } from '../packages/core/src/index.js';
import { buildBusyboxImage, ensurePodmanReference } from '../test/rig/index.js';
import { makeTestEnv } from '../test/container-fixtures.js';
import { formatMs, runBenchmark, withHostLock } from './lib/harness.js';
import { settleProcesses } from './lib/settle.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 20);

await withHostLock(async () => {
  const env = await makeTestEnv('bench-core-run');
  const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false });
  try {
    // The config.json our engine generates, reused for raw runc (same rootfs, seccomp, mounts).
    const probe = await lp.containers.create({ rootfs: env.rootfs, command: ['true'] });
    const spec = JSON.parse(await readFile(join(env.root, 'containers', probe.id, 'spec.json'), 'utf8'));
    await lp.containers.remove(probe.id);
    const bundle = join(env.dir, 'bundle');
    await mkdir(bundle);
    await cp(join(env.root, '..', 'rootfs'), join(bundle, 'rootfs'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    spec.root = { path: join(bundle, 'rootfs'), readonly: false };
    spec.linux.cgroupsPath = '/libpod_parent/bench-raw-runc';
    spec.mounts = spec.mounts.filter(
      (m: { destination: string }) =>
        !m.destination.startsWith('/etc/') && m.destination !== '/run/.containerenv',
    );
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
    const runcRoot = join(env.dir, 'raw-runc');

    const ours = async () => {
      const r = await lp.containers.run({ rootfs: env.rootfs, command: ['true'], rm: true });
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
    };
    // Before every timed run of either side: no podman/conmon/runc of the previous run left, and
    // its dirty pages written (sync), so neither side pays for the other's writeback. The cache is
    // not dropped: a repeated run sees a warm one, and a cold one would time reading binaries.
    const settle = async () => {
      await settleProcesses(['podman', 'conmon', 'runc']);
      execFileSync('sync');
    };
    const vsRunc = await runBenchmark({
      name: 'core: containers.run(busybox true, rm) vs raw runc run',
      ours,
      reference: { cmd: ['runc', '--root', runcRoot, 'run', '--bundle', bundle, 'bench-raw'] },
      referenceLabel: 'runc run (same config.json)',
      rounds,
      warmup: 2,
      dropCaches: false,
      prepare: settle,
      notes:
        'sequential, one Node process, exploded busybox rootfs, no network (own netns), default seccomp; target <= 2x raw runc; before every timed run: no conmon/runc left, then sync',
    });

    if (!process.env.BENCH_SKIP_PODMAN && existsSync('/usr/bin/podman')) {
      await ensurePodmanReference();
      const layout = join(env.dir, 'layout');
      await buildBusyboxImage({ dir: layout });
      execFileSync(
        'skopeo',
        ['copy', '-q', `oci:${layout}:latest`, 'containers-storage:localhost/libpod-ts-bench/busybox:latest'],
        { stdio: 'inherit' },
      );
      // Like for like: the exploded rootfs against `podman run --rootfs`, and an image from the
      // store (overlay layer created, mounted, unmounted, deleted per run) against podman's image
      // run. (Until 2026-12-05 this bench compared our rootfs run with podman's image run, which
      // flattered us by the whole container-layer cost.)
      const podmanRun = ['podman', 'run', '--rm', '--network', 'none'];
      await runBenchmark({
        name: 'core: containers.run(rootfs, busybox true, rm) vs podman run --rm --network none --rootfs',
        ours,
        reference: { cmd: [...podmanRun, '--rootfs', env.rootfs, 'true'] },
        referenceLabel: '`podman run --rm --network none --rootfs <same dir> true`',
        rounds,
        warmup: 2,
        dropCaches: false,
        prepare: settle,
        notes:
          'podman 4.3 with runc (rig reference containers.conf); both run the same exploded busybox rootfs; target <= 0.4x podman; before every timed run the bench waits until no live podman/conmon/runc process is left, then syncs',
      });
      const lpi = await Libpod.open({
        root: join(env.dir, 'image-root'),
        runRoot: join(env.dir, 'image-run'),
      });
      try {
        await lpi.images.pull(`oci:${layout}:latest`, { name: 'localhost/libpod-ts-bench/busybox:latest' });
        await runBenchmark({
          name: 'core: containers.run(image, busybox true, rm) vs podman run --rm --network none <image>',
          ours: async () => {
            const r = await lpi.containers.run({
              image: 'localhost/libpod-ts-bench/busybox:latest',
              command: ['true'],
              rm: true,
            });
            if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
          },
          reference: { cmd: [...podmanRun, 'localhost/libpod-ts-bench/busybox:latest', 'true'] },
          rounds,
          warmup: 2,
          dropCaches: false,
          prepare: settle,
          notes:
            'both from the image in their store (overlay container layer per run); podman 4.3 with runc (rig reference containers.conf); target <= 0.4x podman; before every timed run the bench waits until no live podman/conmon/runc process is left, then syncs',
        });
      } finally {
        await lpi.close();
      }
    }
    void vsRunc;

    // Listing: 1000 containers (records only; 10 running would not change the cost much).
    for (let i = 0; i < 1000; i++)
      await lp.containers.create({ rootfs: env.rootfs, command: ['true'], labels: { n: String(i % 10) } });
    const times: number[] = [];
    for (let i = 0; i < 11; i++) {
      const t0 = performance.now();
      const all = await lp.containers.list({ all: true });
      times.push(performance.now() - t0);
      if (all.length !== 1000) throw new Error(`listed ${all.length}`);
    }
    const lp2 = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false });
    const c0 = performance.now();
    await lp2.containers.list({ all: true });
    const cold = performance.now() - c0;
    await lp2.close();
    times.sort((a, b) => a - b);
    const line = `## core: list 1000 containers\n\n- command: \`npx tsx bench/core-run.ts\`\n- date: ${new Date().toISOString()}\n- list({ all: true }) of 1000 records: median ${formatMs(times[5]!)} (min ${formatMs(times[0]!)}, max ${formatMs(times[10]!)}, 11 runs, warm cache in the process); first list in a new Libpod: ${formatMs(cold)}. Target <= 50 ms (podman ps -a: 93 ms for 200).\n\n`;
    console.log(line);
    await writeFile(process.env.BENCH_RESULTS ?? join(import.meta.dirname, 'RESULTS.md'), line, {
      flag: 'a',
    });
  } finally {
    for (const c of await lp.containers.list({ all: true }).catch(() => []))
      await lp.containers.remove(c.Id, { force: true }).catch(() => {});
    await lp.close();
    try {
      execFileSync('runc', ['--root', join(env.dir, 'raw-runc'), 'delete', '-f', 'bench-raw'], {
        stdio: 'ignore',
      });
    } catch {}
    await env.cleanup();
  }
});
