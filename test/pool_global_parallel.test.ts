// The parallel (GPU-class) global average pool forward against the float64 reference: odd channel
// counts, batch 1 and 3, 1×1, 7×7, 5×3 and 33×31 planes (more values than a workgroup has lanes),
// every lanes-per-plane from one lane to a whole workgroup, the barrier-tree and (where the adapter
// has them) subgroup reductions; y is poisoned with NaN before each run and its neighbours checked.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Shape4 } from '../src/kernels/pool_common.js';
import { globalAvgPoolForward, globalAvgPoolReference } from '../src/kernels/pool_global.js';
import { PARALLEL_POOL_WORKGROUP, parallelPoolLanes } from '../src/kernels/pool_global_parallel.js';
import { ShapeError, sizeOf, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('globalAvgPool parallel');
test.after(closeTestGpu);

// Sums of up to 1023 values in [-1, 1] in f32 (any order), then a divide.
const tol = { atol: 2e-6, rtol: 1e-5 };
const SHAPES: Shape4[] = [[13, 3, 7, 7], [3, 1, 1, 1], [5, 3, 5, 3], [3, 1, 33, 31], [1, 1, 7, 7]];

test('lanes per plane by default: about 4 values each, one lane for tiny planes, a workgroup for large ones', () => {
  assert.is(parallelPoolLanes(1), 1);
  assert.is(parallelPoolLanes(4), 1);
  assert.is(parallelPoolLanes(49), 16);
  assert.is(parallelPoolLanes(64), 16);
  assert.is(parallelPoolLanes(56 * 56), PARALLEL_POOL_WORKGROUP);
});

test('forward matches the reference for every lanes-per-plane, tree and subgroup reductions, y poisoned', async () => {
  const gpu = await testGpu();
  const modes = gpu.device.features.has('subgroups') ? [false, true] : [false];
  if (modes.length === 1) console.log('  (subgroup path skipped: this adapter has no subgroups feature)');
  for (const [i, s] of SHAPES.entries()) {
    const [C, N] = s;
    const x = randomArray(sizeOf(s), 70 + i);
    const want = globalAvgPoolReference(x, s);
    const xData = new Float32Array(sizeOf(s) + 9).fill(NaN);
    xData.set(x, 5);
    const xb = gpu.upload('x', 'activations', xData);
    for (const subgroups of modes) {
      for (const lanes of [undefined, 1, 2, 8, 16, PARALLEL_POOL_WORKGROUP]) {
        const what = `${s.join('x')} lanes=${lanes ?? `default ${parallelPoolLanes(s[2] * s[3])}`} subgroups=${subgroups}`;
        const yb = gpu.upload('y', 'activations', new Float32Array(C * N + 10).fill(NaN));
        const launches = await globalAvgPoolForward(gpu, { x: tensor(xb, s, 5), y: tensor(yb, [C, N], 3), variant: 'parallel', lanesPerPlane: lanes, subgroups });
        await gpu.run(launches);
        launches.forEach((l) => l.destroy());
        const got = await gpu.read(yb);
        assertClose(got.slice(3, 3 + C * N), want, tol, what);
        assert.ok([...got.slice(0, 3), ...got.slice(3 + C * N)].every(Number.isNaN), `${what}: nothing outside y was written`);
        gpu.arena.free(yb);
      }
    }
    gpu.arena.free(xb);
  }
});

test('a lanes-per-plane that is not a power of two up to the workgroup is refused by name', async () => {
  const gpu = await testGpu();
  const xb = gpu.zeros('x', 'activations', 2 * 49);
  const yb = gpu.zeros('y', 'activations', 2);
  for (const lanes of [0, 3, 128]) {
    await globalAvgPoolForward(gpu, { x: tensor(xb, [2, 1, 7, 7]), y: tensor(yb, [2, 1]), variant: 'parallel', lanesPerPlane: lanes }).then(
      () => assert.unreachable('should throw'),
      (e: Error) => { assert.ok(e instanceof ShapeError); assert.match(e.message, `globalAvgPool: lanesPerPlane must be a power of two from 1 to 64, got ${lanes}`); },
    );
  }
  gpu.arena.free(xb);
  gpu.arena.free(yb);
});

test.run();
