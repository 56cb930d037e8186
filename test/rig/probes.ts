/**
 * Host capability probes. Each tries the real thing once per process (cached) and returns
 * `{ ok, reason }`; skipUnless() turns failed probes into skipped tests whose reason is printed.
 * Use sparingly: a test that can run here must not hide behind a probe.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, it, test } from 'vitest';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface ProbeResult {
  name: string;
  ok: boolean;
  /** Why the capability is missing ('' when ok). */
  reason: string;
}

const cache = new Map<string, Promise<ProbeResult>>();
function cached(name: string, fn: () => Promise<string | null>): Promise<ProbeResult> {
  let p = cache.get(name);
  if (!p) {
    p = fn().then(
      (reason) => ({ name, ok: reason === null, reason: reason ?? '' }),
      (err: unknown) => ({ name, ok: false, reason: `probe failed: ${(err as Error).message}` }),
    );
    cache.set(name, p);
  }
  return p;
}

const lastLines = (s: string, n = 3) =>
  s
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join(' | ');

async function which(bin: string): Promise<string | null> {
  const r = await execa('sh', ['-c', `command -v ${bin}`], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

/** Root with CAP_SYS_ADMIN (mounts, namespaces, iptables). */
export function probeRoot(): Promise<ProbeResult> {
  return cached('root', async () => {
    const uid = process.getuid?.() ?? -1;
    if (uid !== 0) return `needs root (running as uid ${uid})`;
    const { readFile } = await import('node:fs/promises');
    const status = await readFile('/proc/self/status', 'utf8');
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1];
    if (eff && (BigInt(`0x${eff}`) & (1n << 21n)) === 0n) return 'root but without CAP_SYS_ADMIN';
    return null;
  });
}

/** A real overlay mount (lower + upper + work) in a temp dir, written through and unmounted. */
export function probeOverlay(): Promise<ProbeResult> {
  return cached('overlay', async () => {
    const root = await probeRoot();
    if (!root.ok) return `overlay mount ${root.reason}`;
    const dir = await makeTempDir('probe-overlay');
    const d = (n: string) => join(dir, n);
    let mounted = false;
    try {
      for (const n of ['lower', 'upper', 'work', 'merged']) await mkdir(d(n));
      await writeFile(join(d('lower'), 'f'), 'lower');
      const r = await execa(
        'mount',
        [
          '-t',
          'overlay',
          'overlay',
          '-o',
          `lowerdir=${d('lower')},upperdir=${d('upper')},workdir=${d('work')}`,
          d('merged'),
        ],
        { reject: false },
      );
      if (r.exitCode !== 0)
        return `kernel refused overlay mount: ${lastLines(r.stderr) || `exit ${r.exitCode}`}`;
      mounted = true;
      await writeFile(join(d('merged'), 'f'), 'upper');
      return null;
    } finally {
      if (mounted) await execa('umount', [d('merged')], { reject: false });
      await removeTempDir(dir);
    }
  });
}

/** `criu check`: CRIU can initialise on this kernel. */
export function probeCriu(): Promise<ProbeResult> {
  return cached('criu', async () => {
    const bin = await which('criu');
    if (!bin) return 'criu not found on PATH (Debian package criu)';
    const r = await execa(bin, ['check'], { reject: false, all: true });
    if (r.exitCode !== 0) return `criu check failed: ${lastLines(r.all ?? '')}`;
    return null;
  });
}

/**
 * Runs `true` in a throwaway busybox bundle with the given OCI runtime, with its own --root, and
 * deletes it again. Returns null when the runtime works here.
 */
async function tryRuntime(bin: string): Promise<string | null> {
  const root = await probeRoot();
  if (!root.ok) return `running containers ${root.reason}`;
  const dir = await makeTempDir('probe-runtime');
  const state = join(dir, 'state');
  const id = `libpod-ts-probe-${process.pid}`;
  try {
    await mkdir(join(dir, 'bundle', 'rootfs', 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(dir, 'bundle', 'rootfs', 'bin', 'busybox'));
    const spec = await execa(bin, ['spec', '--bundle', join(dir, 'bundle')], { reject: false, all: true });
    if (spec.exitCode !== 0) return `${bin} spec failed: ${lastLines(spec.all ?? '')}`;
    const cfgPath = join(dir, 'bundle', 'config.json');
    const { readFile } = await import('node:fs/promises');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
    cfg.process.terminal = false;
    cfg.process.args = ['/bin/busybox', 'true'];
    await writeFile(cfgPath, JSON.stringify(cfg));
    const r = await execa(bin, ['--root', state, 'run', '--bundle', join(dir, 'bundle'), id], {
      reject: false,
      all: true,
      timeout: 20_000,
      stdin: 'ignore',
    });
    if (r.exitCode !== 0)
      return `${bin} cannot run a container here: ${lastLines(r.all ?? '') || `exit ${r.exitCode}`}`;
    return null;
  } finally {
    await execa(bin, ['--root', state, 'delete', '--force', id], { reject: false });
    await removeTempDir(dir);
  }
}

/** crun can run a container on this host (crun 1.8 refuses hybrid cgroup hosts). */
export function probeCrun(): Promise<ProbeResult> {
  return cached('crun', async () => {
    const bin = await which('crun');
    if (!bin) return 'crun not found on PATH (Debian package crun)';
    return tryRuntime(bin);
  });
}

/** runc can run a container on this host. */
export function probeRunc(): Promise<ProbeResult> {
  return cached('runc', async () => {
    const bin = await which('runc');
    if (!bin) return 'runc not found on PATH (Debian package runc)';
    return tryRuntime(bin);
  });
}

export interface SkipUnless {
  /** True when at least one probe failed. */
  skip: boolean;
  /** The failed probes' reasons, joined ('' when nothing is skipped). */
  reason: string;
  describe: typeof describe;
  it: typeof it;
  test: typeof test;
}

/**
 * Vitest helpers that skip unless every probe is ok, printing the reason (console.warn, shown on
 * stderr) when they skip:
 *   const { describe: ifOverlay } = skipUnless(await probeOverlay());
 *   ifOverlay('overlay driver', () => { ... });
 */
export function skipUnless(...probes: ProbeResult[]): SkipUnless {
  const failed = probes.filter((p) => !p.ok);
  const reason = failed.map((p) => `${p.name}: ${p.reason}`).join('; ');
  const skip = failed.length > 0;
  if (skip) console.warn(`skipping tests that need ${failed.map((p) => p.name).join(', ')}: ${reason}`);
  return {
    skip,
    reason,
    describe: describe.skipIf(skip) as typeof describe,
    it: it.skipIf(skip) as typeof it,
    test: test.skipIf(skip) as typeof test,
  };
}
