// Packaging check: publint on every published package, then each export resolved and imported
// from the built files, as a consumer would (ESM import and CJS require).
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const packages = ['storage', 'image', 'network', 'core'];
let failed = false;
for (const name of packages) {
  const dir = path.resolve('packages', name);
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  const { messages } = await publint({ pkgDir: dir, level: 'warning', strict: true });
  for (const m of messages) {
    console.error(`${pkg.name}: ${m.type}: ${formatMessage(m, pkg)}`);
    if (m.type !== 'suggestion') failed = true;
  }
  const require = createRequire(path.join(dir, 'package.json'));
  for (const sub of Object.keys(pkg.exports)) {
    if (sub.endsWith('package.json')) continue;
    const spec = `${pkg.name}${sub.slice(1)}`;
    const esm = await import(spec);
    const cjs = require(spec);
    if (Object.keys(esm).length === 0 || Object.keys(cjs).length === 0) {
      console.error(`${spec}: no exports`);
      failed = true;
    }
  }
  console.log(`packcheck: ${pkg.name} ok`);
}
if (failed) process.exit(1);
