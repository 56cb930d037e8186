import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessSpawner } from './spawner.js';

const noPerl = existsSync('/usr/bin/perl') ? undefined : 'perl (/usr/bin/perl) is not installed';
if (noPerl) console.warn(`skipping spawner tests: ${noPerl}`);

function collect(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.resume();
  return new Promise((r) => s.once('close', () => r(Buffer.concat(chunks).toString('utf8'))));
}

describe.skipIf(noPerl !== undefined)('ProcessSpawner', () => {
  let dir: string;
  let spawner: ProcessSpawner;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'libpod-ts-test-spawner-'));
    spawner = new ProcessSpawner(join(dir, 'spawn'));
  });
  afterEach(() => {
    spawner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a program with exactly the env and cwd given, its fds 2-4 connected to us', async () => {
    const p = await spawner.spawn(
      ['/bin/sh', '-c', 'echo "$ONLY $HOME" >&2; pwd >&3; read x <&4; echo "got $x" >&3'],
      { PATH: '/usr/bin:/bin', ONLY: 'one' },
      dir,
    );
    expect(p?.pid).toBeGreaterThan(0);
    const err = collect(p!.stderr);
    const out = collect(p!.fd3);
    p!.fd4.end('zero\n');
    expect(await err).toBe('one \n');
    expect(await out).toBe(`${dir}\ngot zero\n`);
  });

  it('a program that cannot be executed says so on its stderr, and its sockets close', async () => {
    const p = await spawner.spawn([join(dir, 'missing')], { PATH: '/bin' });
    const [err, out] = await Promise.all([collect(p!.stderr), collect(p!.fd3)]);
    expect(err).toMatch(/^exec .*missing: No such file or directory/);
    expect(out).toBe('');
  });

  it('a connection that does not know a pending token is refused', async () => {
    const { connect } = await import('node:net');
    const p = await spawner.spawn(['/bin/true'], {});
    await collect(p!.stderr);
    const sock = readdirSync(join(dir, 'spawn'))[0]!;
    const stray = connect(join(dir, 'spawn', sock));
    stray.write(`${'0'.repeat(32)} 3\nhello`);
    await new Promise((r) => stray.once('close', r));
  });

  it('close() removes its socket and stops the helper; spawn then reports unusable', async () => {
    await spawner.spawn(['/bin/true'], {});
    expect(readdirSync(join(dir, 'spawn'))).toHaveLength(1);
    spawner.close();
    expect(spawner.usable).toBe(false);
    await expect(spawner.spawn(['/bin/true'], {})).resolves.toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(join(dir, 'spawn'))).toEqual([]);
  });

  it('a stale socket of a dead program is removed when the next spawner starts', async () => {
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync('/bin/true').pid!;
    const spawnDir = join(dir, 'spawn');
    await spawner.spawn(['/bin/true'], {});
    writeFileSync(join(spawnDir, `${dead}-aaaaaaaaaaaa.sock`), '');
    const second = new ProcessSpawner(spawnDir);
    try {
      await second.spawn(['/bin/true'], {});
      expect(readdirSync(spawnDir).some((n) => n.startsWith(`${dead}-`))).toBe(false);
    } finally {
      second.close();
    }
  });

  it('a helper that was killed is replaced at the next spawn (same listening socket)', async () => {
    await spawner.spawn(['/bin/true'], {});
    const helper = (spawner as unknown as { helper: { pid: number; once(e: string, f: () => void): void } })
      .helper;
    const gone = new Promise<void>((r) => helper.once('exit', r));
    process.kill(helper.pid, 'SIGKILL');
    await gone;
    const p = await spawner.spawn(['/bin/sh', '-c', 'echo again >&3'], { PATH: '/bin' });
    expect(await collect(p!.fd3)).toBe('again\n');
    expect(spawner.usable).toBe(true);
  });

  it('without perl it is unusable and spawn resolves undefined (callers spawn directly)', async () => {
    const none = new ProcessSpawner(join(dir, 'spawn'), join(dir, 'no-perl'));
    expect(none.usable).toBe(false);
    await expect(none.spawn(['/bin/true'], {})).resolves.toBeUndefined();
  });
});
