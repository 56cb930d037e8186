/**
 * Example benchmark and A/A check of the harness: pushing a rig-built image into the rig registry
 * with the rig's pushWithSkopeo() (A) against the same `skopeo copy` as a plain command (B).
 * Both sides do the same work, so the ratio should be close to 1; a ratio far from 1 means the
 * harness is unfair to one side.
 *   npx tsx bench/rig-skopeo-copy.ts            (BENCH_SIZE_MB=64 BENCH_ROUNDS=5 by default)
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildBusyboxImage,
  makeTempDir,
  pushWithSkopeo,
  removeTempDir,
  skopeoRegistryArgs,
  startRegistry,
} from '../test/rig/index.js';
import { runBenchmark, withHostLock } from './lib/harness.js';

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 64);

await withHostLock(async () => {
  const work = await makeTempDir('bench-skopeo');
  const registry = await startRegistry({ tls: true, auth: 'basic' });
  try {
    const layout = join(work, 'layout');
    const image = await buildBusyboxImage({
      dir: layout,
      tag: 'bench',
      layers: [{ kind: 'busybox' }, { kind: 'random', bytes: sizeMb * 1024 * 1024 }],
      gzipLevel: 1,
    });
    const total = image.layers.reduce((n, l) => n + l.size, 0);
    await runBenchmark({
      name: `push a ${sizeMb} MiB image to a local TLS registry: rig pushWithSkopeo vs skopeo copy`,
      ours: async () => {
        await pushWithSkopeo(layout, 'bench', registry, { repo: 'bench/a' });
      },
      reference: {
        cmd: [
          'skopeo',
          '--insecure-policy',
          'copy',
          '--quiet',
          '--all',
          '--preserve-digests',
          ...skopeoRegistryArgs(registry, 'dest'),
          `oci:${layout}:bench`,
          `docker://${registry.host}/bench/b:bench`,
        ],
      },
      referenceLabel: 'skopeo copy (command)',
      // Empty the registry so every run uploads every blob (no "already exists" shortcut).
      prepare: async () => {
        await rm(join(registry.storageDir, 'docker'), { recursive: true, force: true });
      },
      notes: `${image.layers.length} layers, ${(total / 2 ** 20).toFixed(1)} MiB compressed; registry: docker-registry 2.8 on 127.0.0.1 with TLS and basic auth`,
    });
  } finally {
    await registry.stop();
    await removeTempDir(work);
  }
});
