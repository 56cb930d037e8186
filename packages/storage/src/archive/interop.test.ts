/**
 * Differential tests against GNU tar (the reference extractor) and round trips through diff():
 * a tree with every kind of object is archived by GNU tar (pax, xattrs), extracted by GNU tar and
 * by applyLayer, and the two results must be identical in every attribute we promise to keep.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from './apply.js';
import { changesBetweenTrees } from './changes.js';
import { decompress } from './decompress.js';
import { diffTar } from './diff.js';
import { lgetxattr, llistxattr, lsetxattr } from './xattr.js';

const isRoot = process.getuid?.() === 0;
let tmp: string;

/** Everything we promise to keep, per path, hardlink groups by first path. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const xattrs = llistxattr(p)
        .filter((x) => !x.startsWith('trusted.overlay.'))
        .sort()
        .map((x) => `${x}=${lgetxattr(p, x)?.toString('hex')}`)
        .join(',');
      let what = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (!st.isDirectory()) what += ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isFile()) {
        const first = inodes.get(st.ino);
        if (first) what += ` hardlink=${first}`;
        else {
          inodes.set(st.ino, r);
          what += ` sha=${createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`;
        }
      }
      if (st.isSymbolicLink()) what += ` -> ${fs.readlinkSync(p)}`;
      if (st.isCharacterDevice() || st.isBlockDevice()) what += ` rdev=${st.rdev}`;
      out[r] = `${what} ${xattrs}`;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'interop-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(path.join(src, 'usr/bin'), { recursive: true });
  fs.mkdirSync(path.join(src, 'tmp'), { mode: 0o1777 });
  fs.chmodSync(path.join(src, 'tmp'), 0o1777);
  fs.writeFileSync(path.join(src, 'usr/bin/tool'), Buffer.alloc(70_000, 7));
  fs.chmodSync(path.join(src, 'usr/bin/tool'), 0o4755);
  fs.linkSync(path.join(src, 'usr/bin/tool'), path.join(src, 'usr/bin/tool-hardlink'));
  fs.writeFileSync(path.join(src, 'usr/bin/ping'), 'ELF');
  fs.symlinkSync('/usr/bin/tool', path.join(src, 'abs-link'));
  fs.symlinkSync('../../etc/none', path.join(src, 'usr/rel-link'));
  const long = path.join(src, 'd'.repeat(120), 'e'.repeat(120));
  fs.mkdirSync(long, { recursive: true });
  fs.writeFileSync(path.join(long, 'ünïcödé-名前.txt'), 'utf8 names');
  fs.writeFileSync(path.join(src, 'empty'), '');
  if (isRoot) {
    fs.chownSync(path.join(src, 'usr/bin/ping'), 1000, 2000);
    fs.chownSync(path.join(src, 'empty'), 3_000_000, 3_000_000); // needs pax uid/gid
    lsetxattr(
      path.join(src, 'usr/bin/ping'),
      'security.capability',
      Buffer.from('0100000200200000000000000000000000000000', 'hex'),
    );
    lsetxattr(path.join(src, 'empty'), 'user.note', 'hello');
    execFileSync('mknod', [path.join(src, 'null'), 'c', '1', '3']);
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
  }
  const when = new Date('2021-05-06T07:08:09Z');
  execFileSync('find', [src, '-exec', 'touch', '-h', '-d', when.toISOString(), '{}', '+']);
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('interop with GNU tar', () => {
  it('applyLayer gives exactly what tar -xp gives (pax, xattrs, hardlinks, devices, long utf-8 names)', async () => {
    const src = path.join(tmp, 'src');
    const tarFile = path.join(tmp, 'layer.tar');
    execFileSync('tar', [
      '--format=pax',
      '--xattrs',
      '--xattrs-include=*',
      '--numeric-owner',
      '-cf',
      tarFile,
      '-C',
      src,
      '.',
    ]);
    const byTar = path.join(tmp, 'by-tar');
    const byUs = path.join(tmp, 'by-us');
    fs.mkdirSync(byTar);
    fs.mkdirSync(byUs);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarFile, '-C', byTar]);
    await applyLayer(byUs, fs.createReadStream(tarFile), { whiteouts: 'apply' });
    const a = snapshot(byTar);
    const b = snapshot(byUs);
    expect(Object.keys(b).length).toBeGreaterThan(8);
    expect(b).toEqual(a);
    // and the same as the source tree (GNU tar does not lose anything either)
    expect(snapshot(src)).toEqual(a);
  });

  it('gzip -c | applyLayer and zstd -c | applyLayer match plain', async () => {
    const tarFile = path.join(tmp, 'layer.tar');
    const gz = execFileSync('gzip', ['-c', tarFile]);
    const zst = execFileSync('zstd', ['-q', '-c', tarFile]);
    const plain = snapshot(path.join(tmp, 'by-us'));
    for (const [name, data] of [
      ['gz', gz],
      ['zst', zst],
    ] as const) {
      const dir = path.join(tmp, `by-us-${name}`);
      fs.mkdirSync(dir);
      await applyLayer(dir, decompress(Readable.from([data])), { whiteouts: 'apply' });
      expect(snapshot(dir)).toEqual(plain);
    }
  });

  it('diff() output is read by GNU tar and reproduces the layer', async () => {
    const src = path.join(tmp, 'src');
    const tarFile = path.join(tmp, 'diff.tar');
    const out = fs.createWriteStream(tarFile);
    await new Promise<void>((resolve, reject) => {
      diffTar(src, () => changesBetweenTrees(src, undefined))
        .on('error', reject)
        .pipe(out)
        .on('finish', resolve)
        .on('error', reject);
    });
    const listing = execFileSync('tar', ['-tvf', tarFile]).toString();
    expect(listing).toContain('usr/bin/tool-hardlink link to usr/bin/tool');
    const back = path.join(tmp, 'from-diff');
    fs.mkdirSync(back);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarFile, '-C', back]);
    const s = snapshot(src);
    const d = snapshot(back);
    for (const k of Object.keys(s)) expect(d[k], k).toBe(s[k]);
  });
});
