// Every reduction variant of batch-norm statistics and backward (batchnorm_split.ts) against the
// float64 CPU reference at awkward sizes, with every output poisoned (NaN) before each run so that
// a variant that leaves an output unwritten fails, and x, dy and the workspace packed at offsets.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import { openDevice, type Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  batchNormBackward, batchNormBackwardReference, batchNormSplitWorkspaceElements, batchNormStatistics, batchNormStatisticsReference,
  batchNormUpdateRunning, batchNormUpdateRunningReference, SPLIT_TARGET_WORKGROUPS, type BatchNormVariant,
} from '../src/kernels/batchnorm.js';
import { splitGeometry } from '../src/kernels/batchnorm_split.js';
import { ShapeError, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu, type Tolerance } from './helpers.js';

const test = suite('batchnorm_split');
test.after(closeTestGpu);

const EPS = 1e-5;
/**
 * Float32 statistics of float32 data against float64 of the same data, for every variant (the same
 * bound as the per-channel kernel's test), including a channel of 1000 + noise in [−0.5, 0.5)
 * whose variance (~0.083) E[x²] − E[x]² in float32 would miss entirely.
 */
const statsTol: Tolerance = { atol: 1e-6, rtol: 1e-5 };
/** dx = k·(dy' − Σdy'/M − x̂·Σdy'x̂/M): the sums' float32 error is divided by M. */
const dxTol: Tolerance = { atol: 2e-5, rtol: 1e-4 };
/** Σdy' and Σdy'·x̂ in float32: at most 1e-6·Σ|term| (a few dozen roundings deep) plus 1e-5. */
function sumTol(terms: ArrayLike<number>, C: number, M: number): Tolerance {
  let worst = 0;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < M; i++) s += Math.abs(terms[c * M + i]);
    worst = Math.max(worst, s);
  }
  return { atol: 1e-5 + 1e-6 * worst, rtol: 0 };
}

interface Variant { variant?: BatchNormVariant; splitChunk?: (M: number) => number; subgroups?: boolean; label: string }
const awkwardChunk = (M: number) => (M < 100 ? 3 : 37);
/**
 * The default (workgroup per channel), the split with its own chunking, and the split with short
 * awkward chunks (last one partial, more chunks than invocations at M = 65,537); the split's
 * barrier-tree path explicitly, so that it stays tested on a device that has subgroups.
 */
const VARIANTS: Variant[] = [
  { label: 'default (workgroup-per-channel)' },
  { variant: 'split-reduction', subgroups: false, label: 'split-reduction' },
  { variant: 'split-reduction', subgroups: false, splitChunk: awkwardChunk, label: 'split-reduction splitChunk=3|37' },
];
/** The split's subgroup path, on a device opened with the `subgroups` feature where the adapter has it. */
const SUBGROUP_VARIANTS: Variant[] = [
  { variant: 'split-reduction', subgroups: true, label: 'split-reduction subgroups' },
  { variant: 'split-reduction', subgroups: true, splitChunk: awkwardChunk, label: 'split-reduction subgroups splitChunk=3|37' },
];
let subgroupDevice: Promise<Gpu | undefined> | undefined;
/** A second device with `subgroups` (the default device need not request it), or undefined where the adapter lacks it. */
function subgroupGpu(): Promise<Gpu | undefined> {
  subgroupDevice ??= openDevice({ optionalFeatures: ['subgroups'] }).then((gpu) => {
    if (gpu.device.features.has('subgroups')) return gpu;
    gpu.close();
    return undefined;
  });
  return subgroupDevice;
}
test.after(async () => { (await subgroupDevice)?.close(); });
const CHANNELS = [1, 3, 12];
/** N·H·W = 1, 7, 1000, 65,537 (prime), as [N, H, W]. */
const PIXELS: [number, number, number][] = [[1, 1, 1], [1, 7, 1], [8, 5, 25], [1, 1, 65537]];
const X_OFFSET = 37;
const DY_OFFSET = 5;
const WORKSPACE_OFFSET = 3;

/** Random data with a different mean per channel; the last channel is 1000 + noise (large mean against spread). */
function channelData(C: number, M: number, seed: number): Float32Array {
  const x = randomArray(C * M, seed, 2);
  const noise = randomArray(M, seed + 1, 0.5);
  for (let c = 0; c < C; c++) for (let i = 0; i < M; i++) x[c * M + i] = c === C - 1 ? 1000 + noise[i] : x[c * M + i] + 0.7 * c - 1;
  return x;
}

/** `values` at element `at` of a buffer of random filler: a tensor packed among others. */
function packed(gpu: Gpu, label: string, values: Float32Array, at: number, shape: number[]): { buf: ArenaBuffer; ref: TensorRef } {
  const data = randomArray(at + values.length + 11, 99, 5);
  data.set(values, at);
  const buf = gpu.upload(label, 'activations', data);
  return { buf, ref: tensor(buf, shape, at) };
}

/** A buffer of NaN holding an output at element `at`. */
function poisoned(gpu: Gpu, label: string, n: number, at: number, shape = [n]): { buf: ArenaBuffer; ref: TensorRef } {
  const buf = gpu.upload(label, 'workspace', new Float32Array(at + n + 7).fill(NaN));
  return { buf, ref: tensor(buf, shape, at) };
}

/** The output's elements, asserting every element outside it is still NaN (nothing written out of bounds). */
async function readOutput(gpu: Gpu, v: { buf: ArenaBuffer; ref: TensorRef }, what: string): Promise<Float32Array> {
  const all = await gpu.read(v.buf);
  const n = v.ref.shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < all.length; i++) {
    if (i < v.ref.offset || i >= v.ref.offset + n) assert.ok(Number.isNaN(all[i]), `${what}: element ${i} outside the output was written`);
  }
  return all.slice(v.ref.offset, v.ref.offset + n);
}

async function runAndDestroy(gpu: Gpu, launches: Launch[]): Promise<void> {
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
}

/** A NaN-poisoned workspace large enough for the variant (none for the default). */
function workspaceFor(gpu: Gpu, v: Variant, shape: number[]): { buf: ArenaBuffer; ref: TensorRef } | undefined {
  if (v.variant !== 'split-reduction') return undefined;
  return poisoned(gpu, 'workspace', batchNormSplitWorkspaceElements(shape, { splitChunk: v.splitChunk?.(shape[1] * shape[2] * shape[3]) }), WORKSPACE_OFFSET);
}

test('the split fills a large GPU even for a dense layer\'s 12 channels, and the cases cover its chunking', () => {
  // A dense layer's 12 new channels at batch 16, 32×32: hundreds of workgroups, not 12.
  const dense = splitGeometry(12, 16 * 32 * 32, 64);
  assert.ok(12 * dense.chunks >= 512, `12 channels get ${12 * dense.chunks} workgroups`);
  assert.ok(12 * splitGeometry(12, 65537, 64).chunks <= 2 * SPLIT_TARGET_WORKGROUPS);
  // More chunks than the combine's 64 invocations (each merges several), and a partial last chunk.
  assert.ok(splitGeometry(1, 65537, 64).chunks > 64 && splitGeometry(12, 65537, 64, 37).chunks > 64);
  assert.ok(65537 % splitGeometry(1, 65537, 64).chunkLength !== 0);
  assert.equal(splitGeometry(3, 1, 64), { chunkLength: 1, chunks: 1 });
});

async function checkStatistics(gpu: Gpu, variants: Variant[]): Promise<void> {
  for (const C of CHANNELS) {
    for (const [N, H, W] of PIXELS) {
      const M = N * H * W;
      const shape = [C, N, H, W];
      const x = channelData(C, M, C * 7 + M);
      const expected = batchNormStatisticsReference(x, shape);
      const xp = packed(gpu, 'x', x, X_OFFSET, shape);
      const runningMean0 = randomArray(C, 51);
      const runningVariance0 = randomArray(C, 52, 0.5).map((v) => v + 1);
      for (const v of variants) {
        const what = `statistics ${C}x${N}x${H}x${W} ${v.label}`;
        const mean = poisoned(gpu, 'mean', C, 2);
        const variance = poisoned(gpu, 'variance', C, 5);
        const workspace = workspaceFor(gpu, v, shape);
        const running = gpu.upload('running', 'parameters', Float32Array.from([...runningMean0, ...runningVariance0]));
        const launches = await batchNormStatistics(gpu, {
          x: xp.ref, mean: mean.ref, variance: variance.ref, variant: v.variant, workspace: workspace?.ref, splitChunk: v.splitChunk?.(M), subgroups: v.subgroups,
        });
        if (M >= 2) {
          launches.push(...await batchNormUpdateRunning(gpu, {
            mean: mean.ref, variance: variance.ref, runningMean: tensor(running, [C]), runningVariance: tensor(running, [C], C), momentum: 0.1, count: M,
          }));
        }
        await runAndDestroy(gpu, launches);
        assertClose(await readOutput(gpu, mean, `${what} mean`), expected.mean, statsTol, `${what} mean`);
        assertClose(await readOutput(gpu, variance, `${what} variance`), expected.variance, statsTol, `${what} variance`);
        if (M >= 2) {
          const want = batchNormUpdateRunningReference({ ...expected, runningMean: runningMean0, runningVariance: runningVariance0, momentum: 0.1, count: M });
          const got = await gpu.read(running);
          assertClose(got.subarray(0, C), want.runningMean, statsTol, `${what} running mean`);
          assertClose(got.subarray(C), want.runningVariance, statsTol, `${what} running variance`);
        }
        for (const b of [mean.buf, variance.buf, running, workspace?.buf]) if (b) gpu.arena.free(b);
      }
      gpu.arena.free(xp.buf);
    }
  }
}

async function checkBackward(gpu: Gpu, variants: Variant[]): Promise<void> {
  for (const C of CHANNELS) {
    for (const [N, H, W] of PIXELS) {
      const M = N * H * W;
      const shape = [C, N, H, W];
      const x = channelData(C, M, C * 11 + M);
      const dy = randomArray(C * M, C + M);
      const stats = batchNormStatisticsReference(x, shape);
      const mean32 = Float32Array.from(stats.mean);
      const variance32 = Float32Array.from(stats.variance);
      const gamma = randomArray(C, 41, 1.5);
      const beta = randomArray(C, 42, 0.5);
      const relu = (C + M) % 2 === 0; // both values across the cases
      const accumulate = M === 1000; // the dx pass is shared by the variants; one size checks it adds
      const expected = batchNormBackwardReference({ x, dy, shape, mean: mean32, variance: variance32, gamma, beta, eps: EPS, relu });
      const xp = packed(gpu, 'x', x, X_OFFSET, shape);
      const dyp = packed(gpu, 'dy', dy, DY_OFFSET, shape);
      const params = gpu.upload('params', 'parameters', Float32Array.from([...mean32, ...variance32, ...gamma, ...beta]));
      const [mean, variance, gammaRef, betaRef] = [0, 1, 2, 3].map((i) => tensor(params, [C], i * C));
      // Σ|term| bounds the float32 error of the sums (sumTol).
      const masked = Float64Array.from(dy, (g, i) => {
        const c = Math.floor(i / M);
        const xhat = (x[i] - mean32[c]) / Math.sqrt(variance32[c] + EPS);
        return relu && xhat * gamma[c] + beta[c] <= 0 ? 0 : g;
      });
      const dyXhat = masked.map((g, i) => g * (x[i] - mean32[Math.floor(i / M)]) / Math.sqrt(variance32[Math.floor(i / M)] + EPS));
      const dxInit = randomArray(C * M, 44);
      for (const v of variants) {
        const what = `backward ${C}x${N}x${H}x${W} relu=${relu} accumulate=${accumulate} ${v.label}`;
        const dx = accumulate ? packed(gpu, 'dx', dxInit, 9, shape) : poisoned(gpu, 'dx', C * M, 9, shape);
        const dgamma = poisoned(gpu, 'dgamma', C, 1);
        const dbeta = poisoned(gpu, 'dbeta', C, 4);
        const workspace = workspaceFor(gpu, v, shape);
        await runAndDestroy(gpu, await batchNormBackward(gpu, {
          x: xp.ref, dy: dyp.ref, mean, variance, gamma: gammaRef, beta: betaRef, eps: EPS, relu, accumulate,
          dx: dx.ref, dgamma: dgamma.ref, dbeta: dbeta.ref, variant: v.variant, workspace: workspace?.ref, splitChunk: v.splitChunk?.(M), subgroups: v.subgroups,
        }));
        const wantDx = accumulate ? expected.dx.map((d, i) => d + dxInit[i]) : expected.dx;
        const gotDx = accumulate ? (await gpu.read(dx.buf)).slice(dx.ref.offset, dx.ref.offset + C * M) : await readOutput(gpu, dx, `${what} dx`);
        assertClose(gotDx, wantDx, dxTol, `${what} dx`);
        assertClose(await readOutput(gpu, dgamma, `${what} dgamma`), expected.dgamma, sumTol(dyXhat, C, M), `${what} dgamma`);
        assertClose(await readOutput(gpu, dbeta, `${what} dbeta`), expected.dbeta, sumTol(masked, C, M), `${what} dbeta`);
        for (const b of [dx.buf, dgamma.buf, dbeta.buf, workspace?.buf]) if (b) gpu.arena.free(b);
      }
      for (const b of [xp.buf, dyp.buf, params]) gpu.arena.free(b);
    }
  }
}

test('statistics and the running update match the reference for every variant (C 1, 3, 12; N·H·W 1, 7, 1000, 65,537), outputs poisoned', async () => {
  await checkStatistics(await testGpu(), VARIANTS);
});

test('backward matches the reference for every variant (C 1, 3, 12; N·H·W 1, 7, 1000, 65,537; relu; accumulate), outputs poisoned', async () => {
  await checkBackward(await testGpu(), VARIANTS);
});

test('the split variant\'s subgroup path matches the reference (statistics, running update, backward), where the adapter has subgroups', async () => {
  const gpu = await subgroupGpu();
  if (!gpu) {
    console.log('  (skipped: this adapter has no subgroups feature)');
    return;
  }
  await checkStatistics(gpu, SUBGROUP_VARIANTS);
  await checkBackward(gpu, SUBGROUP_VARIANTS);
});

test('the split variant refuses a missing, small or overlapping workspace by name, before anything is compiled', async () => {
  const gpu = await testGpu();
  const shape = [3, 2, 3, 3];
  const xBuf = gpu.zeros('x', 'activations', 54);
  const x = tensor(xBuf, shape);
  const v = gpu.zeros('v', 'parameters', 64 * 8);
  const vec = (i: number, n = 3) => tensor(v, [n], i * 64);
  const needed = batchNormSplitWorkspaceElements(shape);
  assert.is(needed, 6);
  const ws = gpu.zeros('ws', 'workspace', 64);
  const back = { x, dy: x, mean: vec(0), variance: vec(1), gamma: vec(2), beta: vec(3), eps: EPS, dx: tensor(gpu.zeros('dx', 'gradients', 54), shape), dgamma: vec(4), dbeta: vec(5) };
  const pipelinesBefore = gpu.pipelines.pipelinesCreated;
  const liveBefore = gpu.arena.liveBytes;
  const refuses = async (p: Promise<unknown>, message: string | RegExp) => p.then(
    () => assert.unreachable(`should throw: ${message}`),
    (e: Error) => { assert.ok(e instanceof ShapeError || e instanceof RangeError, e.message); assert.match(e.message, message); },
  );
  const stats = { x, mean: vec(0), variance: vec(1), variant: 'split-reduction' as const };
  await refuses(batchNormStatistics(gpu, stats), 'batchNorm.statistics: the split-reduction variant needs a workspace of 6 elements');
  await refuses(batchNormStatistics(gpu, { ...stats, workspace: tensor(ws, [5]) }), 'batchNorm.statistics: "workspace" has shape [5], expected at least [6]');
  await refuses(batchNormStatistics(gpu, { ...stats, workspace: tensor(v, [6], 64) }), /"variance" .* and "workspace" .* overlap/);
  await refuses(batchNormStatistics(gpu, { ...stats, workspace: tensor(ws, [6]), splitChunk: 0 }), 'splitChunk must be a whole number >= 1');
  if (!gpu.device.features.has('subgroups')) {
    await refuses(batchNormStatistics(gpu, { ...stats, workspace: tensor(ws, [6]), subgroups: true }), 'subgroups were asked for but the device has no \'subgroups\' feature');
  }
  await refuses(batchNormStatistics(gpu, { ...stats, variant: 'tree' as BatchNormVariant }), 'variant "tree" is not one of workgroup-per-channel, split-reduction');
  await refuses(batchNormBackward(gpu, { ...back, variant: 'split-reduction' }), 'batchNorm.backward: the split-reduction variant needs a workspace of 6 elements');
  await refuses(batchNormBackward(gpu, { ...back, variant: 'split-reduction', workspace: tensor(back.dx.buffer, [6], 48) }), /"dx" .* and "workspace" .* overlap/);
  assert.is(gpu.pipelines.pipelinesCreated, pipelinesBefore, 'nothing was compiled');
  assert.is(gpu.arena.liveBytes, liveBefore, 'no uniform buffer was allocated');
  for (const b of [xBuf, v, ws, back.dx.buffer]) gpu.arena.free(b);
});

test.run();
