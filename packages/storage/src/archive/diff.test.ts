import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffTar } from './diff.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'diff-tar-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const bufs: Buffer[] = [];
  for await (const b of s) bufs.push(b as Buffer);
  return Buffer.concat(bufs);
}

describe('diffTar', () => {
  it('docker cp CVE-2018-15664 class: a dir swapped for a symlink mid-walk never leaks host file content', async () => {
    const layer = path.join(tmp, 'layer');
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(layer);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'shadow'), 'host secret');
    // the walk saw a real dir `etc`; by the time the file is opened it is a symlink to the host
    fs.symlinkSync(outside, path.join(layer, 'etc'));
    const changes = () => [
      { path: '/etc/shadow', kind: 'added' as const, host: path.join(layer, 'etc/shadow') },
    ];
    const err = await collect(diffTar(layer, changes)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_LAYER_CHANGED' });
  });

  it('regular files inside the layer are archived', async () => {
    const layer = path.join(tmp, 'layer');
    fs.mkdirSync(path.join(layer, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(layer, 'etc/hosts'), 'hosts');
    const tar = await collect(
      diffTar(layer, () => [{ path: '/etc/hosts', kind: 'added', host: path.join(layer, 'etc/hosts') }]),
    );
    expect(tar.includes(Buffer.from('hosts'))).toBe(true);
    expect(tar.length % 512).toBe(0);
  });
});
