import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  containersStorageTransport,
  copy,
  createTransportRegistry,
  defaultTransports,
} from '../packages/image/src/index.js';
import { openStore } from '../packages/storage/src/index.js';
import {
  ensurePodmanReference,
  makeTempDir,
  type RigRegistry,
  removeTempDir,
  startRegistry,
} from '../test/rig/index.js';
import { dropCaches, runBenchmark, withHostLock } from './lib/harness.js';
import { pushBenchImage } from './lib/bench-images.js';

const which = process.env.BENCH_IMAGE ?? 'ab';

async function benchPull(
  registry: RigRegistry,
  work: string,
  short: string,
  repo: string,
  name: string,
  notes: string,
) {
  const ours = join(work, 'ours');
  const theirs = join(work, 'podman');
  const ref = `${registry.host}/${repo}:bench`;
  const ctx = {
    insecureRegistries: [registry.host],
    registriesConfPath: join(work, 'none.conf'),
    authFilePath: join(work, 'none.json'),
    dockerConfigPath: '',
  };
  await runBenchmark({
    name,
    ours: async () => {
      const store = await openStore({
        root: join(ours, 'root'),
        runRoot: join(ours, 'run'),
        driver: 'overlay',
      });
      try {
        const t = createTransportRegistry([...defaultTransports(), containersStorageTransport(store)]);
        await copy(t.parseImageName(`docker://${ref}`), t.parseImageName(`containers-storage:${ref}`), {
          ctx,
        });
      } finally {
        await store.close();
      }
    },
    reference: {
      cmd: [
        'podman',
        '--root',
        join(theirs, 'root'),
        // podman refuses a runroot longer than 50 characters.
        '--runroot',
        join(short, 'run'),
        '--storage-driver',
        'overlay',
        'pull',
        '--quiet',
        '--tls-verify=false',
        ref,
      ],
    },
    referenceLabel: 'podman pull (fresh --root, overlay)',
    prepare: async () => {
      await rm(ours, { recursive: true, force: true });
      await rm(theirs, { recursive: true, force: true });
      await rm(join(short, 'run'), { recursive: true, force: true });
      // Drop the caches again after the removal: the harness dropped them before prepare, but
      // deleting the previous run's ~47k-file trees leaves ext4's inode-table blocks cached with
      // fresh dtimes, and ext4's inode allocator (find_inode_bit -> recently_deleted) then skips
      // every just-freed inode one cached block lookup at a time: 8-15 s of kernel time in the
      // next timed run of either side (docs/decisions/performance.md). Evicting them measures
      // the pull, not the cleanup of the run before.
      dropCaches();
    },
    notes,
  });
}

await withHostLock(async () => {
  await ensurePodmanReference();
  const work = await makeTempDir('bench-storage-pull');
  const short = await mkdtemp('/tmp/lpr-');
  const registry = await startRegistry({ tls: false, auth: 'none' });
  try {
    if (which.includes('a')) {
      const repo = await pushBenchImage('random', work, registry);
      await benchPull(
        registry,
        work,
        short,
        repo,
        'pull 4 x 32 MiB random layers registry -> store (copy() into containers-storage vs podman pull)',
        '4 gzip(level 1) layers of 32 MiB incompressible data; docker-registry on 127.0.0.1, plain HTTP; overlay on ext4',
      );
    }
    if (which.includes('b')) {
      const repo = await pushBenchImage('many-files', work, registry);
      await benchPull(
        registry,
        work,
        short,
        repo,
        'pull a many-files image (/usr/share, gzip) registry -> store (copy() into containers-storage vs podman pull)',
        "one gzip(level 6) layer of this host's /usr/share (~670 MB, ~47k files); docker-registry on 127.0.0.1, plain HTTP; overlay on ext4",
      );
    }
  } finally {
    await registry.stop();
    await removeTempDir(work);
    await rm(short, { recursive: true, force: true });
  }
});
