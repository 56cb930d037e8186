/**
 * Runs the README demo (`npx tsx examples/demo.ts`) as a new user would, so the docs stay true:
 * it must exit 0, print its key lines and leave no temp dir (the rig's leak check covers mounts,
 * veths, netns and processes).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { containerSkipReason } from './container-fixtures.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const demoDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('libpod-ts-demo-'));

function runDemo(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', 'examples/demo.ts'],
      { cwd: repo, timeout: 85_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const noContainers = containerSkipReason();
if (noContainers) console.warn(`demo test: only the image part runs (${noContainers})`);
const noCni = existsSync('/usr/lib/cni/bridge') ? undefined : 'CNI plugins are not installed';
if (!noContainers && noCni) console.warn(`demo test: not checking the httpd part (${noCni})`);

describe('examples/demo.ts', () => {
  it('exits 0, prints what each step did and leaves no temp dir', { timeout: 90_000 }, async () => {
    const before = new Set(demoDirs());
    const r = await runDemo();
    if (r.code !== 0) console.error(`demo stdout:\n${r.stdout}\ndemo stderr:\n${r.stderr}`);
    expect(r.code).toBe(0);
    const out = r.stdout;

    // 1. the image built by the rig's builder
    expect(out).toMatch(/^manifest sha256:[0-9a-f]{64} \(\d+ bytes\)$/m);
    expect(out.match(/^layer {4}sha256:[0-9a-f]{64} /gm)?.length).toBe(2);
    expect(out).toMatch(/^inspectImage \(image package\): \S+ digest matches, 2 layers/m);
    // 4. the generated runtime config
    expect(out).toMatch(/^process\.args \["httpd","-f"\] user 0:0 cwd \/$/m);
    expect(out).toMatch(/^namespaces .*\bpid\b.*\bmount\b/m);
    expect(out).toContain('temp dir removed; mounts left: none');

    if (noContainers) {
      expect(out).toContain('containers: skipped');
    } else {
      // 2. copy into the store with progress
      expect(out).toMatch(/^ {2}layer [0-9a-f]{12} verified \(\d+ bytes\)$/m);
      expect(out).toMatch(/^ {2}copy done: manifest sha256:[0-9a-f]{64}$/m);
      expect(out).toMatch(/^stored image [0-9a-f]{12} names localhost\/demo\/busybox:latest/m);
      // 3. containers
      expect(out).toContain('run: exit 3\n');
      expect(out).toMatch(/^run: stdout "hello from [0-9a-f]{12}, Linux\\n"$/m);
      expect(out).toContain('run: stderr "a warning\\n"\n');
      expect(out).toMatch(/^exec ps in demo-ticker: exit 0$/m);
      expect(out).toMatch(/^inspect: demo-ticker Status running Pid [1-9]\d* runtime runc$/m);
      expect(out).toMatch(/^logs \(last 3\): .*"stdout: bye"\]$/m);
      expect(out).toContain('stopped: Status exited ExitCode 0\n');
      expect(out).toContain('removed demo-ticker: exists=false\n');
      for (const action of ['create', 'start', 'exec', 'died', 'stop', 'remove'])
        expect(out).toMatch(new RegExp(`^ {2}\\[event\\] \\S+ ${action} demo-ticker$`, 'm'));
      if (!noCni) {
        expect(out).toMatch(/^httpd: container address 10\.214\.0\.\d+$/m);
        expect(out).toMatch(
          /^httpd: GET http:\/\/127\.0\.0\.1:\d+\/index\.html -> 200 "hello from a libpod-ts container\\n"$/m,
        );
        expect(out).toContain('httpd: container removed\n');
      }
    }
    expect(demoDirs().filter((d) => !before.has(d))).toEqual([]);
  });
});
