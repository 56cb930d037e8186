/**
 * The tar-split recorder sees the uncompressed stream in whatever chunks the decompressor gives;
 * the split file, and the tar rebuilt from it, must not depend on the chunking. The archive is GNU
 * tar's (pax headers for long names, hardlinks, symlinks, empty files, end-of-archive padding).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../archive/apply.js';
import { rebuildTar, SplitRecorder } from './tarsplit.js';

let tmp: string;
let tar: Buffer;
let layer: string;

beforeAll(async () => {
  tmp = await makeTempDir('tarsplit');
  const src = join(tmp, 'src');
  const deep = join(src, 'd'.repeat(90), 'e'.repeat(90));
  fs.mkdirSync(deep, { recursive: true });
  for (let i = 0; i < 300; i++) fs.writeFileSync(join(src, `f${i}`), 'x'.repeat((i * 37) % 1500));
  fs.writeFileSync(join(deep, 'n'.repeat(120)), 'long name');
  fs.writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 7));
  fs.writeFileSync(join(src, 'empty'), '');
  fs.linkSync(join(src, 'f7'), join(src, 'hard'));
  fs.symlinkSync('/f1', join(src, 'sym'));
  for (const format of ['posix', 'gnu']) {
    execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', join(tmp, `${format}.tar`), '.']);
  }
  tar = fs.readFileSync(join(tmp, 'posix.tar'));
  layer = join(tmp, 'layer');
  fs.mkdirSync(layer);
  await applyLayer(layer, Readable.from([tar]), { whiteouts: 'apply' });
});
afterAll(async () => {
  await removeTempDir(tmp);
});

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function record(data: Buffer, chunk: number, file: string): Promise<void> {
  const rec = new SplitRecorder(file);
  for (let i = 0; i < data.length; i += chunk) {
    // a fresh copy per chunk, overwritten after write(): the recorder must keep no views
    const c = Buffer.from(data.subarray(i, i + chunk));
    rec.write(c);
    c.fill(0xee);
  }
  await rec.finish();
}

describe('SplitRecorder', () => {
  it('rebuilds the exact tar for every input chunking (pax and GNU headers)', async () => {
    for (const format of ['posix', 'gnu']) {
      const data = fs.readFileSync(join(tmp, `${format}.tar`));
      const splits: Buffer[] = [];
      for (const chunk of [1, 511, 512, 513, 4096, 1 << 20, data.length]) {
        const file = join(tmp, `split-${format}-${chunk}`);
        await record(data, chunk, file);
        expect((await collect(rebuildTar(file, layer))).equals(data)).toBe(true);
        splits.push(fs.readFileSync(file));
      }
      // only the compression framing may differ: the records are the same bytes
      const { gunzipSync } = await import('node:zlib');
      for (const s of splits) expect(gunzipSync(s).equals(gunzipSync(splits[0]!))).toBe(true);
    }
    expect(tar.length).toBeGreaterThan(3 << 20);
  });
});
