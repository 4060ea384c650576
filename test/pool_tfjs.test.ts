// The pooling kernels against TensorFlow.js (cpu backend) as an independent implementation:
// forward values and input gradients (tf.grad). tfjs is NHWC; ours is channel-major [C, N, H, W].
import { suite } from 'uvu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; esbuild bundles tfjs-core's own ESM gradient
// configs from this path, which register into the registry the Node bundle shares (see batchnorm.test.ts).
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import { avgPool2x2Backward, avgPool2x2Forward, avgPool2x2OutputShape } from '../src/kernels/pool_average.js';
import type { Shape4 } from '../src/kernels/pool_common.js';
import { globalAvgPoolBackward, globalAvgPoolForward } from '../src/kernels/pool_global.js';
import { maxPool3x3Backward, maxPool3x3Forward, maxPool3x3OutputShape } from '../src/kernels/pool_max.js';
import { sizeOf, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, seededRandom, testGpu } from './helpers.js';

const test = suite('pool vs tfjs');
test.before(async () => { await tf.setBackend('cpu'); });
test.after(closeTestGpu);

// Both sides compute in f32, in possibly different orders.
const tol = { atol: 1e-6, rtol: 1e-5 };

const toNHWC = (data: Float32Array, [C, N, H, W]: readonly number[]) => tf.tidy(() => tf.transpose(tf.tensor4d(data, [C, N, H, W]), [1, 2, 3, 0]));
const fromNHWC = (t: tf.Tensor) => tf.tidy(() => tf.transpose(t, [3, 0, 1, 2]));

/** Runs forward and backward on the GPU: returns y and dx. */
async function runGpu(
  gpu: Gpu, s: Shape4, out: readonly number[], x: Float32Array, dy: Float32Array,
  forward: (x: TensorRef, y: TensorRef) => Promise<Launch[]>,
  backward: (x: TensorRef, dy: TensorRef, dx: TensorRef) => Promise<Launch[]>,
): Promise<{ y: Float32Array; dx: Float32Array }> {
  const bufs = [gpu.upload('x', 'activations', x), gpu.zeros('y', 'activations', sizeOf(out)), gpu.upload('dy', 'gradients', dy), gpu.zeros('dx', 'gradients', sizeOf(s))];
  const [xr, yr, dyr, dxr] = [tensor(bufs[0], s), tensor(bufs[1], out), tensor(bufs[2], out), tensor(bufs[3], s)];
  const launches = [...await forward(xr, yr), ...await backward(xr, dyr, dxr)];
  await gpu.run(launches);
  const result = { y: await gpu.read(bufs[1]), dx: await gpu.read(bufs[3]) };
  launches.forEach((l) => l.destroy());
  bufs.forEach((b) => gpu.arena.free(b));
  return result;
}

/** tfjs forward of `f` (NHWC → NHWC) and its input gradient for upstream dy, both channel-major. */
function runTfjs(s: Shape4, x: Float32Array, dy: Float32Array, out: readonly number[], f: (x: tf.Tensor4D) => tf.Tensor): { y: Float32Array; dx: Float32Array } {
  return tf.tidy(() => {
    const xt = toNHWC(x, s) as tf.Tensor4D;
    const y = f(xt);
    const dyt = out.length === 4 ? toNHWC(dy, out) : tf.transpose(tf.tensor2d(dy, out as [number, number]));
    const dx = tf.grad((v: tf.Tensor) => f(v as tf.Tensor4D))(xt, dyt);
    const yOurs = out.length === 4 ? fromNHWC(y) : tf.transpose(y);
    return { y: yOurs.dataSync() as Float32Array, dx: fromNHWC(dx).dataSync() as Float32Array };
  });
}

test('avgPool2x2 matches tf.avgPool(2, 2, "valid") and its gradient, odd and even sizes', async () => {
  const gpu = await testGpu();
  for (const [i, s] of ([[13, 3, 7, 7], [13, 3, 8, 8], [4, 2, 9, 6]] as Shape4[]).entries()) {
    const out = avgPool2x2OutputShape(s);
    const x = randomArray(sizeOf(s), 40 + i);
    const dy = randomArray(sizeOf(out), 50 + i);
    const ours = await runGpu(gpu, s, out, x, dy, (x, y) => avgPool2x2Forward(gpu, { x, y }), (_x, dy, dx) => avgPool2x2Backward(gpu, { dy, dx }));
    const theirs = runTfjs(s, x, dy, out, (v) => tf.avgPool(v, 2, 2, 'valid'));
    assertClose(ours.y, theirs.y, tol, `avgPool2x2 ${s} forward vs tfjs`);
    assertClose(ours.dx, theirs.dx, tol, `avgPool2x2 ${s} backward vs tfjs`);
  }
});

// Max pool 3×3/2 with padding 1 = tfjs maxPool 'valid' on the input padded by one −∞ row/column
// on every side (tf.pad), so padding never wins. We use that on every size. tfjs 'same' agrees
// only on odd sizes (it pads 1+1 there but 0 top/left + 1 bottom/right on even sizes), so the
// forward is also compared with 'same' on the odd sizes.
const maxPoolPadded = (v: tf.Tensor4D) => tf.maxPool(tf.pad(v, [[0, 0], [1, 1], [1, 1], [0, 0]], -Infinity), 3, 2, 'valid');

test('maxPool3x3 matches tfjs maxPool on −∞-padded input and its gradient', async () => {
  const gpu = await testGpu();
  for (const [i, s] of ([[13, 3, 7, 7], [13, 3, 8, 8], [5, 2, 5, 5], [4, 2, 9, 6]] as Shape4[]).entries()) {
    const out = maxPool3x3OutputShape(s);
    const x = randomArray(sizeOf(s), 60 + i);
    const dy = randomArray(sizeOf(out), 70 + i);
    const ours = await runGpu(gpu, s, out, x, dy, (x, y) => maxPool3x3Forward(gpu, { x, y }), (x, dy, dx) => maxPool3x3Backward(gpu, { x, dy, dx }));
    const theirs = runTfjs(s, x, dy, out, maxPoolPadded);
    assertClose(ours.y, theirs.y, { atol: 0, rtol: 0 }, `maxPool3x3 ${s} forward vs tfjs`);
    assertClose(ours.dx, theirs.dx, tol, `maxPool3x3 ${s} backward vs tfjs`);
    if (s[2] % 2 === 1 && s[3] % 2 === 1) {
      const same = tf.tidy(() => fromNHWC(tf.maxPool(toNHWC(x, s) as tf.Tensor4D, 3, 2, 'same')).dataSync() as Float32Array);
      assertClose(ours.y, same, { atol: 0, rtol: 0 }, `maxPool3x3 ${s} forward vs tfjs 'same' (odd size)`);
    }
  }
});

test('maxPool3x3 ties: the gradient goes to the first maximum in row-major window order, as in tfjs', async () => {
  const gpu = await testGpu();
  const rng = seededRandom(80);
  for (const s of [[6, 2, 7, 7], [6, 2, 8, 6]] as Shape4[]) {
    const out = maxPool3x3OutputShape(s);
    // Values in {0, 1, 2}: nearly every window has tied maxima.
    const x = Float32Array.from({ length: sizeOf(s) }, () => Math.floor(rng() * 3));
    const dy = randomArray(sizeOf(out), 81);
    const ours = await runGpu(gpu, s, out, x, dy, (x, y) => maxPool3x3Forward(gpu, { x, y }), (x, dy, dx) => maxPool3x3Backward(gpu, { x, dy, dx }));
    const theirs = runTfjs(s, x, dy, out, maxPoolPadded);
    assertClose(ours.y, theirs.y, { atol: 0, rtol: 0 }, `maxPool3x3 ties ${s} forward vs tfjs`);
    assertClose(ours.dx, theirs.dx, tol, `maxPool3x3 ties ${s} backward vs tfjs`);
  }
});

test('globalAvgPool matches tf.mean over H, W and its gradient', async () => {
  const gpu = await testGpu();
  for (const [i, s] of ([[13, 3, 7, 7], [6, 4, 8, 8], [5, 2, 1, 3]] as Shape4[]).entries()) {
    const out = [s[0], s[1]];
    const x = randomArray(sizeOf(s), 90 + i);
    const dy = randomArray(sizeOf(out), 95 + i);
    const ours = await runGpu(gpu, s, out, x, dy, (x, y) => globalAvgPoolForward(gpu, { x, y }), (_x, dy, dx) => globalAvgPoolBackward(gpu, { dy, dx }));
    const theirs = runTfjs(s, x, dy, out, (v) => tf.mean(v, [1, 2]));
    assertClose(ours.y, theirs.y, tol, `globalAvgPool ${s} forward vs tfjs`);
    assertClose(ours.dx, theirs.dx, tol, `globalAvgPool ${s} backward vs tfjs`);
  }
});

test.run();
