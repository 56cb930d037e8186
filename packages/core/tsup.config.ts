import { defineConfig } from 'tsup';

export default defineConfig({
  // Two public entries: the package and the standalone spec generator (`@libpod-ts/core/spec`).
  entry: { index: 'src/index.ts', 'spec/index': 'src/spec/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
});
