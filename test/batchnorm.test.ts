import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradient functions (the umbrella @tensorflow/tfjs package
// does that, and it is not installed). esbuild bundles tfjs-core's own ESM gradient configs from
// this relative path; they register into tfjs's global registry, which the Node bundle shares.
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  batchNormAffine, batchNormAffineReference, batchNormBackward, batchNormBackwardReference, batchNormForward,
  batchNormForwardReference, batchNormStatistics, batchNormStatisticsReference, batchNormUpdateRunning,
  batchNormUpdateRunningReference, BATCHNORM_WORKGROUP_SIZE,
} from '../src/kernels/batchnorm.js';
import { ELEMENTWISE_ITEMS } from '../src/kernels/batchnorm_wgsl.js';
import { channelSlice, ShapeError, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, seededRandom, testGpu, type Tolerance } from './helpers.js';

const test = suite('batchnorm');
test.after(closeTestGpu);

const EPS = 1e-5;
/** Two reduction workgroup sizes besides the default: 32 (several strides and chunks per channel) and 256 (more invocations than values). */
const WORKGROUP_SIZES = [32, 256];
/** Float32 statistics of float32 data, against float64 of the same data. */
const statsTol: Tolerance = { atol: 1e-6, rtol: 1e-5 };
/** y is O(1); every element is a few float32 operations away from exact. */
const forwardTol: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Sums over M values of size O(1): float32 rounding ~ M·2⁻²⁴ at worst. */
const sumTol: Tolerance = { atol: 2e-5, rtol: 1e-5 };
/** dx = k·(M·dy' − Σdy' − x̂·Σdy'x̂): a difference of O(M) terms scaled by 1/M. */
const dxTol: Tolerance = { atol: 2e-5, rtol: 1e-4 };
const SENTINEL = 777;

interface Case { C: number; N: number; H: number; W: number }
/** Awkward sizes; H = W = 1; and M = 2178 > 32·ELEMENTWISE_ITEMS, so elementwise kernels run two chunks per channel at workgroup size 32. */
const CASES: Case[] = [{ C: 13, N: 3, H: 7, W: 7 }, { C: 13, N: 3, H: 1, W: 1 }, { C: 3, N: 2, H: 33, W: 33 }];
/** The channel of x whose values are 1000 + noise in [−0.5, 0.5): large mean against spread. */
const OFFSET_CHANNEL = 2;

/** x as channels [5, 5 + C) of a 20-channel block buffer; one channel is 1000 + small noise. */
function blockData({ C, N, H, W }: Case, seed: number): { slab: Float32Array; x: Float32Array; c0: number; total: number } {
  const total = C + 7;
  const c0 = 5;
  const M = N * H * W;
  const slab = randomArray(total * M, seed, 2);
  for (let c = 0; c < total; c++) for (let i = 0; i < M; i++) slab[c * M + i] += 0.3 * (c % 5) - 0.5; // a different mean per channel
  const noise = randomArray(M, seed + 1, 0.5);
  for (let i = 0; i < M; i++) slab[(c0 + OFFSET_CHANNEL) * M + i] = 1000 + noise[i];
  return { slab, x: slab.slice(c0 * M, (c0 + C) * M), c0, total };
}

/** A per-channel vector stored at element `at` of a buffer whose other elements are SENTINEL. */
function vectorIn(gpu: Gpu, label: string, values: ArrayLike<number>, at: number, spare = 5): { buf: ArenaBuffer; ref: TensorRef } {
  const data = new Float32Array(values.length + at + spare).fill(SENTINEL);
  data.set(Array.from(values), at);
  const buf = gpu.upload(label, 'workspace', data);
  return { buf, ref: tensor(buf, [values.length], at) };
}

/** Reads the vector back, asserting every element outside it kept its SENTINEL. */
async function readVector(gpu: Gpu, v: { buf: ArenaBuffer; ref: TensorRef }, what: string): Promise<Float32Array> {
  const all = await gpu.read(v.buf);
  const n = v.ref.shape[0];
  for (let i = 0; i < all.length; i++) {
    if (i < v.ref.offset || i >= v.ref.offset + n) assert.is(all[i], SENTINEL, `${what}: element ${i} outside the output was written`);
  }
  return all.slice(v.ref.offset, v.ref.offset + n);
}

function positives(n: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
}

async function runAndDestroy(gpu: Gpu, launches: Launch[]): Promise<void> {
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
}

test('the cases cover several elementwise chunks per channel', () => {
  assert.ok(CASES.some(({ N, H, W }) => N * H * W > Math.min(...WORKGROUP_SIZES) * ELEMENTWISE_ITEMS));
});

test('statistics match the reference on a channel slice, at two workgroup sizes, stably for a large-mean channel', async () => {
  const gpu = await testGpu();
  for (const cs of CASES) {
    const { C, N, H, W } = cs;
    const { slab, x, c0, total } = blockData(cs, 10);
    const expected = batchNormStatisticsReference(x, [C, N, H, W]);
    const xBuf = gpu.upload('x', 'activations', slab);
    const xRef = channelSlice(tensor(xBuf, [total, N, H, W]), c0, C);
    for (const workgroupSize of [...WORKGROUP_SIZES, undefined]) {
      const mean = vectorIn(gpu, 'mean', new Float32Array(C), 3);
      const variance = vectorIn(gpu, 'variance', new Float32Array(C), 1);
      await runAndDestroy(gpu, await batchNormStatistics(gpu, { x: xRef, mean: mean.ref, variance: variance.ref, workgroupSize }));
      const what = `statistics ${C}x${N}x${H}x${W} wg=${workgroupSize ?? BATCHNORM_WORKGROUP_SIZE}`;
      assertClose(await readVector(gpu, mean, `${what} mean`), expected.mean, statsTol, `${what} mean`);
      assertClose(await readVector(gpu, variance, `${what} variance`), expected.variance, statsTol, `${what} variance`);
      for (const v of [mean, variance]) gpu.arena.free(v.buf);
    }
    gpu.arena.free(xBuf);
    if (H === 7) {
      // The test can fail: E[x²] − E[x]² in float32 misses the large-mean channel's variance by far more than statsTol.
      const M = N * H * W;
      let s = 0;
      let q = 0;
      for (let i = 0; i < M; i++) {
        const v = x[OFFSET_CHANNEL * M + i];
        s = Math.fround(s + v);
        q = Math.fround(q + Math.fround(v * v));
      }
      const naive = Math.fround(q / M - Math.fround(s / M) ** 2);
      const exact = expected.variance[OFFSET_CHANNEL];
      assert.ok(Math.abs(naive - exact) > 100 * (statsTol.atol + statsTol.rtol * exact), `naive variance ${naive} vs ${exact} should be far off`);
    }
  }
});

test('forward matches the reference (relu on and off, two workgroup sizes), writing only its output slice', async () => {
  const gpu = await testGpu();
  for (const cs of CASES) {
    const { C, N, H, W } = cs;
    const M = N * H * W;
    const { slab, x, c0, total } = blockData(cs, 20);
    const stats = batchNormStatisticsReference(x, [C, N, H, W]);
    const mean32 = Float32Array.from(stats.mean);
    const variance32 = Float32Array.from(stats.variance);
    const gamma = randomArray(C, 21, 1.5);
    const beta = randomArray(C, 22, 0.5);
    const xBuf = gpu.upload('x', 'activations', slab);
    const xRef = channelSlice(tensor(xBuf, [total, N, H, W]), c0, C);
    const mean = vectorIn(gpu, 'mean', mean32, 2);
    const variance = vectorIn(gpu, 'variance', variance32, 4);
    const gammaV = vectorIn(gpu, 'gamma', gamma, 0);
    const betaV = vectorIn(gpu, 'beta', beta, 7);
    for (const relu of [false, true]) {
      const expected = batchNormForwardReference({ x, shape: [C, N, H, W], mean: mean32, variance: variance32, gamma, beta, eps: EPS, relu });
      if (relu) assert.ok(expected.some((v) => v === 0) && expected.some((v) => v > 0), 'relu case has both signs');
      for (const workgroupSize of WORKGROUP_SIZES) {
        const yBuf = gpu.upload('y', 'activations', new Float32Array((C + 3) * M).fill(SENTINEL));
        const y = channelSlice(tensor(yBuf, [C + 3, N, H, W]), 2, C);
        await runAndDestroy(gpu, await batchNormForward(gpu, {
          x: xRef, mean: mean.ref, variance: variance.ref, gamma: gammaV.ref, beta: betaV.ref, y, eps: EPS, relu, workgroupSize,
        }));
        const all = await gpu.read(yBuf);
        const what = `forward ${C}x${N}x${H}x${W} relu=${relu} wg=${workgroupSize}`;
        assertClose(all.subarray(y.offset, y.offset + C * M), expected, forwardTol, what);
        assert.ok(all.subarray(0, y.offset).every((v) => v === SENTINEL) && all.subarray(y.offset + C * M).every((v) => v === SENTINEL), `${what}: wrote outside y`);
        gpu.arena.free(yBuf);
      }
    }
    for (const b of [xBuf, mean.buf, variance.buf, gammaV.buf, betaV.buf]) gpu.arena.free(b);
  }
});

test('affine (scale, shift) matches the reference at offsets', async () => {
  const gpu = await testGpu();
  const C = 70; // more than one vector workgroup
  const mean32 = randomArray(C, 30, 3);
  const variance32 = positives(C, 31, 0.01, 4);
  const gamma = randomArray(C, 32, 1.5);
  const beta = randomArray(C, 33);
  const vs = [vectorIn(gpu, 'mean', mean32, 1), vectorIn(gpu, 'variance', variance32, 2), vectorIn(gpu, 'gamma', gamma, 3), vectorIn(gpu, 'beta', beta, 4)];
  const scale = vectorIn(gpu, 'scale', new Float32Array(C), 5);
  const shift = vectorIn(gpu, 'shift', new Float32Array(C), 6);
  await runAndDestroy(gpu, await batchNormAffine(gpu, {
    mean: vs[0].ref, variance: vs[1].ref, gamma: vs[2].ref, beta: vs[3].ref, scale: scale.ref, shift: shift.ref, eps: EPS,
  }));
  const expected = batchNormAffineReference({ mean: mean32, variance: variance32, gamma, beta, eps: EPS });
  assertClose(await readVector(gpu, scale, 'scale'), expected.scale, forwardTol, 'affine scale');
  assertClose(await readVector(gpu, shift, 'shift'), expected.shift, forwardTol, 'affine shift');
  for (const v of [...vs, scale, shift]) gpu.arena.free(v.buf);
});

test('backward matches the reference (relu, accumulate, two workgroup sizes), writing only its outputs', async () => {
  const gpu = await testGpu();
  for (const cs of CASES) {
    const { C, N, H, W } = cs;
    const M = N * H * W;
    const { slab, x, c0, total } = blockData(cs, 40);
    const stats = batchNormStatisticsReference(x, [C, N, H, W]);
    const mean32 = Float32Array.from(stats.mean);
    const variance32 = Float32Array.from(stats.variance);
    const gamma = randomArray(C, 41, 1.5);
    const beta = randomArray(C, 42, 0.5);
    const dy = randomArray(C * M, 43);
    const dxInit = randomArray(total * M, 44);
    const xBuf = gpu.upload('x', 'activations', slab);
    const xRef = channelSlice(tensor(xBuf, [total, N, H, W]), c0, C);
    const dyBuf = gpu.upload('dy', 'gradients', dy);
    const mean = vectorIn(gpu, 'mean', mean32, 2);
    const variance = vectorIn(gpu, 'variance', variance32, 4);
    const gammaV = vectorIn(gpu, 'gamma', gamma, 0);
    const betaV = vectorIn(gpu, 'beta', beta, 7);
    for (const relu of [false, true]) {
      const expected = batchNormBackwardReference({ x, dy, shape: [C, N, H, W], mean: mean32, variance: variance32, gamma, beta, eps: EPS, relu });
      for (const accumulate of [false, true]) {
        for (const workgroupSize of WORKGROUP_SIZES) {
          const dxBuf = gpu.upload('dx', 'gradients', dxInit);
          const dxRef = channelSlice(tensor(dxBuf, [total, N, H, W]), c0, C);
          const dgamma = vectorIn(gpu, 'dgamma', new Float32Array(C).fill(-5), 3);
          const dbeta = vectorIn(gpu, 'dbeta', new Float32Array(C).fill(-5), 1);
          await runAndDestroy(gpu, await batchNormBackward(gpu, {
            x: xRef, dy: tensor(dyBuf, [C, N, H, W]), mean: mean.ref, variance: variance.ref, gamma: gammaV.ref, beta: betaV.ref,
            eps: EPS, relu, dx: dxRef, dgamma: dgamma.ref, dbeta: dbeta.ref, accumulate, workgroupSize,
          }));
          const what = `backward ${C}x${N}x${H}x${W} relu=${relu} accumulate=${accumulate} wg=${workgroupSize}`;
          const want = Float64Array.from(dxInit);
          for (let i = 0; i < C * M; i++) want[dxRef.offset + i] = (accumulate ? dxInit[dxRef.offset + i] : 0) + expected.dx[i];
          assertClose(await gpu.read(dxBuf), want, dxTol, `${what} dx (whole buffer)`);
          assertClose(await readVector(gpu, dgamma, `${what} dgamma`), expected.dgamma, sumTol, `${what} dgamma`);
          assertClose(await readVector(gpu, dbeta, `${what} dbeta`), expected.dbeta, sumTol, `${what} dbeta`);
          for (const b of [dxBuf, dgamma.buf, dbeta.buf]) gpu.arena.free(b);
        }
      }
    }
    for (const b of [xBuf, dyBuf, mean.buf, variance.buf, gammaV.buf, betaV.buf]) gpu.arena.free(b);
  }
});

test('running statistics after one update equal the reference (unbiased variance)', async () => {
  const gpu = await testGpu();
  const [C, N, H, W] = [13, 3, 7, 7];
  const M = N * H * W;
  const x = blockData({ C, N, H, W }, 50).x;
  const xBuf = gpu.upload('x', 'activations', x);
  const mean = vectorIn(gpu, 'mean', new Float32Array(C), 0);
  const variance = vectorIn(gpu, 'variance', new Float32Array(C), 0);
  const runningMean0 = randomArray(C, 51);
  const runningVariance0 = positives(C, 52, 0.5, 2);
  const runningMean = vectorIn(gpu, 'runningMean', runningMean0, 2);
  const runningVariance = vectorIn(gpu, 'runningVariance', runningVariance0, 3);
  const momentum = 0.1;
  await runAndDestroy(gpu, [
    ...await batchNormStatistics(gpu, { x: tensor(xBuf, [C, N, H, W]), mean: mean.ref, variance: variance.ref }),
    ...await batchNormUpdateRunning(gpu, { mean: mean.ref, variance: variance.ref, runningMean: runningMean.ref, runningVariance: runningVariance.ref, momentum, count: M }),
  ]);
  const stats = batchNormStatisticsReference(x, [C, N, H, W]);
  const expected = batchNormUpdateRunningReference({ ...stats, runningMean: runningMean0, runningVariance: runningVariance0, momentum, count: M });
  assertClose(await readVector(gpu, runningMean, 'runningMean'), expected.runningMean, statsTol, 'running mean');
  const gotVariance = await readVector(gpu, runningVariance, 'runningVariance');
  assertClose(gotVariance, expected.runningVariance, statsTol, 'running variance');
  // PyTorch's convention, checked by hand for one channel: 0.9·v0 + 0.1·var·M/(M − 1), not the biased var.
  const byHand = 0.9 * runningVariance0[0] + 0.1 * stats.variance[0] * M / (M - 1);
  assert.ok(Math.abs(gotVariance[0] - byHand) < 1e-5 * byHand, `running variance ${gotVariance[0]} vs ${byHand}`);
  for (const b of [xBuf, mean.buf, variance.buf, runningMean.buf, runningVariance.buf]) gpu.arena.free(b);
});

// The memory planner packs tensors into one buffer per category; every binding is writable and
// ranged, so one dispatch may read and write disjoint 256-byte-aligned ranges of one buffer. With
// `slot` 13 every tensor starts right after the previous one: operands sharing a 256-byte block
// are bound once (binding.ts), which the old per-operand binding refused.
for (const [slot, what] of [[64, 'aligned offsets (256-byte slots)'], [13, 'unaligned offsets, back to back']] as const) test(`every kernel works on tensors packed into shared buffers at ${what}`, async () => {
  const gpu = await testGpu();
  const shape = [13, 3, 7, 7];
  const [C] = shape;
  const size = 13 * 147;
  const aligned = Math.ceil(size / slot) * slot;
  const x = blockData({ C: 13, N: 3, H: 7, W: 7 }, 80).x;
  const dy = randomArray(size, 81);
  const gamma = randomArray(C, 82, 1.5);
  const beta = randomArray(C, 83, 0.5);
  const runningMean0 = randomArray(C, 84);
  const runningVariance0 = positives(C, 85, 0.5, 2);
  const activations = gpu.upload('activations', 'activations', new Float32Array(2 * aligned));
  gpu.write(activations, x);
  const gradients = gpu.upload('gradients', 'gradients', new Float32Array(2 * aligned));
  gpu.write(gradients, dy);
  const names = ['mean', 'variance', 'gamma', 'beta', 'dgamma', 'dbeta', 'runningMean', 'runningVariance', 'scale', 'shift'] as const;
  const params = gpu.zeros('params', 'parameters', names.length * slot);
  const p = Object.fromEntries(names.map((n, i) => [n, tensor(params, [C], i * slot)])) as Record<typeof names[number], TensorRef>;
  gpu.write(params, gamma, p.gamma.offset);
  gpu.write(params, beta, p.beta.offset);
  gpu.write(params, runningMean0, p.runningMean.offset);
  gpu.write(params, runningVariance0, p.runningVariance.offset);
  const xRef = tensor(activations, shape, 0);
  const yRef = tensor(activations, shape, aligned);
  const dyRef = tensor(gradients, shape, 0);
  const dxRef = tensor(gradients, shape, aligned);
  const momentum = 0.1;
  await runAndDestroy(gpu, [
    ...await batchNormStatistics(gpu, { x: xRef, mean: p.mean, variance: p.variance }),
    ...await batchNormUpdateRunning(gpu, { mean: p.mean, variance: p.variance, runningMean: p.runningMean, runningVariance: p.runningVariance, momentum, count: 147 }),
    ...await batchNormAffine(gpu, { mean: p.mean, variance: p.variance, gamma: p.gamma, beta: p.beta, scale: p.scale, shift: p.shift, eps: EPS }),
    ...await batchNormForward(gpu, { x: xRef, mean: p.mean, variance: p.variance, gamma: p.gamma, beta: p.beta, y: yRef, eps: EPS, relu: true }),
    ...await batchNormBackward(gpu, {
      x: xRef, dy: dyRef, mean: p.mean, variance: p.variance, gamma: p.gamma, beta: p.beta, eps: EPS, relu: true,
      dx: dxRef, dgamma: p.dgamma, dbeta: p.dbeta,
    }),
  ]);
  const all = await gpu.read(params);
  const got = (n: typeof names[number]) => all.slice(p[n].offset, p[n].offset + C);
  const stats = batchNormStatisticsReference(x, shape);
  assertClose(got('mean'), stats.mean, statsTol, 'packed mean');
  assertClose(got('variance'), stats.variance, statsTol, 'packed variance');
  // Downstream kernels are checked against references fed the GPU's float32 statistics.
  const inputs = { x, shape, mean: got('mean'), variance: got('variance'), gamma, beta, eps: EPS, relu: true };
  const running = batchNormUpdateRunningReference({ mean: got('mean'), variance: got('variance'), runningMean: runningMean0, runningVariance: runningVariance0, momentum, count: 147 });
  assertClose(got('runningMean'), running.runningMean, statsTol, 'packed running mean');
  assertClose(got('runningVariance'), running.runningVariance, statsTol, 'packed running variance');
  const affine = batchNormAffineReference(inputs);
  assertClose(got('scale'), affine.scale, forwardTol, 'packed scale');
  assertClose(got('shift'), affine.shift, { atol: 1e-5, rtol: 1e-4 }, 'packed shift'); // beta − mean·scale cancels for the large-mean channel
  assertClose((await gpu.read(activations)).subarray(aligned, aligned + size), batchNormForwardReference(inputs), forwardTol, 'packed y');
  const back = batchNormBackwardReference({ ...inputs, dy });
  assertClose((await gpu.read(gradients)).subarray(aligned, aligned + size), back.dx, dxTol, 'packed dx');
  assertClose(got('dgamma'), back.dgamma, sumTol, 'packed dgamma');
  assertClose(got('dbeta'), back.dbeta, sumTol, 'packed dbeta');
  for (const b of [activations, gradients, params]) gpu.arena.free(b);
});

/** [C, N, H, W] → NHWC for tfjs, and back. */
function toNHWC(a: ArrayLike<number>, [C, N, H, W]: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(Float32Array.from(a), [C, N, H, W]), [1, 2, 3, 0]) as tf.Tensor4D);
}
function fromNHWC(t: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(t, [3, 0, 1, 2]).dataSync() as Float32Array);
}

test('statistics, forward and backward match TensorFlow.js (moments + batchNorm, gradients through the moments)', async () => {
  await tf.setBackend('cpu');
  const gpu = await testGpu();
  const shape = [6, 2, 5, 3];
  const [C, N, H, W] = shape;
  const M = N * H * W;
  const x = randomArray(C * M, 60, 2).map((v, i) => v + (Math.floor(i / M) % 3) - 1);
  const gamma = randomArray(C, 61, 1.5);
  const beta = randomArray(C, 62, 0.5);
  const dy = randomArray(C * M, 63);
  const xBuf = gpu.upload('x', 'activations', x);
  const dyBuf = gpu.upload('dy', 'gradients', dy);
  const vec = (label: string, v: Float32Array) => tensor(gpu.upload(label, 'parameters', v), [C]);
  const gammaRef = vec('gamma', gamma);
  const betaRef = vec('beta', beta);
  const meanRef = vec('mean', new Float32Array(C));
  const varianceRef = vec('variance', new Float32Array(C));
  const yBuf = gpu.zeros('y', 'activations', C * M);
  const dxBuf = gpu.zeros('dx', 'gradients', C * M);
  const dgammaRef = vec('dgamma', new Float32Array(C));
  const dbetaRef = vec('dbeta', new Float32Array(C));
  const xT = toNHWC(x, shape);
  const dyT = toNHWC(dy, shape);
  const gammaT = tf.tensor1d(gamma);
  const betaT = tf.tensor1d(beta);
  const tfMoments = tf.moments(xT, [0, 1, 2]);
  await runAndDestroy(gpu, await batchNormStatistics(gpu, { x: tensor(xBuf, shape), mean: meanRef, variance: varianceRef }));
  assertClose(await gpu.read(meanRef.buffer), tfMoments.mean.dataSync(), statsTol, 'mean vs tf.moments');
  assertClose(await gpu.read(varianceRef.buffer), tfMoments.variance.dataSync(), statsTol, 'variance vs tf.moments');
  for (const relu of [false, true]) {
    const f = (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const m = tf.moments(xs, [0, 1, 2]);
      const y = tf.batchNorm(xs as tf.Tensor4D, m.mean, m.variance, b as tf.Tensor1D, g as tf.Tensor1D, EPS);
      return relu ? tf.relu(y) : y;
    };
    const yT = tf.tidy(() => f(xT, gammaT, betaT));
    const [dxT, dgammaT, dbetaT] = tf.grads((xs, g, b) => f(xs, g, b))([xT, gammaT, betaT], dyT);
    await runAndDestroy(gpu, [
      ...await batchNormForward(gpu, { x: tensor(xBuf, shape), mean: meanRef, variance: varianceRef, gamma: gammaRef, beta: betaRef, y: tensor(yBuf, shape), eps: EPS, relu }),
      ...await batchNormBackward(gpu, {
        x: tensor(xBuf, shape), dy: tensor(dyBuf, shape), mean: meanRef, variance: varianceRef, gamma: gammaRef, beta: betaRef, eps: EPS, relu,
        dx: tensor(dxBuf, shape), dgamma: dgammaRef, dbeta: dbetaRef,
      }),
    ]);
    assertClose(await gpu.read(yBuf), fromNHWC(yT), forwardTol, `y vs tf.batchNorm relu=${relu}`);
    assertClose(await gpu.read(dxBuf), fromNHWC(dxT), dxTol, `dx vs tf.grads relu=${relu}`);
    assertClose(await gpu.read(dgammaRef.buffer), dgammaT.dataSync(), sumTol, `dgamma vs tf.grads relu=${relu}`);
    assertClose(await gpu.read(dbetaRef.buffer), dbetaT.dataSync(), sumTol, `dbeta vs tf.grads relu=${relu}`);
    tf.dispose([yT, dxT, dgammaT, dbetaT]);
  }
  tf.dispose([xT, dyT, gammaT, betaT, tfMoments.mean, tfMoments.variance]);
  for (const r of [gammaRef, betaRef, meanRef, varianceRef, dgammaRef, dbetaRef]) gpu.arena.free(r.buffer);
  for (const b of [xBuf, dyBuf, yBuf, dxBuf]) gpu.arena.free(b);
});

test('the reference backward matches finite differences (relu on and off)', () => {
  const shape = [3, 2, 2, 3];
  const [C, N, H, W] = shape;
  const M = N * H * W;
  const x = Float64Array.from(randomArray(C * M, 70, 2));
  const gamma = Float64Array.from(randomArray(C, 71, 1.5));
  const beta = Float64Array.from(randomArray(C, 72, 0.5));
  const w = randomArray(C * M, 73);
  for (const relu of [false, true]) {
    const loss = (xs: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      const stats = batchNormStatisticsReference(xs, shape);
      return dot(batchNormForwardReference({ x: xs, shape, ...stats, gamma: g, beta: b, eps: EPS, relu }), w);
    };
    const stats = batchNormStatisticsReference(x, shape);
    const pre = batchNormForwardReference({ x, shape, ...stats, gamma, beta, eps: EPS });
    // Finite differences are meaningless across the ReLU kink: the data keeps every pre-activation away from 0.
    assert.ok(pre.every((v) => Math.abs(v) > 1e-3), 'pre-activations away from the kink');
    if (relu) assert.ok(pre.some((v) => v < 0) && pre.some((v) => v > 0), 'relu masks some values and keeps others');
    const analytic = batchNormBackwardReference({ x, dy: w, shape, ...stats, gamma, beta, eps: EPS, relu });
    const fdTol = { atol: 1e-6, rtol: 1e-5 };
    assertClose(analytic.dx, finiteDifference((xs) => loss(xs, gamma, beta), x), fdTol, `dx relu=${relu}`);
    assertClose(analytic.dgamma, finiteDifference((g) => loss(x, g, beta), gamma), fdTol, `dgamma relu=${relu}`);
    assertClose(analytic.dbeta, finiteDifference((b) => loss(x, gamma, b), beta), fdTol, `dbeta relu=${relu}`);
  }
});

test('mismatched shapes and overlapping bindings are refused by name before anything is recorded', async () => {
  const gpu = await testGpu();
  const [C, N, H, W] = [13, 2, 3, 3];
  const xBuf = gpu.zeros('x', 'activations', C * N * H * W);
  const x = tensor(xBuf, [C, N, H, W]);
  const v13 = gpu.zeros('v13', 'parameters', 64 * 8);
  const vec = (i: number, n = 13) => tensor(v13, [n], i * 64); // 256-byte slots: bindable together
  const liveBefore = gpu.arena.liveBytes;
  const pipelinesBefore = gpu.pipelines.pipelinesCreated;
  const refuses = async (p: Promise<unknown>, message: string | RegExp) => p.then(
    () => assert.unreachable(`should throw: ${message}`),
    (e: Error) => { assert.ok(e instanceof ShapeError || e instanceof RangeError, e.message); assert.match(e.message, message); },
  );
  const fwd = { x, mean: vec(0), variance: vec(1), gamma: vec(2), beta: vec(3), y: tensor(gpu.zeros('y', 'activations', C * N * H * W), [C, N, H, W]), eps: EPS };
  const liveWithY = gpu.arena.liveBytes;
  await refuses(batchNormForward(gpu, { ...fwd, gamma: vec(2, 12) }), 'batchNorm.forward: "gamma" has shape [12] but x has 13 channels; expected [13]');
  await refuses(batchNormForward(gpu, { ...fwd, y: tensor(xBuf, [C, N, H, 2]) }), 'batchNorm.forward: "y" has shape [13, 2, 3, 2], expected [13, 2, 3, 3]');
  await refuses(batchNormForward(gpu, { ...fwd, y: x }), 'batchNorm.forward: "x" (elements [0, 234)) and "y" (elements [0, 234)) overlap in buffer "x"; this op cannot run in place on them');
  await refuses(batchNormForward(gpu, { ...fwd, workgroupSize: 48 }), 'workgroupSize 48 must be a power of two');
  await refuses(batchNormStatistics(gpu, { x, mean: vec(0), variance: vec(1, 12) }), 'batchNorm.statistics: "variance" has shape [12] but x has 13 channels');
  await refuses(batchNormStatistics(gpu, { x, mean: vec(0), variance: tensor(v13, [13], 6) }),
    'batchNorm.statistics: "mean" (elements [0, 13)) and "variance" (elements [6, 19)) overlap in buffer "v13"');
  await refuses(batchNormStatistics(gpu, { x: tensor(xBuf, [C, N * H * W]), mean: vec(0), variance: vec(1) }), 'batchNorm.statistics: "x" has shape [13, 18], expected [C, N, H, W]');
  const back = { x, dy: x, mean: vec(0), variance: vec(1), gamma: vec(2), beta: vec(3), eps: EPS, dx: fwd.y, dgamma: vec(4), dbeta: vec(5) };
  await refuses(batchNormBackward(gpu, { ...back, dbeta: vec(5, 14) }), 'batchNorm.backward: "dbeta" has shape [14] but x has 13 channels');
  await refuses(batchNormBackward(gpu, { ...back, dy: tensor(xBuf, [C, N, 1, 9]) }), 'batchNorm.backward: "dy" has shape [13, 2, 1, 9], expected [13, 2, 3, 3]');
  await refuses(batchNormUpdateRunning(gpu, { mean: vec(0), variance: vec(1), runningMean: vec(2, 12), runningVariance: vec(3), momentum: 0.1, count: 18 }),
    'batchNorm.updateRunning: "runningMean" has shape [12] but mean has 13 channels');
  await refuses(batchNormUpdateRunning(gpu, { mean: vec(0), variance: vec(1), runningMean: vec(2), runningVariance: vec(3), momentum: 0.1, count: 1 }), 'count (N·H·W) must be a whole number >= 2');
  await refuses(batchNormAffine(gpu, { mean: vec(0), variance: vec(1, 12), gamma: vec(2), beta: vec(3), scale: vec(4), shift: vec(5), eps: EPS }),
    'batchNorm.affine: "variance" has shape [12] but gamma has 13 channels');
  assert.is(gpu.arena.liveBytes, liveWithY, 'no uniform buffer was allocated');
  assert.is(gpu.pipelines.pipelinesCreated, pipelinesBefore, 'nothing was compiled');
  assert.ok(liveWithY > liveBefore);
  for (const b of [xBuf, v13, fwd.y.buffer]) gpu.arena.free(b);
});

test.run();
