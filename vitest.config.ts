import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources; the packaging check covers the built exports.
    alias: [
      { find: /^@libpod-ts\/core\/spec$/, replacement: src('./packages/core/src/spec/index.ts') },
      { find: /^@libpod-ts\/(storage|image|network|core)$/, replacement: src('./packages/$1/src/index.ts') },
      { find: /^@libpod-ts\/test-rig$/, replacement: src('./test/rig/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Test files share one host (mounts, netns, iptables, runc state): the leak check compares
    // the host before and after each file, which is only meaningful when files run one at a time.
    fileParallelism: false,
    pool: 'forks',
    setupFiles: [src('./test/rig/setup-leak-check.ts')],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The summary line (`N passed, N failed, N skipped`) is what CI reads.
    reporters: ['default', src('./test/rig/summary-reporter.ts')],
  },
});
