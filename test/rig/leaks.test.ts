import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { findLeaks, type Leak, registerLeakCheckPath, snapshotHost } from './leaks.js';
import { probeRoot, skipUnless } from './probes.js';
import { makeTempDir, removeTempDir } from './tmp.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const { describe: asRoot } = skipUnless(await probeRoot());

const has = (leaks: Leak[], kind: Leak['kind'], text: string) =>
  leaks.some((l) => l.kind === kind && l.description.includes(text));

describe('leak check', () => {
  it('takes a snapshot cheaply', async () => {
    // Two snapshots per test file; the budget for both is 200 ms. Best of 3 so a busy host does not
    // make this flaky.
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await snapshotHost();
      best = Math.min(best, performance.now() - t);
    }
    expect(best).toBeLessThan(100);
  });

  asRoot('detector', () => {
    it('names each kind of deliberately leaked host object, and nothing once it is cleaned up', async () => {
      const tag = `${process.pid % 100000}`;
      const netns = `libpod-ts-leaktest-${tag}`;
      const vethA = `lptl${tag}a`;
      const vethB = `lptl${tag}b`;
      const chain = `LPT-LEAKTEST-${tag}`;
      const state = await makeTempDir('leak-state');
      const runcRoot = join(state, 'runc');
      const ipamDir = join(state, 'ipam');
      await mkdir(join(runcRoot, 'already-there'), { recursive: true });
      registerLeakCheckPath('runcRoot', runcRoot);
      registerLeakCheckPath('cniIpamDir', ipamDir);

      const before = await snapshotHost();
      const leaked = await makeTempDir('leak-victim');
      const mnt = join(leaked, 'mnt');
      await mkdir(mnt);
      const fakeConmon = join(leaked, 'conmon');
      await copyFile('/bin/sleep', fakeConmon);
      const proc = spawn(fakeConmon, ['300'], { stdio: 'ignore' });
      // A "container": sleep in its own pid namespace, killed with unshare (--kill-child).
      const ctr = spawn('unshare', ['--pid', '--fork', '--kill-child', '/bin/sleep', '301'], {
        stdio: 'ignore',
      });
      try {
        await execa('mount', ['-t', 'tmpfs', 'leaktest', mnt]);
        await execa('ip', ['netns', 'add', netns]);
        await execa('ip', ['link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB]);
        await execa('iptables', ['-w', '-N', chain]);
        await execa('iptables', ['-w', '-A', chain, '-j', 'RETURN']);
        await mkdir(join(runcRoot, 'leaky-ctr'));
        await mkdir(join(ipamDir, 'rignet'), { recursive: true });
        await writeFile(join(ipamDir, 'rignet', '10.99.0.2'), 'ctr\neth0');
        await writeFile(join(ipamDir, 'rignet', 'lock'), '');

        const leaks = await findLeaks(before, 0);
        expect(has(leaks, 'tempdir', leaked)).toBe(true);
        expect(has(leaks, 'mount', `${mnt} (tmpfs`)).toBe(true);
        expect(has(leaks, 'netns', netns)).toBe(true);
        expect(has(leaks, 'mount', `/run/netns/${netns} (nsfs`)).toBe(true);
        expect(has(leaks, 'interface', vethA)).toBe(true);
        expect(has(leaks, 'interface', vethB)).toBe(true);
        expect(has(leaks, 'iptables', `chain ${chain}`)).toBe(true);
        expect(has(leaks, 'iptables', `rule -A ${chain} -j RETURN`)).toBe(true);
        expect(has(leaks, 'process', `pid ${proc.pid} conmon`)).toBe(true);
        const inNs = leaks.filter(
          (l) => l.kind === 'process' && l.description.includes('in another pid namespace'),
        );
        expect(inNs.map((l) => l.description)).toEqual([
          expect.stringMatching(/ sleep .*: \/bin\/sleep 301$/),
        ]);
        expect(has(leaks, 'runc', 'container leaky-ctr')).toBe(true);
        expect(has(leaks, 'runc', 'already-there')).toBe(false);
        expect(has(leaks, 'cni-ipam', 'IP 10.99.0.2 reserved')).toBe(true);
        expect(has(leaks, 'cni-ipam', 'lock')).toBe(false);
      } finally {
        for (const p of [proc, ctr]) {
          p.kill('SIGKILL');
          await new Promise((r) =>
            p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r),
          );
        }
        await execa('umount', [mnt], { reject: false });
        await execa('ip', ['netns', 'delete', netns], { reject: false });
        await execa('ip', ['link', 'delete', vethA], { reject: false });
        await execa('iptables', ['-w', '-F', chain], { reject: false });
        await execa('iptables', ['-w', '-X', chain], { reject: false });
        await rm(join(runcRoot, 'leaky-ctr'), { recursive: true, force: true });
        await rm(join(ipamDir, 'rignet', '10.99.0.2'), { force: true });
        await removeTempDir(leaked);
      }
      expect(await findLeaks(before, 1000)).toEqual([]);
      await removeTempDir(state);
    });
  });

  it("does not blame this file for another Node program's processes and temp dirs", async () => {
    const before = await snapshotHost();
    const scratch = await makeTempDir('foreign-info');
    const info = join(scratch, 'info.json');
    // A Node program that is not our descendant (the shell that started it exits at once), as
    // when a second developer runs tests or a script on the same host.
    const script = [
      "const fs=require('fs'),cp=require('child_process'),os=require('os'),path=require('path');",
      "const d=fs.mkdtempSync(path.join(os.tmpdir(),'libpod-ts-test-foreign-p'+process.pid+'-'));",
      "fs.copyFileSync('/bin/sleep',d+'/conmon');",
      "const c=cp.spawn(d+'/conmon',['60'],{stdio:'ignore'});",
      "fs.writeFileSync(process.argv[1]+'.tmp',JSON.stringify({dir:d,child:c.pid,pid:process.pid}));",
      "fs.renameSync(process.argv[1]+'.tmp',process.argv[1]);",
      'setTimeout(()=>{},60000);',
    ].join('');
    await execa('sh', [
      '-c',
      `${JSON.stringify(process.execPath)} -e "$1" "$2" >/dev/null 2>&1 &`,
      'sh',
      script,
      info,
    ]);
    let other: { dir: string; child: number; pid: number } | undefined;
    try {
      for (let i = 0; i < 100 && !other; i++) {
        other = await readFile(info, 'utf8').then(
          (t) => JSON.parse(t) as typeof other,
          () => undefined,
        );
        if (!other) await new Promise((r) => setTimeout(r, 50));
      }
      expect(other).toBeDefined();
      const leaks = await findLeaks(before, 0);
      expect(leaks.filter((l) => l.description.includes(other!.dir))).toEqual([]);
    } finally {
      if (other) {
        for (const pid of [other.child, other.pid]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
        await removeTempDir(other.dir);
      }
      await removeTempDir(scratch);
    }
    expect(await findLeaks(before, 2000)).toEqual([]);
  });

  it('fails a test file that leaks, naming the leak, and the summary line counts it', async () => {
    const out = await makeTempDir('leak-fixture');
    const outFile = join(out, 'leaked-path');
    try {
      const r = await execa(
        'npx',
        ['vitest', 'run', '--config', 'test/rig/fixtures/vitest.leaky.config.ts', '--color=false'],
        {
          cwd: repoRoot,
          reject: false,
          all: true,
          // This file holds the host lock; the child must not wait for it.
          env: { LEAKY_FIXTURE_OUT: outFile, LIBPOD_TS_LEAK_LOCK: '0', LIBPOD_TS_LEAK_CHECK: 'fail' },
          timeout: 50_000,
        },
      );
      const leakedDir = await readFile(outFile, 'utf8').catch(() => '');
      if (leakedDir) await removeTempDir(leakedDir);
      expect(leakedDir).toContain('libpod-ts-test-deliberate-leak-');
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toContain('leak check: this test file left 1 thing(s) on the host');
      expect(r.all).toContain(`tempdir: ${leakedDir}`);
      expect(r.all).toMatch(/^1 passed, 1 failed, 0 skipped$/m);
    } finally {
      await removeTempDir(out);
    }
  });
});
