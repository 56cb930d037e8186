/**
 * Layer extraction vs GNU tar: applyLayer() of a big many-files layer vs `tar -xf`, same tar,
 * same file system, page cache dropped before every timed run.
 *   node --import tsx bench/storage-extract-vs-tar.ts [--runs 3] [--mode apply|overlay] [--gzip]
 * The layer (default: /usr/share + /usr/lib/python3.11 + /usr/lib/node_modules, about 610 MB in
 * 58k files) is generated once under bench/.work (gitignored). Prints a markdown table row.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLayer } from '../packages/storage/src/archive/apply.js';
import { decompress } from '../packages/storage/src/archive/decompress.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}
const runs = Number(arg('runs', '3'));
const mode = arg('mode', 'apply') as 'apply' | 'overlay';
const gzip = process.argv.includes('--gzip');

const work = fileURLToPath(new URL('./.work/', import.meta.url));
const SOURCES = ['usr/share', 'usr/lib/python3.11', 'usr/lib/node_modules'];
const layer = path.join(work, gzip ? 'extract-layer.tar.gz' : 'extract-layer.tar');

function ensureLayer(): void {
  fs.mkdirSync(work, { recursive: true });
  const plain = path.join(work, 'extract-layer.tar');
  if (!fs.existsSync(plain)) {
    const existing = SOURCES.filter((s) => fs.existsSync('/' + s));
    execFileSync('tar', ['--numeric-owner', '-cf', plain, '-C', '/', ...existing], { stdio: 'inherit' });
  }
  if (gzip && !fs.existsSync(layer)) execFileSync('sh', ['-c', `gzip -1 -c '${plain}' > '${layer}'`]);
}

function dropCaches(): void {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    console.warn('cannot drop caches (not root?): timings include a warm page cache');
  }
}

function fresh(name: string): string {
  const d = path.join(work, name);
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d);
  return d;
}

async function timeIt(fn: () => Promise<void> | void): Promise<number> {
  dropCaches();
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  ensureLayer();
  const st = fs.statSync(layer);
  const entries = Number(
    execFileSync('sh', ['-c', `tar -tf '${path.join(work, 'extract-layer.tar')}' | wc -l`]).toString(),
  );
  const tarT: number[] = [];
  const oursT: number[] = [];
  const tarCpu: number[] = [];
  const oursCpu: number[] = [];
  const runTar = async () => {
    const d1 = fresh('x-tar');
    let cpu = 0;
    tarT.push(
      await timeIt(() => {
        // same work as ours: owners, modes, xattrs kept; CPU time from GNU time
        const r = spawnSync(
          '/usr/bin/time',
          ['-f', 'CPU %U %S', 'tar', '--numeric-owner', '-p', '--xattrs', '-xf', layer, '-C', d1],
          { encoding: 'utf8' },
        );
        if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
        const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
        cpu = m ? Number(m[1]) + Number(m[2]) : Number.NaN;
        execFileSync('sync', ['-f', d1]);
      }),
    );
    tarCpu.push(cpu);
    fs.rmSync(d1, { recursive: true, force: true });
  };
  const runOurs = async () => {
    const d2 = fresh('x-ours');
    let c0 = process.cpuUsage();
    oursT.push(
      await timeIt(async () => {
        c0 = process.cpuUsage();
        const src = fs.createReadStream(layer, { highWaterMark: 1 << 20 });
        await applyLayer(d2, gzip ? decompress(src) : src, { whiteouts: mode });
        execFileSync('sync', ['-f', d2]);
      }),
    );
    const c = process.cpuUsage(c0);
    oursCpu.push((c.user + c.system) / 1e6);
    fs.rmSync(d2, { recursive: true, force: true });
  };
  for (let i = 0; i < runs; i++) {
    // alternate who goes first: the other one's deletions and writeback land on the next run
    if (i % 2 === 0) {
      await runTar();
      await runOurs();
    } else {
      await runOurs();
      await runTar();
    }
  }
  const t = median(tarT);
  const o = median(oursT);
  const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  console.log(`tar wall: ${f(tarT)} cpu: ${f(tarCpu)} | applyLayer wall: ${f(oursT)} cpu: ${f(oursCpu)}`);
  console.log(
    `| extract ${(st.size / 1e6).toFixed(0)} MB${gzip ? ' gz' : ''} / ${entries} entries (${mode}) | tar -xf ${t.toFixed(2)} s (cpu ${median(tarCpu).toFixed(2)} s) | applyLayer ${o.toFixed(2)} s (cpu ${median(oursCpu).toFixed(2)} s) | ${(o / t).toFixed(2)}x |`,
  );
}

await main();
