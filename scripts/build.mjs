// Builds the CLI (dist/cli.js), the benchmarks (dist/bench.js, which the CLI's `bench ...` commands
// load at run time) and every test file (dist/test/*.test.js) with esbuild.
// npm packages stay external: they are loaded from node_modules at run time. A .proto schema
// (src/io/onnx/onnx.proto) is bundled as text, so no bundle looks for it on disk.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: 'linked', logLevel: 'warning', loader: { '.proto': 'text' } };
// `node scripts/build.mjs conv2d` builds only the test files whose names contain "conv2d".
const filter = process.argv[2];
const tests = readdirSync('test').filter((f) => f.endsWith('.test.ts') && (!filter || f.includes(filter))).map((f) => `test/${f}`);
await Promise.all([
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  build({ ...common, entryPoints: ['bench/commands.ts'], outfile: 'dist/bench.js' }),
  build({ ...common, entryPoints: tests, outdir: 'dist/test' }),
]);
