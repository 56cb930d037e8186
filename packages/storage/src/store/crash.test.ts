/**
 * Crash safety and multi-process use, with real child processes: a writer or deleter killed with
 * SIGKILL mid-operation, then the next open repairs; several processes churning one store.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from './store.js';
import { digestOf, makeTar, streamOf } from './testing/tars.js';

const WORKER = fileURLToPath(new URL('./testing/worker.ts', import.meta.url));

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await makeTempDir('store-crash');
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await removeTempDir(dir);
});

const root = () => join(dir, 'root');
const runRoot = () => join(dir, 'run');
const open = () => openStore({ root: root(), runRoot: runRoot(), driver: 'vfs' });

function startWorker(
  mode: string,
  extra: object = {},
): { child: ChildProcess; waitFor: (line: string) => Promise<void>; done: Promise<string> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      WORKER,
      mode,
      JSON.stringify({ root: root(), runRoot: runRoot(), driver: 'vfs', ...extra }),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  let err = '';
  const waiters: Array<[string, () => void]> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const [line, resolve] of waiters) if (out.includes(`${line}\n`)) resolve();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<string>((resolve, reject) =>
    child.on('exit', (code, sig) =>
      code === 0 || sig === 'SIGKILL'
        ? resolve(out)
        : reject(new Error(`worker ${mode} exited ${code}: ${err}`)),
    ),
  );
  return {
    child,
    done,
    waitFor: (line) =>
      new Promise<void>((resolve, reject) => {
        waiters.push([line, resolve]);
        child.on('exit', () => reject(new Error(`worker exited before "${line}": ${err}`)));
      }),
  };
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('crash safety (SIGKILL)', () => {
  it('a writer killed mid-layer leaves an incomplete layer that the next open removes', async () => {
    (await open()).close();
    const w = startWorker('slow-layer');
    await w.waitFor('writing');
    const peek = await open(); // the writer is alive: its layer is in progress, not removed
    expect(peek.recovered).toEqual([]);
    expect((await peek.check()).problems).toEqual([]);
    await peek.close();
    await kill(w.child);
    const store = await open();
    expect(store.recovered.map((p) => p.kind)).toEqual(['dead-writer-layer']);
    expect(await store.listLayers()).toEqual([]);
    expect(await readdir(join(root(), 'vfs', 'dir'))).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
    await store.close();
  });

  it('a deleter killed mid-delete leaves a deleting layer that the next open finishes', async () => {
    const s = await open();
    const tar = await makeTar([{ name: 'a', content: 'a' }]);
    const { layer } = await s.createLayer({ tar: streamOf(tar), expectedDiffID: digestOf(tar) });
    await s.close();
    const w = startWorker('stuck-delete', { layer: layer.id });
    await w.waitFor('deleting');
    const mid = await open();
    // Hidden from lookups while being deleted, and not yet removed (its deleter is alive).
    expect(await mid.layerByChainID(layer.chainID!)).toBeUndefined();
    expect((await mid.listLayers()).length).toBe(0);
    expect(mid.recovered).toEqual([]);
    expect(await readdir(join(root(), 'vfs', 'dir'))).toEqual([layer.id]);
    await mid.close();
    await kill(w.child);
    const store = await open();
    expect(store.recovered.map((p) => p.kind)).toEqual(['dead-writer-layer']);
    expect(await store.layerByChainID(layer.chainID!)).toBeUndefined();
    expect(await readdir(join(root(), 'vfs', 'dir'))).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
    await store.close();
  });
});

describe('the lock', () => {
  it('a holder that dies releases the lock; until then callers time out with a typed error', async () => {
    (await open()).close();
    const w = startWorker('hold-db');
    await w.waitFor('holding');
    const blocked = openStore({ root: root(), runRoot: runRoot(), driver: 'vfs', lockTimeoutMs: 300 });
    await expect(blocked).rejects.toMatchObject({ code: 'ERR_STORE_LOCK_TIMEOUT' });
    const waiting = openStore({ root: root(), runRoot: runRoot(), driver: 'vfs', lockTimeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 200));
    await kill(w.child);
    const store = await waiting;
    expect(await store.listLayers()).toEqual([]);
    await store.close();
  });
});

describe('killed at any instant', () => {
  it('a pull/commit/remove loop killed at random points always leaves a store that repairs clean', async () => {
    (await open()).close();
    for (let round = 0; round < 5; round++) {
      const w = startWorker('image-loop');
      await w.waitFor('tick');
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 300));
      await kill(w.child);
      const store = await open();
      const report = await store.repair();
      expect(report.remaining, `round ${round}`).toEqual([]);
      const again = await store.check();
      expect(again.problems, `round ${round}`).toEqual([]);
      // Whatever survived is consistent and removable.
      for (const c of await store.listContainers()) await store.deleteContainer(c.id, { force: true });
      for (const img of await store.listImages()) await store.deleteImage(img.id);
      expect(await store.listLayers(), `round ${round}`).toEqual([]);
      await store.close();
    }
  });
});

describe('many processes, one store', () => {
  it('4 processes creating and deleting container layers concurrently: zero errors, no leftovers', async () => {
    const s = await open();
    const tar = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/os', content: 'x' },
    ]);
    const { layer } = await s.createLayer({ tar: streamOf(tar), expectedDiffID: digestOf(tar) });
    await s.createImage({
      config: Buffer.from('{"os":"linux"}'),
      topLayer: layer.id,
      names: ['localhost/base:1'],
    });
    const workers = Array.from({ length: 4 }, () => startWorker('churn', { image: 'base:1', count: 15 }));
    const outs = await Promise.all(workers.map((w) => w.done));
    const results = outs.map(
      (o) => JSON.parse(o.trim().split('\n').pop()!) as { errors: number; messages: string[] },
    );
    expect(results.flatMap((r) => r.messages)).toEqual([]);
    expect(results.reduce((a, r) => a + r.errors, 0)).toBe(0);
    expect(await s.listContainers()).toEqual([]);
    expect((await s.listLayers()).map((l) => l.id)).toEqual([layer.id]);
    expect((await s.check()).problems).toEqual([]);
    await s.deleteImage('base:1');
    await s.close();
  });
});
