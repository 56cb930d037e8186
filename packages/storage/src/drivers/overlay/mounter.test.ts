import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountPoints, run } from '../common.js';
import { type Mounter, SyscallMounter, toolMounter } from './mounter.js';

// Real overlay mounts: root only. Every case leaves nothing mounted and removes its directory.
const skipReason = process.getuid?.() !== 0 ? 'overlay mounts need root' : undefined;
if (skipReason) console.warn(`skipping mounter tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('SyscallMounter (mount(2) through a resident helper)', () => {
  let dir: string;
  let mounter: SyscallMounter;
  const overlay = (readonly = false) => ({
    fstype: 'overlay',
    source: 'overlay',
    target: 'merged',
    data: readonly ? 'lowerdir=lower:lower2' : 'lowerdir=lower,upperdir=upper,workdir=work',
    readonly,
    cwd: dir,
  });
  const merged = () => path.join(dir, 'merged');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libpod-ts-mounter-'));
    for (const d of ['lower', 'lower2', 'upper', 'work', 'merged']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'lower', 'f'), 'from lower');
    mounter = new SyscallMounter(toolMounter(run));
  });
  afterEach(async () => {
    if (mountPoints().has(merged())) await run('umount', [merged()]);
    mounter.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('mounts with relative paths resolved in cwd, and unmounts', async () => {
    await mounter.mount(overlay());
    expect(mountPoints().has(merged())).toBe(true);
    expect(fs.readFileSync(path.join(merged(), 'f'), 'utf8')).toBe('from lower');
    fs.writeFileSync(path.join(merged(), 'g'), 'written');
    expect(fs.readFileSync(path.join(dir, 'upper', 'g'), 'utf8')).toBe('written');
    await mounter.unmount(merged());
    expect(mountPoints().has(merged())).toBe(false);
  });

  it('a read-only mount refuses writes', async () => {
    await mounter.mount(overlay(true));
    expect(() => fs.writeFileSync(path.join(merged(), 'g'), 'x')).toThrow(/EROFS|read-only/);
    await mounter.unmount(merged());
  });

  it("the kernel's refusal comes back as an error with its errno, and nothing is mounted", async () => {
    await expect(
      mounter.mount({ ...overlay(), data: 'lowerdir=missing,upperdir=upper,workdir=work' }),
    ).rejects.toThrow(/mount\(2\) errno 2: No such file or directory/);
    expect(mountPoints().has(merged())).toBe(false);
    await expect(mounter.unmount(merged())).rejects.toThrow(/umount2\(2\) errno 22/);
  });

  it('a helper that was killed is replaced by the next call', async () => {
    await mounter.mount(overlay());
    await mounter.unmount(merged());
    const helper = (mounter as unknown as { helper: { pid: number; once(e: string, f: () => void): void } })
      .helper;
    const gone = new Promise<void>((r) => helper.once('exit', r));
    process.kill(helper.pid, 'SIGKILL');
    await gone;
    await mounter.mount(overlay());
    expect(mountPoints().has(merged())).toBe(true);
    await mounter.unmount(merged());
  });

  it('close() ends the helper; a later call starts another', async () => {
    await mounter.mount(overlay());
    const pid = (mounter as unknown as { helper: { pid: number } }).helper.pid;
    mounter.close();
    await waitUntil(() => !alive(pid));
    await mounter.unmount(merged());
    expect(mountPoints().has(merged())).toBe(false);
  });

  it('without perl the fallback mounts (mount(8)/umount(8))', async () => {
    const calls: string[] = [];
    const tools = toolMounter(run);
    const fallback: Mounter = {
      mount: (q) => {
        calls.push('mount');
        return tools.mount(q);
      },
      unmount: (t) => {
        calls.push('unmount');
        return tools.unmount(t);
      },
      close: () => {},
    };
    const noPerl = new SyscallMounter(fallback, path.join(dir, 'no-such-perl'));
    await noPerl.mount(overlay());
    expect(mountPoints().has(merged())).toBe(true);
    await noPerl.unmount(merged());
    expect(calls).toEqual(['mount', 'unmount']);
    noPerl.close();
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
