// Builds the GPU harness's one entry, bench/gpu/logits.ts → dist/gpu_logits.js (beside dist/cli.js,
// so it resolves the same node_modules). Run after scripts/build.mjs; pack.sh and the tests call it.
import { build } from 'esbuild';

await build({
  entryPoints: ['bench/gpu/logits.ts'], outfile: 'dist/gpu_logits.js', bundle: true, platform: 'node', format: 'esm',
  target: 'node20', packages: 'external', sourcemap: 'linked', logLevel: 'warning',
});
