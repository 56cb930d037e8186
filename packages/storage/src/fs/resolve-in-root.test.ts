import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveInRoot, resolveInRootSync } from './resolve-in-root.js';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'resolve-in-root-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const both = async (p: string, opts?: { followFinal?: boolean }) => {
  const a = await resolveInRoot(root, p, opts);
  const b = resolveInRootSync(root, p, opts);
  expect(b).toBe(a);
  return a;
};

describe('resolveInRoot', () => {
  it('resolves plain paths and appends missing components lexically', async () => {
    fs.mkdirSync(path.join(root, 'a/b'), { recursive: true });
    expect(await both('a/b')).toBe(path.join(root, 'a/b'));
    expect(await both('/a/./b/')).toBe(path.join(root, 'a/b'));
    expect(await both('a/missing/x/../y')).toBe(path.join(root, 'a/missing/y'));
    expect(await both('')).toBe(root);
    expect(await both('/')).toBe(root);
  });

  it('never climbs above the root with ..', async () => {
    expect(await both('../../etc/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(await both('./..')).toBe(root);
    expect(await both('..')).toBe(root);
    expect(await both('////x')).toBe(path.join(root, 'x'));
  });

  it('Docker CVE-2014-9356 class: s1 -> . and esc -> s1/.. stay in the root', async () => {
    fs.symlinkSync('.', path.join(root, 's1'));
    fs.symlinkSync('s1/..', path.join(root, 'esc'));
    expect(await both('s1')).toBe(root);
    expect(await both('esc')).toBe(root);
    expect(await both('esc/etc/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(await both('esc/../../x')).toBe(path.join(root, 'x'));
  });

  it('absolute symlink targets are relative to the root (var/run -> /run)', async () => {
    fs.mkdirSync(path.join(root, 'var'));
    fs.mkdirSync(path.join(root, 'run'));
    fs.symlinkSync('/run', path.join(root, 'var/run'));
    expect(await both('var/run/x.pid')).toBe(path.join(root, 'run/x.pid'));
    fs.symlinkSync('/etc', path.join(root, 'etclink'));
    expect(await both('etclink/passwd')).toBe(path.join(root, 'etc/passwd'));
    fs.symlinkSync('../../../../../../etc', path.join(root, 'up'));
    expect(await both('up/shadow')).toBe(path.join(root, 'etc/shadow'));
  });

  it('CVE-2019-19921 class: /proc/self/root style links stay inside', async () => {
    fs.symlinkSync('/proc/self/root', path.join(root, 'hostroot'));
    fs.symlinkSync('/proc/self/fd/1', path.join(root, 'fd1'));
    expect(await both('hostroot/etc/passwd')).toBe(path.join(root, 'proc/self/root/etc/passwd'));
    expect(await both('fd1')).toBe(path.join(root, 'proc/self/fd/1'));
    // The same when the root does contain proc/self as a symlink to /
    fs.mkdirSync(path.join(root, 'proc'));
    fs.symlinkSync('/', path.join(root, 'proc/self'));
    expect(await both('hostroot/etc/passwd')).toBe(path.join(root, 'root/etc/passwd'));
  });

  it('followFinal: false returns the link itself, parents still resolved', async () => {
    fs.mkdirSync(path.join(root, 'real'));
    fs.symlinkSync('/real', path.join(root, 'dir'));
    fs.symlinkSync('/etc/passwd', path.join(root, 'real/l'));
    expect(await both('dir/l', { followFinal: false })).toBe(path.join(root, 'real/l'));
    expect(await both('dir/l')).toBe(path.join(root, 'etc/passwd'));
    expect(await both('dir', { followFinal: false })).toBe(path.join(root, 'dir'));
  });

  it('a file in the middle ends the walk without escaping', async () => {
    fs.writeFileSync(path.join(root, 'f'), '');
    expect(await both('f/x')).toBe(path.join(root, 'f/x'));
  });

  it('symlink loops fail with ERR_TOO_MANY_SYMLINKS', async () => {
    fs.symlinkSync('b', path.join(root, 'a'));
    fs.symlinkSync('a', path.join(root, 'b'));
    await expect(resolveInRoot(root, 'a/x')).rejects.toMatchObject({ code: 'ERR_TOO_MANY_SYMLINKS' });
    expect(() => resolveInRootSync(root, 'a')).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_MANY_SYMLINKS' }),
    );
    fs.symlinkSync('loop/x', path.join(root, 'loop'));
    await expect(resolveInRoot(root, 'loop')).rejects.toMatchObject({ code: 'ERR_TOO_MANY_SYMLINKS' });
  });

  it('a chain of 40 links resolves; 41 fails', async () => {
    fs.mkdirSync(path.join(root, 'end'));
    let prev = 'end';
    for (let i = 0; i < 41; i++) {
      fs.symlinkSync(prev, path.join(root, `l${i}`));
      prev = `l${i}`;
    }
    expect(await both('l39')).toBe(path.join(root, 'end'));
    await expect(resolveInRoot(root, 'l40')).rejects.toMatchObject({ code: 'ERR_TOO_MANY_SYMLINKS' });
  });
});
