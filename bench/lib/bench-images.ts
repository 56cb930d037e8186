/**
 * The two images the pull and copy benchmarks use, built offline and pushed to the rig registry:
 * (a) 4 gzip(level 1) layers of 32 MiB incompressible data, (b) the many-files /usr/share image.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBusyboxImage, pushWithSkopeo, type RigRegistry } from '../../test/rig/index.js';
import { buildManyFilesLayout } from './many-files-image.js';

export type BenchImage = 'random' | 'many-files';

/** Builds the image under `work`, pushes it as `<repo>:bench` and removes the layout; returns the repo. */
export async function pushBenchImage(
  which: BenchImage,
  work: string,
  registry: RigRegistry,
): Promise<string> {
  let layout: string;
  if (which === 'random') {
    layout = join(work, 'random');
    await buildBusyboxImage({
      dir: layout,
      tag: 'bench',
      layers: [0, 1, 2, 3].map((i) => ({ kind: 'random' as const, bytes: 32 * 1024 * 1024, seed: `l${i}` })),
      gzipLevel: 1,
    });
  } else {
    layout = await buildManyFilesLayout(work);
  }
  const repo = which === 'random' ? 'bench/random' : 'bench/usr-share';
  await pushWithSkopeo(layout, 'bench', registry, { repo });
  await rm(layout, { recursive: true, force: true });
  return repo;
}
