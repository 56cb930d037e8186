import { defineConfig } from 'tsup';

export default defineConfig({
  // Two public entries: the package and the standalone spec generator (`@libpod-ts/core/spec`).
  entry: {
    index: 'src/index.ts',
    'spec/index': 'src/spec/index.ts',
    // The exit hook conmon runs when a container exits (lifecycle; not a user CLI).
    'bin/exit-hook': 'src/bin/exit-hook.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
});
