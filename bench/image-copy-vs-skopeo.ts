import { existsSync } from 'node:fs';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { copy, parseImageName } from '../packages/image/src/index.js';
import {
  makeTempDir,
  type RigRegistry,
  removeTempDir,
  skopeoRegistryArgs,
  startRegistry,
} from '../test/rig/index.js';
import { DEFAULT_RESULTS_FILE, runBenchmark, withHostLock } from './lib/harness.js';
import { pushBenchImage } from './lib/bench-images.js';

const which = process.env.BENCH_IMAGE ?? 'ab';

async function benchPull(registry: RigRegistry, work: string, repo: string, name: string, notes: string) {
  const ours = join(work, 'out-ours');
  const theirs = join(work, 'out-skopeo');
  const ctx = {
    certsDirs: [registry.certsDir!],
    credentials: { username: registry.username, password: registry.password },
    registriesConfPath: join(work, 'none.conf'),
    authFilePath: join(work, 'none.json'),
    dockerConfigPath: '',
  };
  (globalThis as { gc?: () => void }).gc?.();
  const baseRss = process.memoryUsage().rss;
  await runBenchmark({
    name,
    ours: async () => {
      await copy(
        parseImageName(`docker://${registry.host}/${repo}:bench`),
        parseImageName(`oci:${ours}:bench`),
        { ctx },
      );
    },
    reference: {
      cmd: [
        'skopeo',
        '--insecure-policy',
        'copy',
        '--quiet',
        ...skopeoRegistryArgs(registry, 'src'),
        `docker://${registry.host}/${repo}:bench`,
        `oci:${theirs}:bench`,
      ],
    },
    referenceLabel: 'skopeo copy docker:// -> oci:',
    prepare: async () => {
      await rm(ours, { recursive: true, force: true });
      await rm(theirs, { recursive: true, force: true });
    },
    // The harness reports this process's peak RSS; most of it is Node + tsx + the rig, not copy().
    notes: `${notes}; this process's RSS before the first run: ${Math.round(baseRss / 2 ** 20)} MiB`,
  });
  await measureRss(registry, work, repo, ctx);
}

const dist = fileURLToPath(new URL('../packages/image/dist/index.js', import.meta.url));

/**
 * The harness measures this whole process (Node + tsx + rig), so the memory bound is also checked
 * where it means something: copy() alone in a fresh Node process on the built package, peak RSS
 * by GNU time, next to an empty Node process for scale. Appended under the harness's section.
 */
async function measureRss(registry: RigRegistry, work: string, repo: string, ctx: object): Promise<void> {
  const results = process.env.BENCH_RESULTS ?? DEFAULT_RESULTS_FILE;
  if (!existsSync(dist)) {
    const why = `- peak RSS of copy() alone: not measured (${dist} missing; run \`npm run build -w @libpod-ts/image\`)\n`;
    console.log(why);
    await appendFile(results, why);
    return;
  }
  const script = join(work, 'copy-once.mjs');
  await writeFile(
    script,
    `import { copy, parseImageName } from ${JSON.stringify(pathToFileURL(dist).href)};\n` +
      'await copy(parseImageName(process.argv[2]), parseImageName(process.argv[3]), { ctx: JSON.parse(process.env.BENCH_CTX) });\n',
  );
  // Extra node options for the copy runs only, to measure operator knobs (e.g. --liftoff-only).
  const nodeArgs = (process.env.BENCH_RSS_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const peak = async (args: string[], extra: string[] = []): Promise<number> => {
    const r = await execa('/usr/bin/time', ['-f', '%M', 'node', ...extra, ...args], {
      env: { BENCH_CTX: JSON.stringify(ctx) },
    });
    return Number(r.stderr.trim().split('\n').pop()) / 1024;
  };
  const empty = await peak(['-e', '']);
  const importOnly = await peak([
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(pathToFileURL(dist).href)})`,
  ]);
  // The peak moves by +-10 MiB between runs of the same code (when V8 collects the TLS read
  // buffers decides it), so several runs: median and worst.
  const runs = Number(process.env.BENCH_RSS_RUNS ?? 10);
  const peaks: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = join(work, 'out-rss');
    await rm(out, { recursive: true, force: true });
    peaks.push(await peak([script, `docker://${registry.host}/${repo}:bench`, `oci:${out}:bench`], nodeArgs));
  }
  await rm(join(work, 'out-rss'), { recursive: true, force: true });
  const sorted = [...peaks].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  const worst = sorted[sorted.length - 1]!;
  const flags = nodeArgs.length ? `, node ${nodeArgs.join(' ')}` : '';
  const line = `- peak RSS of copy() alone in a fresh Node process (built dist, GNU time %M${flags}, ${runs} runs): median ${median.toFixed(0)} MiB, worst ${worst.toFixed(0)} MiB (all: ${peaks.map((p) => p.toFixed(0)).join(', ')}); \`node -e ''\`: ${empty.toFixed(0)} MiB; importing the package only: ${importOnly.toFixed(0)} MiB\n`;
  console.log(line);
  await appendFile(results, line);
}

await withHostLock(async () => {
  const work = await makeTempDir('bench-image-copy');
  const registry = await startRegistry({ tls: true, auth: 'basic' });
  try {
    if (which.includes('a')) {
      const repo = await pushBenchImage('random', work, registry);
      await benchPull(
        registry,
        work,
        repo,
        'pull 4 x 32 MiB random layers registry -> oci: (copy() vs skopeo copy)',
        '4 gzip(level 1) layers of 32 MiB incompressible data; docker-registry on 127.0.0.1, TLS + basic auth',
      );
    }
    if (which.includes('b')) {
      const repo = await pushBenchImage('many-files', work, registry);
      await benchPull(
        registry,
        work,
        repo,
        'pull a many-files image (/usr/share, gzip) registry -> oci: (copy() vs skopeo copy)',
        "one gzip(level 6) layer of this host's /usr/share (~670 MB, ~47k files); docker-registry on 127.0.0.1, TLS + basic auth",
      );
    }
  } finally {
    await registry.stop();
    await removeTempDir(work);
  }
});
