// The subgroup kernels (reduction_wgsl.ts and the batch-norm split, parallel global pool and
// row-parallel softmax-CE that use it) assume nothing about the subgroup size: NVIDIA's is 32,
// AMD's 32 or 64, lavapipe's follows its SIMD width (8 with AVX2). Here the tests of every kernel
// with a subgroup path run again under lavapipe at SIMD widths 128 and 512 bits
// (LP_NATIVE_VECTOR_WIDTH), which give subgroups of 4 and 16 lanes; the adapter's reported size is
// checked first, so that a Mesa that ignores the variable fails here instead of proving nothing.
// On any other adapter the variable means nothing and the test says so and stops.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { testGpu, closeTestGpu } from './helpers.js';

const test = suite('subgroup sizes');
test.after(closeTestGpu);

/** Test bundles (dist/test/) whose kernels have a subgroup path; each checks it against the CPU reference. */
const SUBGROUP_TESTS = ['batchnorm_split', 'pool_global_parallel', 'softmax_cross_entropy_rows', 'kernel_class'];
const WIDTHS: [bits: number, lanes: number][] = [[128, 4], [512, 16]];

for (const [bits, lanes] of WIDTHS) {
  test(`lavapipe at ${bits}-bit SIMD: subgroups of ${lanes}, every subgroup kernel test passes`, async () => {
    const gpu = await testGpu();
    if (!/llvmpipe|lavapipe/i.test(gpu.adapter.name) || !gpu.adapter.hasSubgroups) {
      console.log(`  (adapter "${gpu.adapter.name}" is not lavapipe with subgroups: its subgroup size cannot be chosen here)`);
      return;
    }
    const env = { ...process.env, LP_NATIVE_VECTOR_WIDTH: String(bits) };
    const info = spawnSync(process.execPath, ['dist/cli.js', 'info'], { encoding: 'utf8', env, timeout: 120_000 });
    assert.is(info.status, 0, info.stderr);
    assert.match(info.stdout, `subgroups: yes (sizes ${lanes})`, info.stdout);
    for (const name of SUBGROUP_TESTS) {
      const r = spawnSync(process.execPath, [`dist/test/${name}.test.js`], { encoding: 'utf8', env, timeout: 240_000 });
      assert.is(r.status, 0, `${name} with subgroups of ${lanes}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /Passed:\s+[1-9]/, `${name} ran no test:\n${r.stdout}`);
    }
  });
}

test.run();
