import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer, type ApplyLayerOptions } from './apply.js';
import { decompress } from './decompress.js';
import { buildTar, gzipMembers, type RawEntry } from './testing/tar-builder.js';
import { lgetxattr } from './xattr.js';

let tmp: string;
let root: string;
let outside: string;
const isRoot = process.getuid?.() === 0;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-layer-'));
  root = path.join(tmp, 'layer');
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  fs.chmodSync(path.join(outside, 'secret'), 0o600);
  // a sibling whose name extends the layer dir's (moby "dest" vs "dest-evil")
  fs.mkdirSync(root + '-evil');
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const apply = (entries: RawEntry[] | Buffer, opts: Partial<ApplyLayerOptions> = {}) =>
  applyLayer(root, Readable.from([Buffer.isBuffer(entries) ? entries : buildTar(entries)]), {
    whiteouts: 'apply',
    ...opts,
  });

/** Nothing outside the layer changed. */
function expectOutsideIntact(): void {
  expect(fs.readdirSync(outside).sort()).toEqual(['secret']);
  expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('secret');
  expect(fs.statSync(path.join(outside, 'secret')).mode & 0o7777).toBe(0o600);
  expect(fs.readdirSync(root + '-evil')).toEqual([]);
  expect(fs.readdirSync(tmp).sort()).toEqual(['layer', 'layer-evil', 'outside']);
}

const rel = (p: string) => path.relative(root, p);

describe('applyLayer: legit layers', () => {
  it('files, dirs, symlinks kept verbatim, hardlinks, setuid, owners, mtimes', async () => {
    const r = await apply([
      { name: 'usr/', type: 'dir', mode: 0o755, mtime: 1_600_000_000 },
      { name: 'usr/bin/', type: 'dir', mode: 0o755 },
      { name: 'usr/bin/su', body: 'ELF', mode: 0o4755, uid: 0, gid: 0, mtime: 1_500_000_000 },
      { name: 'usr/bin/own', body: 'x', mode: 0o2711, uid: 1234, gid: 5678 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
      { name: 'usr/bin/su-link', type: 'hardlink', linkname: 'usr/bin/su' },
      { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
      { name: 'rel', type: 'symlink', linkname: '../../../../etc/passwd' },
    ]);
    expect(r.entries).toBe(8);
    expect(r.size).toBe(4);
    const su = fs.lstatSync(path.join(root, 'usr/bin/su'));
    expect(su.mode & 0o7777).toBe(0o4755);
    expect(su.mtimeMs).toBe(1_500_000_000_000);
    expect(su.nlink).toBe(2);
    expect(fs.lstatSync(path.join(root, 'usr/bin/su-link')).ino).toBe(su.ino);
    if (isRoot) {
      const own = fs.lstatSync(path.join(root, 'usr/bin/own'));
      expect([own.uid, own.gid, own.mode & 0o7777]).toEqual([1234, 5678, 0o2711]);
    }
    expect(fs.lstatSync(path.join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.lstatSync(path.join(root, 'usr')).mtimeMs).toBe(1_600_000_000_000);
    expect(fs.readlinkSync(path.join(root, 'etc/localtime'))).toBe('/usr/share/zoneinfo/UTC');
    expect(fs.readlinkSync(path.join(root, 'rel'))).toBe('../../../../etc/passwd');
    expectOutsideIntact();
  });

  it('ownership is exact under a setgid directory (the chown fast path does not apply there)', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    fs.mkdirSync(path.join(root, 'sg'));
    fs.chownSync(path.join(root, 'sg'), 0, 1234);
    fs.chmodSync(path.join(root, 'sg'), 0o2775);
    await apply([
      { name: 'sg/f', body: 'x', uid: 0, gid: 0 },
      { name: 'sg/sub/', type: 'dir', uid: 0, gid: 0 },
      { name: 'sg/sub/g', body: 'y', uid: 0, gid: 0 },
      { name: 'top', body: 'z', uid: 0, gid: 0 },
    ]);
    for (const f of ['sg/f', 'sg/sub', 'sg/sub/g', 'top'])
      expect(fs.lstatSync(path.join(root, f)).gid, f).toBe(0);
  });

  it('keeps security.capability and user xattrs from SCHILY.xattr pax records', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs'); // security.capability needs CAP_SETFCAP
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw=ep
    await apply([
      { name: 'ping', body: 'ELF', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap } },
      {
        name: 'f',
        body: 'x',
        pax: { 'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.trusted.overlay.opaque': 'y' },
      },
    ]);
    expect(lgetxattr(path.join(root, 'ping'), 'security.capability')).toEqual(cap);
    expect(lgetxattr(path.join(root, 'f'), 'user.comment')?.toString()).toBe('hello');
    // layer data must not be able to steer overlayfs
    expect(lgetxattr(path.join(root, 'f'), 'trusted.overlay.opaque')).toBeNull();
  });

  it('LIBARCHIVE.xattr records (base64, URL-encoded names) are applied too', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    await apply([
      { name: 'f', body: 'x', pax: { 'LIBARCHIVE.xattr.user.a%3Db': Buffer.from('hi').toString('base64') } },
    ]);
    expect(lgetxattr(path.join(root, 'f'), 'user.a=b')?.toString()).toBe('hi');
  });

  it('FIFOs and device nodes are created (policy: created as in the image)', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    await apply([
      { name: 'dev/', type: 'dir' },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]);
    const n = fs.lstatSync(path.join(root, 'dev/null'));
    expect(n.isCharacterDevice()).toBe(true);
    expect(n.rdev).toBe(os.constants ? (1 << 8) | 3 : n.rdev);
    expect(n.mode & 0o7777).toBe(0o666);
    expect(fs.lstatSync(path.join(root, 'dev/loop9')).isBlockDevice()).toBe(true);
    expect(fs.lstatSync(path.join(root, 'run/fifo')).isFIFO()).toBe(true);
  });

  it('long names via pax path and GNU long name', async () => {
    const long = 'd/' + 'x'.repeat(200);
    const long2 = 'e/' + 'y'.repeat(150) + '/' + 'z'.repeat(150);
    await apply([
      { name: 'ignored', body: 'pax', pax: { path: long } },
      { name: '././@LongLink', type: 'longname', body: long2 + '\0' },
      { name: 'ignored2', body: 'gnu' },
    ]);
    expect(fs.readFileSync(path.join(root, long), 'utf8')).toBe('pax');
    expect(fs.readFileSync(path.join(root, long2), 'utf8')).toBe('gnu');
    expect(fs.existsSync(path.join(root, 'ignored'))).toBe(false);
  });

  it('multi-member gzip and zstd decompress to the same tar', async () => {
    const a = buildTar([{ name: 'a', body: 'A' }], { end: false });
    const b = buildTar([{ name: 'b', body: 'B' }]);
    const gz = gzipMembers(a, b);
    await applyLayer(root, decompress(Readable.from([gz])), { whiteouts: 'apply' });
    expect(fs.readFileSync(path.join(root, 'a'), 'utf8')).toBe('A');
    expect(fs.readFileSync(path.join(root, 'b'), 'utf8')).toBe('B');
    const zst = execFileSync('zstd', ['-c', '-q'], { input: Buffer.concat([a, b]) });
    const root2 = path.join(tmp, 'layer-evil');
    await applyLayer(root2, decompress(Readable.from([zst])), { whiteouts: 'apply' });
    expect(fs.readFileSync(path.join(root2, 'b'), 'utf8')).toBe('B');
    fs.rmSync(path.join(root2, 'a'));
    fs.rmSync(path.join(root2, 'b'));
  });

  it('a truncated gzip stream is ERR_MALFORMED_ARCHIVE', async () => {
    const gz = gzipMembers(buildTar([{ name: 'a', body: 'A'.repeat(50_000) }]));
    await expect(
      applyLayer(root, decompress(Readable.from([gz.subarray(0, gz.length - 30)])), { whiteouts: 'apply' }),
    ).rejects.toMatchObject({ code: 'ERR_MALFORMED_ARCHIVE' });
  });

  it('corrupt gzip and zstd are ERR_MALFORMED_ARCHIVE', async () => {
    const gz = gzipMembers(buildTar([{ name: 'a', body: 'A'.repeat(5000) }]));
    gz[gz.length - 20] = gz[gz.length - 20]! ^ 0xff;
    await expect(
      applyLayer(root, decompress(Readable.from([gz])), { whiteouts: 'apply' }),
    ).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ARCHIVE',
    });
    const zst = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100, 7)]);
    await expect(
      applyLayer(root, decompress(Readable.from([zst])), { whiteouts: 'apply' }),
    ).rejects.toMatchObject({
      code: 'ERR_MALFORMED_ARCHIVE',
    });
  });
});

describe('applyLayer: hostile names and links', () => {
  it('CVE-2021-32804 node-tar: absolute and climbing names stay inside or are refused', async () => {
    await apply([
      { name: '/etc/abs', body: 'abs' },
      { name: '////x', body: 'x' },
      { name: 'a/../b', body: 'b' },
    ]);
    expect(fs.readFileSync(path.join(root, 'etc/abs'), 'utf8')).toBe('abs');
    expect(fs.readFileSync(path.join(root, 'x'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(root, 'b'), 'utf8')).toBe('b');
    for (const name of ['../outside/secret', './..', '..', 'a/../../x', '../layer-evil/x']) {
      await expect(apply([{ name, body: 'pwned' }]), name).rejects.toMatchObject({
        code: 'ERR_UNSAFE_LAYER_ENTRY',
      });
    }
    expectOutsideIntact();
  });

  it('CVE-2021-32803 node-tar: symlink then write through it stays in the root', async () => {
    await apply([
      { name: 'a', type: 'symlink', linkname: outside },
      { name: 'a/secret', body: 'pwned' },
      { name: 'up', type: 'symlink', linkname: '../outside' },
      { name: 'up/secret', body: 'pwned2' },
      { name: 'lib', type: 'symlink', linkname: '/usr/lib' },
      { name: 'lib/passwd', body: 'in-root' },
    ]);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('pwned');
    expect(fs.readFileSync(path.join(root, 'outside/secret'), 'utf8')).toBe('pwned2');
    expect(fs.readFileSync(path.join(root, 'usr/lib/passwd'), 'utf8')).toBe('in-root');
    expect(fs.readlinkSync(path.join(root, 'lib'))).toBe('/usr/lib');
    expectOutsideIntact();
  });

  it('CVE-2021-37701 node-tar: directory replaced by a symlink between two entries', async () => {
    await apply([
      { name: 'd/', type: 'dir' },
      { name: 'd/f', body: '1' },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd/secret', body: 'pwned' },
    ]);
    expect(fs.lstatSync(path.join(root, 'd')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('pwned');
    expectOutsideIntact();
  });

  it('CVE-2021-37712 node-tar: names equal after Unicode normalisation are distinct, no cache bypass', async () => {
    const nfc = '\u00e9'; // é
    const nfd = 'e\u0301'; // é, decomposed
    await apply([
      { name: `${nfc}/`, type: 'dir' },
      { name: nfd, type: 'symlink', linkname: outside },
      { name: `${nfc}/x`, body: 'in the real dir' },
      { name: `${nfd}/secret`, body: 'through the link, in the root' },
    ]);
    expect(fs.lstatSync(path.join(root, nfc)).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(root, nfc, 'x'), 'utf8')).toBe('in the real dir');
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('through the link, in the root');
    expectOutsideIntact();
  });

  it('Docker CVE-2014-9356: s1 -> . and esc -> s1/.. chains stay in the root', async () => {
    await apply([
      { name: 's1', type: 'symlink', linkname: '.' },
      { name: 'esc', type: 'symlink', linkname: 's1/..' },
      { name: 'esc/secret', body: 'x' },
      { name: 'esc/esc/../../outside/secret', body: 'y' },
    ]);
    expect(fs.readFileSync(path.join(root, 'secret'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(root, 'outside/secret'), 'utf8')).toBe('y');
    expectOutsideIntact();
  });

  it('tar-fs CVE-2024-12905: symlink to a dir outside then a hardlink through it is refused', async () => {
    await expect(
      apply([
        { name: 'l', type: 'symlink', linkname: outside },
        { name: 'h', type: 'hardlink', linkname: 'l/secret' },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_LAYER_ENTRY' });
    expectOutsideIntact();
  });

  it('CVE-2018-20834 node-tar: hardlinks out of the layer are refused (incl. dest-evil sibling)', async () => {
    for (const linkname of ['../outside/secret', `${outside}/secret`, '../layer-evil', 'missing']) {
      await expect(apply([{ name: 'h', type: 'hardlink', linkname }]), linkname).rejects.toMatchObject({
        code: 'ERR_UNSAFE_LAYER_ENTRY',
      });
    }
    expect(fs.statSync(path.join(outside, 'secret')).nlink).toBe(1);
    expectOutsideIntact();
  });

  it('hardlink to a symlink links the symlink itself, never its target', async () => {
    await apply([
      { name: 'l', type: 'symlink', linkname: `${outside}/secret` },
      { name: 'h', type: 'hardlink', linkname: 'l' },
    ]);
    expect(fs.lstatSync(path.join(root, 'h')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(outside, 'secret')).nlink).toBe(1);
  });

  it('CVE-2021-32760 containerd: metadata is never applied through a symlink', async () => {
    await apply([
      { name: 'l', type: 'symlink', linkname: `${outside}/secret`, mode: 0o777, uid: 1000 },
      { name: 'd', type: 'symlink', linkname: outside, mode: 0o777 },
    ]);
    // A later directory entry for a symlink replaces it; it does not chmod the target
    await apply([{ name: 'd/', type: 'dir', mode: 0o777 }]);
    expect(fs.lstatSync(path.join(root, 'd')).isDirectory()).toBe(true);
    expect(fs.statSync(outside).mode & 0o7777).not.toBe(0o777);
    expectOutsideIntact();
  });

  it('CVE-2021-32760 containerd: deferred dir metadata never follows an ancestor replaced by a symlink', async () => {
    fs.mkdirSync(path.join(outside, 'b'));
    fs.chmodSync(path.join(outside, 'b'), 0o700);
    await apply([
      { name: 'a/', type: 'dir' },
      { name: 'a/b/', type: 'dir', mode: 0o777, mtime: 1 },
      { name: 'a', type: 'symlink', linkname: outside },
    ]);
    expect(fs.statSync(path.join(outside, 'b')).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(path.join(outside, 'b')).mtimeMs).toBeGreaterThan(1000);
    fs.rmdirSync(path.join(outside, 'b'));
    expectOutsideIntact();
  });

  it('containerd TestBreakouts: an opaque marker never deletes through an ancestor replaced by a symlink', async () => {
    fs.mkdirSync(path.join(outside, 'b'));
    fs.writeFileSync(path.join(outside, 'b', 'keep'), 'k');
    await apply([
      { name: 'a/', type: 'dir' },
      { name: 'a/b/', type: 'dir' },
      { name: 'a/b/.wh..wh..opq', body: '' },
      { name: 'a', type: 'symlink', linkname: outside },
    ]);
    expect(fs.readFileSync(path.join(outside, 'b', 'keep'), 'utf8')).toBe('k');
    fs.rmSync(path.join(outside, 'b'), { recursive: true });
    expectOutsideIntact();
  });

  it('CVE-2021-29136 umoci: the root as a symlink or file is refused', async () => {
    for (const name of ['.', '/', './']) {
      await expect(apply([{ name, type: 'symlink', linkname: outside }]), name).rejects.toMatchObject({
        code: 'ERR_UNSAFE_LAYER_ENTRY',
      });
    }
    expect(fs.lstatSync(root).isDirectory()).toBe(true);
    await apply([{ name: './', type: 'dir', mode: 0o711 }]);
    expect(fs.lstatSync(root).mode & 0o7777).toBe(0o711);
  });

  it('CVE-2019-19921 class: links into /proc/self/root are followed inside the root only', async () => {
    await apply([
      { name: 'hostroot', type: 'symlink', linkname: '/proc/self/root' },
      { name: `hostroot${outside}/secret`, body: 'pwned' },
      { name: 'fd', type: 'symlink', linkname: '/proc/self/fd' },
      { name: 'fd/1', body: 'pwned' },
    ]);
    expect(fs.readFileSync(path.join(root, 'proc/self/root', outside, 'secret'), 'utf8')).toBe('pwned');
    expectOutsideIntact();
  });

  it('CVE-2019-19921 class: a symlink loop is ERR_TOO_MANY_SYMLINKS', async () => {
    await expect(
      apply([
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
        { name: 'a/x', body: '' },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_TOO_MANY_SYMLINKS' });
  });
});

describe('applyLayer: duplicates and parser differentials', () => {
  it('duplicate entries: the later wins, type flips replace', async () => {
    await apply([
      { name: 'f', body: 'first' },
      { name: 'f', body: 'second' },
      { name: 'd/', type: 'dir', mode: 0o700 },
      { name: 'd/child', body: 'c' },
      { name: 'd/', type: 'dir', mode: 0o750 },
      { name: 'x/', type: 'dir' },
      { name: 'x/y', body: 'y' },
      { name: 'x', body: 'now a file' },
      { name: 'z', body: 'file' },
      { name: 'z/', type: 'dir' },
      { name: 's', type: 'symlink', linkname: outside },
      { name: 's', body: 'not through' },
    ]);
    expect(fs.readFileSync(path.join(root, 'f'), 'utf8')).toBe('second');
    expect(fs.readFileSync(path.join(root, 'd/child'), 'utf8')).toBe('c');
    expect(fs.lstatSync(path.join(root, 'd')).mode & 0o7777).toBe(0o750);
    expect(fs.readFileSync(path.join(root, 'x'), 'utf8')).toBe('now a file');
    expect(fs.lstatSync(path.join(root, 'z')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(root, 's'), 'utf8')).toBe('not through');
    expectOutsideIntact();
  });

  it('global pax path headers are never applied to later entries', async () => {
    await apply([
      { name: 'pax_global_header', type: 'global', body: paxBody({ path: '../outside/secret' }) },
      { name: 'a', body: 'A', pax: { mtime: '1600000000' } },
      { name: 'b', body: 'B' },
    ]);
    expect(fs.readFileSync(path.join(root, 'a'), 'utf8')).toBe('A');
    expect(fs.readFileSync(path.join(root, 'b'), 'utf8')).toBe('B');
    expectOutsideIntact();
  });

  it('entries after the end-of-archive blocks are ignored', async () => {
    const tail = buildTar([{ name: 'after-eof', body: 'x' }]);
    await apply(buildTar([{ name: 'a', body: 'A' }], { trailer: tail }));
    expect(fs.readdirSync(root)).toEqual(['a']);
  });

  it('malformed headers: bad checksum, truncated body, negative base-256 size, bad UTF-8', async () => {
    const cases: [string, Buffer][] = [
      ['checksum', buildTar([{ name: 'a', body: 'A', badChecksum: true }])],
      ['truncated', buildTar([{ name: 'a', body: 'A'.repeat(600) }]).subarray(0, 1024)],
      [
        'negative',
        buildTar([{ name: 'a', sizeField: Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]) }]),
      ],
      ['extended header without entry', buildTar([{ name: 'a', type: 'longname', body: 'long\0' }])],
    ];
    const badUtf8 = buildTar([{ name: 'x', body: 'x' }]);
    badUtf8[0] = 0xff;
    badUtf8.write('        ', 148, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += badUtf8[i]!;
    badUtf8.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    cases.push(['utf8', badUtf8]);
    for (const [what, tar] of cases) {
      await expect(apply(tar), what).rejects.toMatchObject({ code: 'ERR_MALFORMED_ARCHIVE' });
    }
  });

  it('syscall failures on hostile names are typed and name the entry', async () => {
    await expect(apply([{ name: 'x', body: '', pax: { path: 'n'.repeat(300) } }])).rejects.toMatchObject({
      code: 'ERR_LAYER_APPLY',
    });
    await expect(apply([{ name: 'emptylink', type: 'symlink', linkname: '' }])).rejects.toMatchObject({
      code: 'ERR_LAYER_APPLY',
    });
  });

  it('unsupported entry types (GNU sparse) are refused, not guessed', async () => {
    const t = buildTar([{ name: 'a', body: 'A' }]);
    t.write('S', 156, 'latin1');
    t.write('        ', 148, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += t[i]!;
    t.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    await expect(apply(t)).rejects.toMatchObject({ code: 'ERR_MALFORMED_ARCHIVE' });
  });
});

describe('applyLayer: resource caps', () => {
  it('Go CVE-2022-2879: an oversized pax header is refused before it is buffered', async () => {
    const big = { name: 'a', body: 'A', pax: { comment: 'x'.repeat(2 << 20) } };
    await expect(apply([big])).rejects.toMatchObject({ code: 'ERR_LAYER_LIMIT' });
    await expect(apply([big], { limits: { maxExtendedHeader: 4 << 20 } })).resolves.toBeTruthy();
  });

  it('node-tar CVE-2024-28863: deep paths over 4096 bytes are refused', async () => {
    const deep = Array.from({ length: 3000 }, () => 'a').join('/');
    await expect(apply([{ name: 'x', body: '', pax: { path: deep } }])).rejects.toMatchObject({
      code: 'ERR_LAYER_LIMIT',
    });
  });

  it('CVE-2017-14992 gzip bomb: the byte cap stops it', async () => {
    const bomb = gzipMembers(buildTar([{ name: 'zeros', body: Buffer.alloc(32 << 20) }]));
    expect(bomb.length).toBeLessThan(100_000);
    await expect(
      applyLayer(root, decompress(Readable.from([bomb])), {
        whiteouts: 'apply',
        limits: { maxBytes: 1 << 20 },
      }),
    ).rejects.toMatchObject({ code: 'ERR_LAYER_LIMIT' });
  });

  it('the entry cap stops endless entry lists', async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, body: '' }));
    await expect(apply(many, { limits: { maxEntries: 10 } })).rejects.toMatchObject({
      code: 'ERR_LAYER_LIMIT',
    });
  });

  it('abort in the middle of a big file stops the apply and destroys the input', async () => {
    const ac = new AbortController();
    const big = buildTar([{ name: 'big', body: Buffer.alloc(8 << 20) }]);
    const chunks = Array.from({ length: big.length / 65536 }, (_, i) =>
      big.subarray(i * 65536, (i + 1) * 65536),
    );
    let sent = 0;
    const src = new Readable({
      read() {
        if (sent === 20) ac.abort();
        this.push(sent < chunks.length ? chunks[sent++] : null);
      },
    });
    await expect(
      applyLayer(root, decompress(src), { whiteouts: 'apply', signal: ac.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((r) => setImmediate(r));
    expect(src.destroyed).toBe(true);
    expect(sent).toBeLessThan(chunks.length);
  });

  it('abort stops the apply', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(apply([{ name: 'a', body: 'A' }], { signal: ac.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });
});

describe('applyLayer: whiteouts', () => {
  it('apply mode: .wh.name deletes a lower file; opaque keeps only this layer', async () => {
    await apply([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/old', body: 'old' },
      { name: 'etc/keep', body: 'keep' },
      { name: 'opq/', type: 'dir' },
      { name: 'opq/lower', body: 'l' },
      { name: 'opq/sub/lower2', body: 'l' },
    ]);
    await apply([
      { name: 'etc/.wh.old', body: '' },
      { name: 'etc/.wh.never-existed', body: '' },
      { name: 'opq/mine', body: 'm' },
      { name: 'opq/.wh..wh..opq', body: '' },
    ]);
    expect(fs.readdirSync(path.join(root, 'etc'))).toEqual(['keep']);
    expect(fs.readdirSync(path.join(root, 'opq'))).toEqual(['mine']);
  });

  it('containerd TestBreakouts: invalid whiteout names are ERR_INVALID_WHITEOUT', async () => {
    for (const name of ['.wh.', 'd/.wh..', 'd/.wh...']) {
      await expect(apply([{ name, body: '' }]), name).rejects.toMatchObject({ code: 'ERR_INVALID_WHITEOUT' });
    }
    expectOutsideIntact();
  });

  it('containerd TestBreakouts: whiteouts and opaque markers never go through a symlink', async () => {
    fs.symlinkSync(outside, path.join(root, 'link'));
    fs.symlinkSync('/', path.join(root, 'rootlink'));
    for (const name of ['link/.wh.secret', 'link/.wh..wh..opq', 'rootlink/.wh.layer']) {
      await expect(apply([{ name, body: '' }]), name).rejects.toMatchObject({ code: 'ERR_INVALID_WHITEOUT' });
    }
    // a whiteout of the symlink itself removes the link, not its target
    await apply([{ name: '.wh.link', body: '' }]);
    expect(fs.existsSync(path.join(root, 'link'))).toBe(false);
    expectOutsideIntact();
  });

  it('overlay mode: whiteouts are 0/0 char devices, opaque dirs get trusted.overlay.opaque=y', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    await apply(
      [
        { name: 'etc/.wh.old', body: '' },
        { name: 'etc/.wh.old2', body: '' },
        { name: 'var/.wh..wh..opq', body: '' },
        { name: 'var/new', body: 'n' },
      ],
      { whiteouts: 'overlay' },
    );
    const wh = fs.lstatSync(path.join(root, 'etc/old'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(lgetxattr(path.join(root, 'var'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.readdirSync(root).sort()).toEqual(['etc', 'var']); // no whiteout prototype left behind
  });

  it('a failed overlay apply leaves no whiteout prototype and no zstd process behind', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    const tar = buildTar([
      { name: '.wh.a', body: '' },
      { name: 'big', body: Buffer.alloc(4 << 20, 1) },
      { name: '../escape', body: 'x' },
      { name: 'tail', body: Buffer.alloc(4 << 20, 2) },
    ]);
    const zst = execFileSync('zstd', ['-q', '-c', '-1'], { input: tar });
    await expect(
      applyLayer(root, decompress(Readable.from([zst])), { whiteouts: 'overlay' }),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_LAYER_ENTRY' });
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.libpod-wh-'))).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    const ours = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)]).toString();
    expect(ours).not.toMatch(/zstd/);
  });

  it('overlay mode: a directory recreated over a whiteout in the same layer is opaque', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    await apply(
      [
        { name: '.wh.d', body: '' },
        { name: 'd/', type: 'dir' },
      ],
      { whiteouts: 'overlay' },
    );
    expect(fs.lstatSync(path.join(root, 'd')).isDirectory()).toBe(true);
    expect(lgetxattr(path.join(root, 'd'), 'trusted.overlay.opaque')?.toString()).toBe('y');
  });

  it('overlay mode: parents are resolved in the merged view (lower var/run -> /run)', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    const lower = path.join(tmp, 'layer-evil');
    fs.mkdirSync(path.join(lower, 'var'));
    fs.mkdirSync(path.join(lower, 'run'));
    fs.chmodSync(path.join(lower, 'run'), 0o700);
    fs.symlinkSync('/run', path.join(lower, 'var/run'));
    await apply([{ name: 'var/run/x.pid', body: '1' }], { whiteouts: 'overlay', lowerDirs: [lower] });
    expect(fs.readFileSync(path.join(root, 'run/x.pid'), 'utf8')).toBe('1');
    // the implied parent was copied up with the lower dir's metadata
    expect(fs.lstatSync(path.join(root, 'run')).mode & 0o7777).toBe(0o700);
    expect(fs.existsSync(path.join(root, 'var/run'))).toBe(false);
    fs.rmSync(lower, { recursive: true });
    fs.mkdirSync(lower);
  });

  it('overlay mode: replacing a lower symlink with a directory redirects later entries', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    const lower = path.join(tmp, 'layer-evil');
    fs.mkdirSync(path.join(lower, 'var'));
    fs.mkdirSync(path.join(lower, 'run'));
    fs.symlinkSync('/run', path.join(lower, 'var/run'));
    await apply(
      [
        { name: 'var/run/a', body: 'via link' },
        { name: 'var/run/', type: 'dir' },
        { name: 'var/run/b', body: 'in dir' },
      ],
      { whiteouts: 'overlay', lowerDirs: [lower] },
    );
    expect(fs.readFileSync(path.join(root, 'run/a'), 'utf8')).toBe('via link');
    expect(fs.readFileSync(path.join(root, 'var/run/b'), 'utf8')).toBe('in dir');
    fs.rmSync(lower, { recursive: true });
    fs.mkdirSync(lower);
  });

  it('a parent that is a file is malformed; a hardlink to a directory is refused', async () => {
    await expect(
      apply([
        { name: 'f', body: '' },
        { name: 'f/x', body: '' },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_MALFORMED_ARCHIVE' });
    await expect(
      apply([
        { name: 'd/', type: 'dir' },
        { name: 'h', type: 'hardlink', linkname: 'd' },
      ]),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_LAYER_ENTRY' });
  });
});

function paxBody(recs: Record<string, string>): Buffer {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(recs)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len++;
    parts.push(String(len) + rest);
  }
  return Buffer.from(parts.join(''));
}
void rel;

describe('applyLayer: xattr policy', () => {
  it('user.* xattrs on a symlink (refused by Linux) are skipped and counted, not fatal', async (ctx) => {
    if (!isRoot) ctx.skip('needs root: ownership, mknod, security.* and trusted.* xattrs');
    const r = await apply([
      { name: 'l', type: 'symlink', linkname: 'x', pax: { 'SCHILY.xattr.user.a': 'b' } },
    ]);
    expect(r.xattrsSkipped).toBe(1);
    expect(fs.lstatSync(path.join(root, 'l')).isSymbolicLink()).toBe(true);
  });
});
