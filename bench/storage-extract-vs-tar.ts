/**
 * Layer extraction vs GNU tar: applyLayer() of a big many-files layer vs `tar -xf`, same tar file,
 * same file system, page cache dropped before every timed run (bench/lib/harness.ts).
 *   npx tsx bench/storage-extract-vs-tar.ts [--mode apply|overlay] [--gzip]
 * The layer (/usr/share + /usr/lib/python3.11 + /usr/lib/node_modules of this host, ~620 MB in
 * ~58k entries) is generated once under bench/.work (gitignored). Both sides keep owners, modes
 * and xattrs (`tar -p --xattrs --numeric-owner`); neither side fsyncs. Every run extracts into a
 * new directory (deleting 58k files between runs would put that I/O into the next timed run);
 * all of them are removed at the end.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLayer } from '../packages/storage/src/archive/apply.js';
import { decompress } from '../packages/storage/src/archive/decompress.js';
import { runBenchmark, withHostLock } from './lib/harness.js';

const mode = (process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1] : 'apply') as
  | 'apply'
  | 'overlay';
const gzip = process.argv.includes('--gzip');

const work = fileURLToPath(new URL('./.work/', import.meta.url));
const SOURCES = ['usr/share', 'usr/lib/python3.11', 'usr/lib/node_modules'];
const plain = path.join(work, 'extract-layer.tar');
const layer = gzip ? path.join(work, 'extract-layer.tar.gz') : plain;
const outRoot = path.join(work, 'extract-out');

function ensureLayer(): void {
  fs.mkdirSync(work, { recursive: true });
  if (!fs.existsSync(plain)) {
    const existing = SOURCES.filter((s) => fs.existsSync('/' + s));
    execFileSync('tar', ['--numeric-owner', '-cf', plain, '-C', '/', ...existing], { stdio: 'inherit' });
  }
  if (gzip && !fs.existsSync(layer)) execFileSync('sh', ['-c', `gzip -1 -c '${plain}' > '${layer}'`]);
}

let n = 0;
function freshDir(): string {
  const d = path.join(outRoot, String(n++));
  fs.mkdirSync(d, { recursive: true });
  return d;
}

await withHostLock(async () => {
  ensureLayer();
  fs.rmSync(outRoot, { recursive: true, force: true });
  const entries = Number(execFileSync('sh', ['-c', `tar -tf '${plain}' | wc -l`]).toString());
  const mb = fs.statSync(plain).size / 1e6;
  try {
    await runBenchmark({
      name: `extract a ${mb.toFixed(0)} MB / ${entries}-entry layer${gzip ? ' (gzip -1)' : ''}: applyLayer (${mode}) vs tar -xf`,
      ours: async () => {
        const src = fs.createReadStream(layer, { highWaterMark: 1 << 20 });
        await applyLayer(freshDir(), gzip ? decompress(src) : src, { whiteouts: mode });
      },
      reference: async () => {
        execFileSync('tar', ['--numeric-owner', '-p', '--xattrs', '-xf', layer, '-C', freshDir()]);
      },
      referenceLabel: `\`tar --numeric-owner -p --xattrs -xf${gzip ? ' (gz)' : ''}\``,
      notes: `${entries} entries from this host's ${SOURCES.join(', ')}; ext4; each run into a new dir, no fsync`,
    });
  } finally {
    fs.rmSync(outRoot, { recursive: true, force: true });
  }
});
