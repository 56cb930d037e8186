/**
 * Child process for the store's crash and concurrency tests (and bench/storage-concurrency.ts):
 *   node --import tsx worker.ts <mode> <json options>
 * Modes:
 *   slow-layer     create a layer from a tar that never ends; prints `writing` once bytes flow
 *   stuck-delete   delete layer `layer`; the driver's removeLayer prints `deleting` and hangs
 *   churn          `count` times: create a container on `image`, delete it; prints a JSON summary
 *   hold-db        open the store's LevelDB directly and hold it (its fcntl lock) until killed;
 *                  prints `holding`
 *   image-loop     forever: pull-like image creation (leased layers, image commit, lease release),
 *                  a container mounted and removed, the image deleted; prints `tick` per round
 * The parent kills the first two with SIGKILL at the printed point.
 */
import { Readable } from 'node:stream';
import { createDriver } from '../../drivers/registry.js';
import type { Driver } from '../../drivers/types.js';
import { openStore } from '../store.js';
import { DirTestDriver } from './dir-driver.js';
import { digestOf, makeTar } from './tars.js';

interface Opts {
  root: string;
  runRoot: string;
  driver: 'overlay' | 'vfs' | 'dir';
  layer?: string;
  image?: string;
  count?: number;
}

const [mode, json] = process.argv.slice(2);
const opts = JSON.parse(json ?? '{}') as Opts;

function makeDriver(): Driver {
  const home = `${opts.root}/${opts.driver === 'dir' ? 'vfs' : opts.driver}`;
  return opts.driver === 'dir' ? new DirTestDriver(home) : createDriver(opts.driver, { home });
}

async function main(): Promise<void> {
  if (mode === 'hold-db') {
    const { Level } = await import('level');
    const db = new Level(`${opts.root}/db`);
    await db.open();
    process.stdout.write('holding\n');
    setInterval(() => undefined, 1000);
    return;
  }
  const driver = makeDriver();
  if (mode === 'stuck-delete') {
    const real = driver.removeLayer.bind(driver);
    driver.removeLayer = async (id: string) => {
      process.stdout.write('deleting\n');
      await new Promise(() => undefined);
      await real(id);
    };
  }
  const store = await openStore({ root: opts.root, runRoot: opts.runRoot, driver });
  if (mode === 'slow-layer' || mode === 'stuck-delete') {
    // The stalled stream / promise holds no handle: keep the process alive until it is killed.
    setInterval(() => undefined, 1000);
  }
  if (mode === 'slow-layer') {
    const head = await makeTar([{ name: 'big', content: 'x'.repeat(4096) }]);
    let sent = false;
    const tar = new Readable({
      read() {
        if (!sent) {
          sent = true;
          // A file header announcing 1 GiB, then a first block of its content: applying starts.
          this.push(Buffer.from(head.subarray(0, 512 + 4096)));
          setTimeout(() => process.stdout.write('writing\n'), 200);
        }
      },
    });
    await store.createLayer({ tar });
  } else if (mode === 'stuck-delete') {
    await store.deleteLayer(opts.layer!);
  } else if (mode === 'image-loop') {
    for (let i = 0; ; i++) {
      const lease = await store.createLease();
      const t1 = await makeTar([{ name: 'a', content: `a${i % 3}` }]);
      const t2 = await makeTar([{ name: 'b', content: `b${i}` }]);
      const l1 = await store.createLayer({ tar: Readable.from([t1]), expectedDiffID: digestOf(t1), lease });
      const l2 = await store.createLayer({
        parent: l1.layer.id,
        tar: Readable.from([t2]),
        expectedDiffID: digestOf(t2),
        lease,
      });
      const img = await store.createImage({
        config: Buffer.from(JSON.stringify({ os: 'linux', i })),
        manifest: Buffer.from(JSON.stringify({ schemaVersion: 2, i })),
        topLayer: l2.layer.id,
        names: [`localhost/loop:${i}`],
      });
      await store.releaseLease(lease);
      const c = await store.createContainer({ image: img.id });
      await store.mount(c.id);
      await store.unmount(c.id);
      await store.deleteContainer(c.id);
      await store.deleteImage(img.id);
      process.stdout.write('tick\n');
    }
  } else if (mode === 'churn') {
    const started = performance.now();
    let errors = 0;
    const messages: string[] = [];
    for (let i = 0; i < (opts.count ?? 10); i++) {
      try {
        const c = await store.createContainer({ image: opts.image, name: `c-${process.pid}-${i}` });
        await store.deleteContainer(c.id);
      } catch (err) {
        errors++;
        messages.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
      }
    }
    const ms = performance.now() - started;
    process.stdout.write(
      `${JSON.stringify({ pid: process.pid, errors, messages: messages.slice(0, 5), ms, stats: store.stats })}\n`,
    );
    await store.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
