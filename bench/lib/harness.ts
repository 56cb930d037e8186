/**
 * Benchmark harness: our operation (A) against a reference (B), alternating A B A B … after a
 * warm-up, with the page cache dropped and an optional `prepare` step before every timed run of
 * either side. Prints medians, min–max, the ratio and peak RSS, and appends a section to
 * bench/RESULTS.md with the exact command, date and host.
 *
 * A benchmark never fails the test suite: benches are not in vitest's include, and runBenchmark()
 * reports a failing side in its result and in RESULTS.md instead of throwing.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireHostLock } from '../../test/rig/host-lock.js';

export interface ReferenceCommand {
  /** argv of the reference command, e.g. ['skopeo', 'copy', ...]. */
  cmd: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export interface BenchmarkOptions {
  name: string;
  /** Our operation (A), timed in-process. */
  ours: () => Promise<void>;
  /** The reference (B): a command (timed from spawn to exit) or an in-process function. */
  reference: ReferenceCommand | (() => Promise<void>);
  /** How the reference is named in the output; default: its command line, or 'reference'. */
  referenceLabel?: string;
  /** Untimed; runs before every timed (and warm-up) run of either side, after the cache drop. */
  prepare?: () => Promise<void>;
  /** Timed runs per side. Default 5, or $BENCH_ROUNDS. */
  rounds?: number;
  /** Untimed runs per side first. Default 1, or $BENCH_WARMUP. */
  warmup?: number;
  /** `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed run. Default true. */
  dropCaches?: boolean;
  /** Free text for RESULTS.md (data size, layer count, …). */
  notes?: string;
  /** Default bench/RESULTS.md, or $BENCH_RESULTS. */
  resultsFile?: string;
  /** Hold the host test lock while running (see withHostLock). Default true. */
  hostLock?: boolean;
}

export interface SideStats {
  label: string;
  timesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Peak resident set size during the slowest-memory run, in bytes, when measurable. */
  peakRssBytes: number | undefined;
  error: string | undefined;
}

export interface BenchmarkResult {
  name: string;
  ours: SideStats;
  reference: SideStats;
  /** ours median / reference median (< 1: ours is faster); NaN when a side failed. */
  ratio: number;
  cachesDropped: boolean;
  command: string;
  date: string;
  host: string;
}

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const DEFAULT_RESULTS_FILE = join(repoRoot, 'bench', 'RESULTS.md');

function envInt(name: string, def: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v >= 0 ? v : def;
}

/** Drops the page cache; returns why it could not, or null. */
export function dropCaches(): string | null {
  try {
    execFileSync('sync');
    execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
    return null;
  } catch (err) {
    return `cannot drop the page cache (${(err as Error).message.split('\n')[0]}); timings include a warm cache`;
  }
}

/** Resets this process's peak RSS (VmHWM) so it can be read per run; false if the kernel refuses. */
function resetPeakRss(): boolean {
  try {
    execFileSync('sh', ['-c', `echo 5 > /proc/${process.pid}/clear_refs`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function readPeakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const TIME_BIN = '/usr/bin/time';

/** Runs a command; resolves with its wall time and (via GNU time, when installed) its peak RSS. */
async function runCommand(
  ref: ReferenceCommand,
  scratch: string,
): Promise<{ ms: number; rss: number | undefined }> {
  const rssFile = join(scratch, 'rss');
  const useTime = existsSync(TIME_BIN);
  const [bin, ...args] = useTime ? [TIME_BIN, '-f', '%M', '-o', rssFile, ...ref.cmd] : ref.cmd;
  const start = performance.now();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((res, rej) => {
    const child = spawn(bin!, args, {
      cwd: ref.cwd,
      env: { ...process.env, ...ref.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-4000);
    });
    child.once('error', rej);
    child.once('close', (c) => res({ code: c, stderr: err }));
  });
  const ms = performance.now() - start;
  if (code !== 0)
    throw new Error(
      `${ref.cmd.join(' ')} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  let rss: number | undefined;
  if (useTime) {
    const kb = Number((await readFile(rssFile, 'utf8').catch(() => '')).trim().split('\n').pop());
    if (Number.isFinite(kb) && kb > 0) rss = kb * 1024;
  }
  return { ms, rss };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(b: number | undefined): string {
  if (b === undefined) return 'n/a';
  return b >= 1 << 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`;
}

/** `Debian GNU/Linux 12 (bookworm), Debian 12.11, Linux 6.1.0, 2 CPUs, 24 GiB, Node v20.x`. */
export function hostDescription(): string {
  let os = 'unknown OS';
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {}
  let deb = '';
  try {
    deb = `, Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}`;
  } catch {}
  return `${os}${deb}, Linux ${release()}, ${cpus().length} CPUs, ${formatBytes(totalmem())} RAM, Node ${process.version}`;
}

/** How this benchmark was started, as a user would type it from the repo root. */
export function invocation(): string {
  const script = process.argv[1] ? relative(repoRoot, resolve(process.argv[1])) : '?';
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  return `${env}npx tsx ${script}${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
}

function stats(
  label: string,
  times: number[],
  rss: number | undefined,
  error: string | undefined,
): SideStats {
  return {
    label,
    timesMs: times,
    medianMs: median(times),
    minMs: times.length ? Math.min(...times) : Number.NaN,
    maxMs: times.length ? Math.max(...times) : Number.NaN,
    peakRssBytes: rss,
    error,
  };
}

function markdown(
  r: BenchmarkResult,
  opts: BenchmarkOptions,
  rounds: number,
  warmup: number,
  cacheNote: string,
): string {
  const row = (s: SideStats) =>
    `| ${s.label} | ${s.error ? 'FAILED' : formatMs(s.medianMs)} | ${s.error ? '' : `${formatMs(s.minMs)} – ${formatMs(s.maxMs)}`} | ${formatBytes(s.peakRssBytes)} | ${s.timesMs.map((t) => formatMs(t)).join(', ')} |`;
  const lines = [
    `## ${r.name}`,
    '',
    `- command: \`${r.command}\``,
    `- date: ${r.date}`,
    `- host: ${r.host}`,
    `- runs: ${rounds} per side, alternating ours/reference, after ${warmup} warm-up run(s) each; ${cacheNote}`,
  ];
  if (opts.notes) lines.push(`- notes: ${opts.notes}`);
  lines.push(
    '',
    '| side | median | min – max | peak RSS | all runs |',
    '|---|---|---|---|---|',
    row(r.ours),
    row(r.reference),
    '',
    'peak RSS: ours = this Node process (child processes not included); reference command = GNU time %M.',
    '',
    Number.isFinite(r.ratio)
      ? `ratio ours / reference (medians): **${r.ratio.toFixed(2)}** (${r.ratio < 1 ? `ours ${(1 / r.ratio).toFixed(2)}× faster` : `ours ${r.ratio.toFixed(2)}× slower`})`
      : 'ratio: n/a (a side failed)',
  );
  for (const s of [r.ours, r.reference]) if (s.error) lines.push('', `${s.label} failed: ${s.error}`);
  return `${lines.join('\n')}\n\n`;
}

let lockDepth = 0;

/**
 * Runs fn holding the host test lock (test/rig/host-lock.ts), so a benchmark neither runs beside a
 * test file (noisy timings, and the leak check would see the bench's processes) nor the reverse.
 * Re-entrant within this process. Waits up to 30 minutes, then runs anyway with a warning.
 */
export async function withHostLock<T>(fn: () => Promise<T>): Promise<T> {
  if (lockDepth > 0) {
    lockDepth++;
    try {
      return await fn();
    } finally {
      lockDepth--;
    }
  }
  const lock = await acquireHostLock(30 * 60_000, () =>
    console.warn('bench: waiting for the host test lock (a test file or another benchmark is running)'),
  );
  if (!lock) console.warn('bench: could not take the host test lock; timings may include other work');
  lockDepth++;
  try {
    return await fn();
  } finally {
    lockDepth--;
    await lock?.release();
  }
}

/** Runs the benchmark, prints and records the result. Never throws for a failing side. */
export function runBenchmark(opts: BenchmarkOptions): Promise<BenchmarkResult> {
  return opts.hostLock === false ? runLocked(opts) : withHostLock(() => runLocked(opts));
}

async function runLocked(opts: BenchmarkOptions): Promise<BenchmarkResult> {
  const rounds = opts.rounds ?? envInt('BENCH_ROUNDS', 5);
  const warmup = opts.warmup ?? envInt('BENCH_WARMUP', 1);
  const wantDrop = opts.dropCaches ?? true;
  const refLabel =
    opts.referenceLabel ??
    (typeof opts.reference === 'function' ? 'reference' : `\`${opts.reference.cmd.join(' ')}\``);
  const scratch = await mkdtemp(join(tmpdir(), 'libpod-ts-bench-'));
  let dropProblem: string | null = null;
  const ourTimes: number[] = [];
  const refTimes: number[] = [];
  let ourRss: number | undefined;
  let refRss: number | undefined;
  let ourError: string | undefined;
  let refError: string | undefined;
  const rssResettable = resetPeakRss();

  const runOurs = async (): Promise<number> => {
    if (rssResettable) resetPeakRss();
    const t = performance.now();
    await opts.ours();
    const ms = performance.now() - t;
    if (rssResettable) {
      const peak = readPeakRss();
      if (peak !== undefined) ourRss = Math.max(ourRss ?? 0, peak);
    }
    return ms;
  };
  const runRef = async (): Promise<number> => {
    const ref = opts.reference;
    if (typeof ref === 'function') {
      const t = performance.now();
      await ref();
      return performance.now() - t;
    }
    const { ms, rss } = await runCommand(ref, scratch);
    if (rss !== undefined) refRss = Math.max(refRss ?? 0, rss);
    return ms;
  };
  const before = async (timed: boolean) => {
    if (timed && wantDrop) dropProblem ??= dropCaches();
    await opts.prepare?.();
  };

  console.log(`\n# ${opts.name}: ${warmup} warm-up + ${rounds} timed run(s) per side`);
  try {
    for (let i = 0; i < warmup; i++) {
      for (const [side, fn] of [
        ['ours', runOurs],
        ['reference', runRef],
      ] as const) {
        if ((side === 'ours' && ourError) || (side === 'reference' && refError)) continue;
        try {
          await before(false);
          await fn();
        } catch (err) {
          if (side === 'ours') ourError = (err as Error).message;
          else refError = (err as Error).message;
        }
      }
    }
    ourRss = undefined;
    for (let i = 0; i < rounds; i++) {
      if (!ourError) {
        try {
          await before(true);
          ourTimes.push(await runOurs());
        } catch (err) {
          ourError = (err as Error).message;
        }
      }
      if (!refError) {
        try {
          await before(true);
          refTimes.push(await runRef());
        } catch (err) {
          refError = (err as Error).message;
        }
      }
      console.log(
        `  round ${i + 1}: ours ${formatMs(ourTimes[i] ?? Number.NaN)}, reference ${formatMs(refTimes[i] ?? Number.NaN)}`,
      );
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  const ours = stats('ours', ourTimes, rssResettable ? ourRss : undefined, ourError);
  const reference = stats(refLabel, refTimes, refRss, refError);
  const result: BenchmarkResult = {
    name: opts.name,
    ours,
    reference,
    ratio: ourError || refError ? Number.NaN : ours.medianMs / reference.medianMs,
    cachesDropped: wantDrop && dropProblem === null,
    command: invocation(),
    date: new Date().toISOString(),
    host: hostDescription(),
  };
  const cacheNote = !wantDrop
    ? 'page cache not dropped (dropCaches: false)'
    : dropProblem
      ? dropProblem
      : 'page cache dropped before every timed run';
  const md = markdown(result, opts, rounds, warmup, cacheNote);
  console.log(`\n${md}`);
  const file = opts.resultsFile ?? process.env.BENCH_RESULTS ?? DEFAULT_RESULTS_FILE;
  if (!existsSync(file)) {
    await writeFile(
      file,
      '# Benchmark results\n\nAppended by bench/lib/harness.ts; newest last. See bench/README.md.\n\n',
    );
  }
  await appendFile(file, md);
  return result;
}
