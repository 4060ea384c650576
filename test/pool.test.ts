import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  avgPool2x2Backward, avgPool2x2BackwardReference, avgPool2x2Forward, avgPool2x2OutputShape, avgPool2x2Reference,
} from '../src/kernels/pool_average.js';
import type { Shape4 } from '../src/kernels/pool_common.js';
import {
  globalAvgPoolBackward, globalAvgPoolBackwardReference, globalAvgPoolForward, globalAvgPoolReference,
} from '../src/kernels/pool_global.js';
import {
  maxPool3x3Backward, maxPool3x3BackwardReference, maxPool3x3Forward, maxPool3x3OutputShape, maxPool3x3Reference,
} from '../src/kernels/pool_max.js';
import { ShapeError, sizeOf, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, testGpu, type Tolerance } from './helpers.js';
import { Layout } from './pool_layout.js';

const test = suite('pool');
test.after(closeTestGpu);

interface PoolOp {
  name: string;
  outShape(s: Shape4): readonly number[];
  forward(gpu: Gpu, x: TensorRef, y: TensorRef): Promise<Launch[]>;
  /** `x` is passed to every op; only max pool reads it. */
  backward(gpu: Gpu, x: TensorRef, dy: TensorRef, dx: TensorRef, accumulate: boolean): Promise<Launch[]>;
  reference(x: Float32Array, s: Shape4): Float64Array;
  backwardReference(x: Float32Array, dy: Float32Array, s: Shape4): Float64Array;
  /** f32 kernel against the float64 reference. */
  forwardTol: Tolerance;
  backwardTol: Tolerance;
}

/** `blocks`: outputs per invocation (default: the adapter's default). */
const avgWith = (blocks?: number): PoolOp => ({
  name: `avgPool2x2${blocks ? ` (${blocks} per invocation)` : ''}`, outShape: avgPool2x2OutputShape,
  forward: (gpu, x, y) => avgPool2x2Forward(gpu, { x, y, blocksPerInvocation: blocks }),
  backward: (gpu, _x, dy, dx, accumulate) => avgPool2x2Backward(gpu, { dy, dx, accumulate, blocksPerInvocation: blocks }),
  reference: avgPool2x2Reference,
  backwardReference: (_x, dy, s) => avgPool2x2BackwardReference(dy, s),
  // Four f32 adds of values in [-1, 1]; the backward is one exact multiply by 0.25 (plus one add).
  forwardTol: { atol: 1e-6, rtol: 1e-6 }, backwardTol: { atol: 1e-6, rtol: 1e-6 },
});
const avg = avgWith();
const max: PoolOp = {
  name: 'maxPool3x3', outShape: maxPool3x3OutputShape,
  forward: (gpu, x, y) => maxPool3x3Forward(gpu, { x, y }),
  backward: (gpu, x, dy, dx, accumulate) => maxPool3x3Backward(gpu, { x, dy, dx, accumulate }),
  reference: maxPool3x3Reference,
  backwardReference: maxPool3x3BackwardReference,
  // A max is exact; dx sums at most 4 dy values in f32.
  forwardTol: { atol: 0, rtol: 0 }, backwardTol: { atol: 1e-6, rtol: 1e-6 },
};
const global: PoolOp = {
  name: 'globalAvgPool', outShape: (s) => [s[0], s[1]],
  forward: (gpu, x, y) => globalAvgPoolForward(gpu, { x, y }),
  backward: (gpu, _x, dy, dx, accumulate) => globalAvgPoolBackward(gpu, { dy, dx, accumulate }),
  reference: globalAvgPoolReference,
  backwardReference: (_x, dy, s) => globalAvgPoolBackwardReference(dy, s),
  // A serial f32 sum of up to 81 values in [-1, 1], then a divide.
  forwardTol: { atol: 2e-6, rtol: 1e-5 }, backwardTol: { atol: 1e-7, rtol: 1e-6 },
};

/**
 * Forward, backward (=) and backward (+=) on tensors inside larger buffers; the outputs match the
 * reference and every other element of every buffer is unchanged.
 */
async function checkOp(op: PoolOp, s: Shape4, packed: boolean, seed: number): Promise<void> {
  const gpu = await testGpu();
  const what = `${op.name} ${JSON.stringify(s)}${packed ? ' packed in one buffer' : ''}`;
  const out = op.outShape(s);

  const fwd = new Layout(gpu, packed, [s, out], seed);
  const [x, y] = fwd.refs;
  let launches = await op.forward(gpu, x, y);
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  const xData = fwd.initial(0);
  assertClose(await fwd.read(1), op.reference(xData, s), op.forwardTol, `${what} forward`);
  await fwd.expectRestUntouched(`${what} forward`);
  fwd.free();

  const bwd = new Layout(gpu, packed, [s, out, s], seed + 10);
  const [bx, dy, dx] = bwd.refs;
  const expected = op.backwardReference(bwd.initial(0), bwd.initial(1), s);
  for (const accumulate of [false, true]) {
    bwd.reset(2);
    launches = await op.backward(gpu, bx, dy, dx, accumulate);
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const init = bwd.initial(2);
    const want = accumulate ? expected.map((v, i) => v + init[i]) : expected;
    assertClose(await bwd.read(2), want, op.backwardTol, `${what} backward accumulate=${accumulate}`);
    await bwd.expectRestUntouched(`${what} backward accumulate=${accumulate}`);
  }
  bwd.free();
}

test('shape errors name the op, the operand and both shapes, before anything is compiled or recorded', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'activations', 4096);
  const other = gpu.zeros('other', 'activations', 4096);
  const [pipelines, bytes] = [gpu.pipelines.pipelinesCreated, gpu.arena.liveBytes];
  const refuses = async (call: Promise<unknown>, message: string | RegExp) => {
    await call.then(
      () => assert.unreachable(`should throw ${message}`),
      (e: Error) => { assert.ok(e instanceof ShapeError, `${e.message} is a ShapeError`); assert.match(e.message, message); },
    );
  };
  const x = tensor(buf, [13, 3, 7, 7]);
  await refuses(avgPool2x2Forward(gpu, { x, y: tensor(other, [13, 3, 4, 4]) }), 'avgPool2x2: "y" has shape [13, 3, 4, 4], expected [13, 3, 3, 3]');
  await refuses(avgPool2x2Forward(gpu, { x: tensor(buf, [13, 3, 49]), y: tensor(other, [13, 3, 3, 3]) }), 'avgPool2x2: "x" has shape [13, 3, 49], expected a channel-major [C, N, H, W]');
  await refuses(avgPool2x2Forward(gpu, { x: tensor(buf, [13, 3, 1, 7]), y: tensor(other, [13, 3, 0, 3]) }), 'avgPool2x2: "x" [13, 3, 1, 7] is smaller than the 2×2 window');
  await refuses(avgPool2x2Backward(gpu, { dy: tensor(other, [13, 3, 3, 4]), dx: x }), 'avgPool2x2.backward: "dy" has shape [13, 3, 3, 4], expected [13, 3, 3, 3]');
  await refuses(maxPool3x3Forward(gpu, { x, y: tensor(other, [13, 3, 3, 3]) }), 'maxPool3x3: "y" has shape [13, 3, 3, 3], expected [13, 3, 4, 4]');
  await refuses(maxPool3x3Backward(gpu, { x, dy: tensor(other, [13, 3, 4, 4]), dx: tensor(other, [13, 3, 7, 8], 208) }),
    'maxPool3x3.backward: "dx" has shape [13, 3, 7, 8], expected [13, 3, 7, 7]');
  await refuses(globalAvgPoolForward(gpu, { x, y: tensor(other, [3, 13]) }), 'globalAvgPool: "y" has shape [3, 13], expected [13, 3]');
  await refuses(globalAvgPoolBackward(gpu, { dy: tensor(other, [13, 3, 1, 1]), dx: x }), 'globalAvgPool.backward: "dy" has shape [13, 3, 1, 1], expected [13, 3]');
  // An output overlapping its input in one buffer (in place) is refused by name, not by WebGPU at submit.
  await refuses(avgPool2x2Forward(gpu, { x, y: tensor(buf, [13, 3, 3, 3], 100) }), /avgPool2x2: "x" \(elements \[0, 1911\)\) and "y" \(elements \[100, 451\)\) overlap in buffer "buf"/);
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'nothing was compiled');
  assert.is(gpu.arena.liveBytes, bytes, 'no launch (uniform buffer) was created');
  gpu.arena.free(buf);
  gpu.arena.free(other);
});

const shapes: Shape4[] = [[13, 3, 7, 7], [13, 3, 8, 8], [5, 2, 5, 5], [4, 3, 9, 9], [3, 2, 2, 3]];

for (const op of [avg, max, global]) {
  test(`${op.name}: forward and backward (= and +=) match the reference on channel slices, odd and even sizes`, async () => {
    for (const [i, s] of shapes.entries()) await checkOp(op, s, false, 100 + i);
  });
  test(`${op.name}: input and output packed in one buffer at unaligned offsets`, async () => {
    await checkOp(op, [13, 3, 7, 7], true, 200);
  });
}

test('avgPool2x2: every outputs-per-invocation setting, with rows that end mid-run', async () => {
  for (const blocks of [1, 3, 8]) {
    for (const [i, s] of ([[13, 3, 7, 7], [4, 3, 9, 9], [3, 2, 2, 3], [2, 2, 6, 20]] as Shape4[]).entries()) {
      await checkOp(avgWith(blocks), s, i === 0, 400 + 10 * blocks + i);
    }
  }
});

test('maxPool3x3: images of one row or column (windows clipped on three sides)', async () => {
  await checkOp(max, [3, 2, 1, 4], false, 300);
  await checkOp(max, [3, 2, 3, 1], false, 301);
});

test('maxPool3x3: ties (inputs of three values) go to each window\'s first maximum in row-major order, as in the reference', async () => {
  const gpu = await testGpu();
  for (const [k, s] of ([[3, 2, 7, 8], [2, 3, 9, 5], [2, 1, 2, 2]] as Shape4[]).entries()) {
    const x = randomArray(sizeOf(s), 500 + k).map((v) => Math.floor((v + 1) * 1.5)); // 0, 1 or 2: most windows tie
    const out = maxPool3x3OutputShape(s);
    const dyData = randomArray(sizeOf(out), 510 + k);
    const xb = gpu.upload('x', 'activations', x);
    const dyb = gpu.upload('dy', 'gradients', dyData);
    const dxb = gpu.upload('dx', 'gradients', new Float32Array(sizeOf(s)).fill(Number.NaN)); // poisoned: every cell must be written
    try {
      const launches = await maxPool3x3Backward(gpu, { x: tensor(xb, s), dy: tensor(dyb, out), dx: tensor(dxb, s) });
      await gpu.run(launches);
      launches.forEach((l) => l.destroy());
      assertClose(await gpu.read(dxb), maxPool3x3BackwardReference(x, dyData, s), { atol: 1e-6, rtol: 1e-6 }, `ties ${JSON.stringify(s)}`);
    } finally {
      for (const b of [xb, dyb, dxb]) gpu.arena.free(b);
    }
  }
});

test('maxPool3x3: padding never wins, even when every value is negative (reference and GPU kernel, forward and backward)', async () => {
  const s: Shape4 = [3, 2, 5, 6];
  const x = randomArray(sizeOf(s), 7).map((v) => -5 - Math.abs(v));
  const y = maxPool3x3Reference(x, s);
  // Window (0, 0) covers rows/cols {0, 1} only: its max is of those four values, not 0 from padding.
  assert.is(y[0], Math.max(x[0], x[1], x[6], x[7]));
  assert.ok(y.every((v) => v < -5), 'reference: a negative input never pools to the padding value 0');

  const gpu = await testGpu();
  const out = maxPool3x3OutputShape(s);
  const xb = gpu.upload('x', 'activations', x);
  const yb = gpu.zeros('y', 'activations', sizeOf(out));
  const dyb = gpu.upload('dy', 'gradients', new Float32Array(sizeOf(out)).fill(1));
  const dxb = gpu.zeros('dx', 'gradients', sizeOf(s));
  try {
    const X = tensor(xb, s);
    let launches = await maxPool3x3Forward(gpu, { x: X, y: tensor(yb, out) });
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const yGpu = await gpu.read(yb);
    assert.ok(yGpu.every((v) => v < -5), `GPU: every output is an input value, never the padding 0 (largest ${Math.max(...yGpu)})`);
    assertClose(yGpu, y, { atol: 0, rtol: 0 }, 'GPU forward on negative inputs');
    // Backward: each window's gradient lands on one real input, so Σdx = Σdy (padding would swallow it).
    launches = await maxPool3x3Backward(gpu, { x: X, dy: tensor(dyb, out), dx: tensor(dxb, s), accumulate: false });
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const dx = await gpu.read(dxb);
    assert.is(dx.reduce((a, b) => a + b, 0), sizeOf(out), 'GPU backward: every window\'s gradient reaches an input');
    assertClose(dx, maxPool3x3BackwardReference(x, new Float32Array(sizeOf(out)).fill(1), s), { atol: 0, rtol: 0 }, 'GPU backward on negative inputs');
  } finally {
    for (const b of [xb, yb, dyb, dxb]) gpu.arena.free(b);
  }
});

// Reference backward vs central finite differences of L = Σ w·pool(x).
test('the reference backwards match finite differences', () => {
  const tol = { atol: 1e-6, rtol: 1e-6 };
  {
    const s: Shape4 = [2, 2, 5, 5];
    const x = randomArray(sizeOf(s), 11);
    const w = randomArray(sizeOf(avgPool2x2OutputShape(s)), 12);
    const numeric = finiteDifference((xs) => dot(avgPool2x2Reference(xs, s), w), x);
    assertClose(avgPool2x2BackwardReference(w, s), numeric, tol, 'avgPool2x2 finite differences');
  }
  {
    // Distinct values 0.01 apart in shuffled order: no window's argmax changes within ±eps.
    const s: Shape4 = [2, 2, 5, 6];
    const order = randomArray(sizeOf(s), 13);
    const rank = [...order.keys()].sort((a, b) => order[a] - order[b]);
    const x = new Float64Array(sizeOf(s));
    rank.forEach((idx, r) => { x[idx] = (r - sizeOf(s) / 2) * 0.01; });
    const w = randomArray(sizeOf(maxPool3x3OutputShape(s)), 14);
    const numeric = finiteDifference((xs) => dot(maxPool3x3Reference(xs, s), w), x);
    assertClose(maxPool3x3BackwardReference(x, w, s), numeric, tol, 'maxPool3x3 finite differences');
  }
  {
    const s: Shape4 = [2, 3, 3, 4];
    const x = randomArray(sizeOf(s), 15);
    const w = randomArray(6, 16);
    const numeric = finiteDifference((xs) => dot(globalAvgPoolReference(xs, s), w), x);
    assertClose(globalAvgPoolBackwardReference(w, s), numeric, tol, 'globalAvgPool finite differences');
  }
});

test.run();
