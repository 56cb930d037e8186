/**
 * N processes each creating and deleting M container layers on one store (default 8 x 100).
 *   npx tsx bench/storage-concurrency.ts [--procs 8] [--count 100] [--driver vfs|overlay|dir]
 * Prints errors (must be 0), wall time, throughput and database-lock statistics, and appends a
 * section to bench/RESULTS.md (or $BENCH_RESULTS). Not an A/B comparison: there is no reference.
 */
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../packages/storage/src/store/store.js';
import { DirTestDriver } from '../packages/storage/src/store/testing/dir-driver.js';
import { digestOf, makeTar, streamOf } from '../packages/storage/src/store/testing/tars.js';
import { createDriver } from '../packages/storage/src/drivers/registry.js';
import { DEFAULT_RESULTS_FILE, hostDescription, invocation, withHostLock } from './lib/harness.js';

const WORKER = fileURLToPath(new URL('../packages/storage/src/store/testing/worker.ts', import.meta.url));

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const procs = Number(arg('procs', '8'));
const count = Number(arg('count', '100'));
const driverName = arg('driver', 'vfs') as 'vfs' | 'overlay' | 'dir';

interface Result {
  pid: number;
  errors: number;
  messages: string[];
  ms: number;
  stats: { transactions: number; opens: number; openRetries: number };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'libpod-ts-bench-conc-'));
  const root = join(dir, 'root');
  const runRoot = join(dir, 'run');
  try {
    const home = join(root, driverName === 'dir' ? 'vfs' : driverName);
    const driver = driverName === 'dir' ? new DirTestDriver(home) : createDriver(driverName, { home });
    const store = await openStore({ root, runRoot, driver });
    const tar = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/os-release', content: 'ID=bench\n' },
    ]);
    const { layer } = await store.createLayer({ tar: streamOf(tar), expectedDiffID: digestOf(tar) });
    await store.createImage({
      config: Buffer.from('{"os":"linux"}'),
      topLayer: layer.id,
      names: ['localhost/bench:1'],
    });
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from(
        { length: procs },
        () =>
          new Promise<Result>((resolve, reject) => {
            const child = spawn(
              process.execPath,
              [
                '--import',
                'tsx',
                WORKER,
                'churn',
                JSON.stringify({ root, runRoot, driver: driverName, image: 'bench:1', count }),
              ],
              { stdio: ['ignore', 'pipe', 'inherit'] },
            );
            let out = '';
            child.stdout.on('data', (d: Buffer) => {
              out += d.toString();
            });
            child.on('exit', (code) =>
              code === 0
                ? resolve(JSON.parse(out.trim().split('\n').pop()!) as Result)
                : reject(new Error(`worker exit ${code}`)),
            );
          }),
      ),
    );
    const wall = performance.now() - t0;
    const errors = results.reduce((a, r) => a + r.errors, 0);
    const tx = results.reduce((a, r) => a + r.stats.transactions, 0);
    const retries = results.reduce((a, r) => a + r.stats.openRetries, 0);
    const opens = results.reduce((a, r) => a + r.stats.opens, 0);
    const check = await store.check();
    const leftovers = (await store.listContainers()).length;
    await store.deleteImage('bench:1');
    await store.close();
    const ops = procs * count;
    console.log(
      JSON.stringify(
        {
          driver: driverName,
          procs,
          count,
          errors,
          messages: results.flatMap((r) => r.messages).slice(0, 5),
          wallMs: Math.round(wall),
          createDeletePerSec: Number(((ops / wall) * 1000).toFixed(1)),
          transactions: tx,
          txPerSec: Number(((tx / wall) * 1000).toFixed(1)),
          lockAcquisitions: opens,
          lockRetries: retries,
          checkProblems: check.problems.length,
          leftoverContainers: leftovers,
        },
        null,
        2,
      ),
    );
    if (errors > 0 || !check.ok || leftovers > 0) process.exitCode = 1;
    const section = [
      `## ${procs} processes x ${count} container layers created and deleted on one store (${driverName})`,
      '',
      `- command: \`${invocation()}\``,
      `- date: ${new Date().toISOString()}`,
      `- host: ${hostDescription()}`,
      '- notes: each process opens the store, then per iteration createContainer (writable layer on a 1-layer image) + deleteContainer; no reference tool',
      '',
      '| errors | wall | create+delete / s | transactions | tx / s | lock acquisitions | lock retries | check problems |',
      '|---|---|---|---|---|---|---|---|',
      `| ${errors} | ${(wall / 1000).toFixed(2)} s | ${((ops / wall) * 1000).toFixed(1)} | ${tx} | ${((tx / wall) * 1000).toFixed(1)} | ${opens} | ${retries} | ${check.problems.length} |`,
      '',
      '',
    ].join('\n');
    await appendFile(process.env.BENCH_RESULTS ?? DEFAULT_RESULTS_FILE, section);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await withHostLock(main);
