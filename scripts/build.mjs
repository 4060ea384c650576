// Builds the CLI (dist/cli.js), the benchmarks (dist/bench.js, which the CLI's `bench ...` commands
// load at run time), the library (dist/lib/index.js, the package's `import` entry, with its
// TypeScript declarations in dist/types/ from tsconfig.lib.json) and every test file
// (dist/test/*.test.js) with esbuild. npm packages stay external: they are loaded from
// node_modules at run time. A .proto schema
// (src/io/onnx/onnx.proto) is bundled as text, so no bundle looks for it on disk.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: 'linked', logLevel: 'warning', loader: { '.proto': 'text' } };
// `node scripts/build.mjs conv2d` builds only the test files whose names contain "conv2d".
const filter = process.argv[2];
const tests = readdirSync('test').filter((f) => f.endsWith('.test.ts') && (!filter || f.includes(filter))).map((f) => `test/${f}`);
await Promise.all([
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  build({ ...common, entryPoints: ['bench/commands.ts'], outfile: 'dist/bench.js' }),
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/lib/index.js' }),
  build({ ...common, entryPoints: tests, outdir: 'dist/test' }),
  declarations(),
]);

/** dist/types/**.d.ts of the library's entry and what it imports (TypeScript's own compiler; about a second). */
async function declarations() {
  rmSync('dist/types', { recursive: true, force: true }); // no stale .d.ts of a file since removed
  // typescript's "exports" hide bin/tsc; find it beside its package.json.
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.lib.json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build: declarations (tsc -p tsconfig.lib.json) failed:\n${r.stdout}${r.stderr}`);
}
