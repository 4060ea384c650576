// The chunked entry points (kernels/conv2d_chunked.ts, per_channel_chunked.ts, flat fill and copy)
// against the float64 CPU references, on a device whose binding size is capped to 4 KiB (1,024
// floats), so that awkward small shapes split into several channel chunks. Every output is
// poisoned (NaN) before each run: a chunk that writes nothing, or adds to what it should overwrite,
// fails. Each test also asserts the op really ran in several launches.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import { openDevice, type Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  batchNormBackwardReference, batchNormForwardReference, batchNormSplitWorkspaceElements, batchNormStatisticsReference,
} from '../src/kernels/batchnorm.js';
import { channelRanges } from '../src/kernels/chunks.js';
import {
  affineReluReference, conv2dBackwardFilterReference, conv2dBackwardInputReference, conv2dReference,
} from '../src/kernels/conv2d.js';
import { conv2dBackwardFilterChunked, conv2dBackwardInputChunked, conv2dForwardChunked } from '../src/kernels/conv2d_chunked.js';
import { copyTensor } from '../src/kernels/copy.js';
import { fillLaunch } from '../src/kernels/fill.js';
import {
  avgPool2x2BackwardChunked, avgPool2x2ForwardChunked, batchNormBackwardChunked, batchNormForwardChunked, batchNormStatisticsChunked,
  globalAvgPoolBackwardChunked, globalAvgPoolForwardChunked, maxPool3x3BackwardChunked, maxPool3x3ForwardChunked,
} from '../src/kernels/per_channel_chunked.js';
import { avgPool2x2BackwardReference, avgPool2x2OutputShape, avgPool2x2Reference } from '../src/kernels/pool_average.js';
import { globalAvgPoolBackwardReference, globalAvgPoolReference } from '../src/kernels/pool_global.js';
import { maxPool3x3BackwardReference, maxPool3x3OutputShape, maxPool3x3Reference } from '../src/kernels/pool_max.js';
import { channelSlice, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { CONV_TOLERANCE, convShapes, elementCount as count, type ConvCase } from './conv2d_cases.js';
import { assertClose, randomArray } from './helpers.js';

const test = suite('chunked kernels');
const CAP_BYTES = 4096;
let device: Gpu | undefined;
const gpuOf = async () => (device ??= await openDevice({ maxBindingMiB: CAP_BYTES / 2 ** 20 }));
test.after(() => {
  if (process.env.CHUNK_PIPELINES) console.log(`pipelines created: ${device?.pipelines.pipelinesCreated}`);
  device?.close();
});

/** Poisons `outputs` (NaN, or `initial` where given), runs the launches, destroys them and reads each output back. */
async function run(gpu: Gpu, launches: Launch[], outputs: ArenaBuffer[], initial = new Map<ArenaBuffer, Float32Array>()): Promise<Float32Array[]> {
  for (const b of outputs) gpu.write(b, initial.get(b) ?? new Float32Array(b.bytes / 4).fill(NaN));
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  return Promise.all(outputs.map((b) => gpu.read(b)));
}

const chunked = (launches: Launch[], atLeast: number, what: string) =>
  assert.ok(launches.length >= atLeast, `${what}: ${launches.length} launches, expected at least ${atLeast} chunks`);

test('channelRanges cover [0, total) in parts differing by at most one', () => {
  assert.equal(channelRanges(7, 3), [{ start: 0, count: 3 }, { start: 3, count: 2 }, { start: 5, count: 2 }]);
  assert.equal(channelRanges(4, 1), [{ start: 0, count: 4 }]);
});

/**
 * Two geometries DenseNet chunks: its 3×3 conv (x 1,911 floats: input chunks; y 1,029: output
 * chunks) with the fused BN→ReLU, and its 1×1 bottleneck (x 1,740 floats: input chunks) without.
 * Few distinct programs on purpose: each costs seconds of CPU to compile on a cold shader cache.
 */
const CASES: (ConvCase & { chunks: number; transform: boolean })[] = [
  { name: '3×3 pad 1, fused BN→ReLU', Cin: 13, Cout: 7, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 }, chunks: 4, transform: true },
  { name: '1×1', Cin: 29, Cout: 11, N: 2, H: 5, W: 6, KH: 1, KW: 1, params: {}, chunks: 2, transform: false },
];

test('conv2d forward, backward-input (= and +=) and backward-filter in chunks match the reference', async () => {
  const gpu = await gpuOf();
  for (const [k, c] of CASES.entries()) {
    const s = convShapes(c);
    const x = randomArray(count(s.x), 10 + k);
    const w = randomArray(count(s.w), 20 + k);
    const dy = randomArray(count(s.y), 30 + k);
    const scale = randomArray(c.Cin, 40 + k);
    const shift = randomArray(c.Cin, 50 + k, 0.5);
    const dxInit = randomArray(count(s.x), 60 + k);
    const [xb, wb, dyb, scb, shb] = [gpu.upload('x', 'activations', x), gpu.upload('w', 'parameters', w), gpu.upload('dy', 'gradients', dy),
      gpu.upload('scale', 'workspace', scale), gpu.upload('shift', 'workspace', shift)];
    const [yb, dxb, dwb] = [gpu.zeros('y', 'activations', count(s.y)), gpu.zeros('dx', 'gradients', count(s.x)), gpu.zeros('dw', 'gradients', count(s.w))];
    const X = tensor(xb, s.x);
    const W = tensor(wb, s.w);
    const DY = tensor(dyb, s.y);
    const inputTransform = c.transform ? { scale: tensor(scb, [c.Cin]), shift: tensor(shb, [c.Cin]) } : undefined;
    const input = c.transform ? affineReluReference(x, s.x as [number, number, number, number], scale, shift) : x;

    const forward = await conv2dForwardChunked(gpu, { x: X, w: W, y: tensor(yb, s.y), inputTransform, ...c.params });
    chunked(forward, c.chunks, `${c.name}: forward`);
    const [y] = await run(gpu, forward, [yb]);
    assertClose(y, conv2dReference(input, s.x, w, s.w, c.params), CONV_TOLERANCE, `${c.name}: forward`);
    const filter = await conv2dBackwardFilterChunked(gpu, { x: X, dy: DY, dw: tensor(dwb, s.w), inputTransform, ...c.params });
    chunked(filter, 2, `${c.name}: backward-filter`);
    const [dw] = await run(gpu, filter, [dwb]);
    assertClose(dw, conv2dBackwardFilterReference(input, s.x, dy, s.w, c.params), CONV_TOLERANCE, `${c.name}: backward-filter`);
    // Chunks after the first add (+=) whatever the caller asks, so both runs share the same two programs.
    const dxRef = conv2dBackwardInputReference(dy, w, s.w, s.x, c.params);
    for (const accumulate of [false, true]) {
      const launches = await conv2dBackwardInputChunked(gpu, { dy: DY, w: W, dx: tensor(dxb, s.x), accumulate, ...c.params });
      chunked(launches, 2, `${c.name}: backward-input`);
      const [dx] = await run(gpu, launches, [dxb], accumulate ? new Map([[dxb, dxInit]]) : undefined);
      assertClose(dx, accumulate ? dxRef.map((v, i) => v + dxInit[i]) : dxRef, CONV_TOLERANCE, `${c.name}: backward-input, accumulate ${accumulate}`);
    }
    for (const b of [xb, wb, dyb, scb, shb, yb, dxb, dwb]) gpu.arena.free(b);
  }
});

test('conv2d forward in chunks, register and workgroup variants, reading a dense block\'s prefix from the buffer its output goes to', async () => {
  const gpu = await gpuOf();
  const c = CASES[0];
  const s = convShapes(c);
  const [, N, H, W] = s.x;
  const block = randomArray((c.Cin + c.Cout) * N * H * W, 71); // x = channels [0, 13), y = channels [13, 20)
  const w = randomArray(count(s.w), 72);
  const [bb, wb] = [gpu.upload('block', 'activations', block), gpu.upload('w', 'parameters', w)];
  const whole = tensor(bb, [c.Cin + c.Cout, N, H, W]);
  const X = channelSlice(whole, 0, c.Cin);
  const Y = channelSlice(whole, c.Cin, c.Cout);
  const xs = block.subarray(0, count(s.x));
  const yRef = conv2dReference(xs, s.x, w, s.w, c.params);
  for (const variant of ['register', 'workgroup'] as const) {
    const launches = await conv2dForwardChunked(gpu, { x: X, w: tensor(wb, s.w), y: Y, variant, ...c.params });
    chunked(launches, 4, `${variant}: forward`);
    // Only y is poisoned: x, the prefix, is what the chunks read.
    gpu.write(bb, new Float32Array(count(s.y)).fill(NaN), Y.offset);
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const got = await gpu.read(bb);
    assertClose(got.subarray(Y.offset), yRef, CONV_TOLERANCE, `${variant}: forward into the block's next channels`);
    assertClose(got.subarray(0, count(s.x)), xs, { atol: 0, rtol: 0 }, `${variant}: the prefix is untouched`);
  }
  for (const b of [bb, wb]) gpu.arena.free(b);
});

test('one channel larger than the binding is refused naming the op and the operand', async () => {
  const gpu = await gpuOf();
  const xb = gpu.zeros('wide', 'activations', 2 * 1200);
  const wb = gpu.zeros('w', 'parameters', 2 * 2);
  const yb = gpu.zeros('y', 'activations', 2 * 1200);
  try {
    await conv2dForwardChunked(gpu, { x: tensor(xb, [2, 1, 40, 30]), w: tensor(wb, [2, 2, 1, 1]), y: tensor(yb, [2, 1, 40, 30]) });
    assert.unreachable('a 4,800-byte channel under a 4 KiB binding must be refused');
  } catch (e) {
    assert.match((e as Error).message, /^conv2d: one channel of "(x|y)" \[2, 1, 40, 30\] is 4800 bytes of buffer "(wide|y)", and channel chunks cannot split it, but the binding cap is 4096 bytes/);
  }
  for (const b of [xb, wb, yb]) gpu.arena.free(b);
});

const BN_SHAPE = [11, 3, 5, 7]; // 1,155 floats: two or more channel chunks
const bnTol = { atol: 2e-5, rtol: 1e-4 };

test('batch norm statistics, forward and backward (+=) in channel chunks match the reference, under both reduction variants', async () => {
  const gpu = await gpuOf();
  const C = BN_SHAPE[0];
  const x = randomArray(count(BN_SHAPE), 81, 2);
  const dy = randomArray(count(BN_SHAPE), 82);
  const gamma = randomArray(C, 83);
  const beta = randomArray(C, 84);
  const dxInit = randomArray(count(BN_SHAPE), 85);
  const stats = batchNormStatisticsReference(x, BN_SHAPE);
  const eps = 1e-5;
  const inputs = { x, shape: BN_SHAPE, mean: stats.mean, variance: stats.variance, gamma, beta, eps, relu: true };
  const [xb, dyb, gb, bb] = [gpu.upload('x', 'activations', x), gpu.upload('dy', 'gradients', dy), gpu.upload('gamma', 'parameters', gamma), gpu.upload('beta', 'parameters', beta)];
  const [meanb, varb, yb, dxb, dgb, dbb] = [gpu.zeros('mean', 'activations', C), gpu.zeros('variance', 'activations', C), gpu.zeros('y', 'activations', count(BN_SHAPE)),
    gpu.zeros('dx', 'gradients', count(BN_SHAPE)), gpu.zeros('dgamma', 'gradients', C), gpu.zeros('dbeta', 'gradients', C)];
  const ws = gpu.zeros('partials', 'workspace', batchNormSplitWorkspaceElements(BN_SHAPE));
  const refs = {
    x: tensor(xb, BN_SHAPE), mean: tensor(meanb, [C]), variance: tensor(varb, [C]), gamma: tensor(gb, [C]), beta: tensor(bb, [C]),
  };
  const backwardRef = batchNormBackwardReference({ ...inputs, dy });
  for (const variant of ['workgroup-per-channel', 'split-reduction'] as const) {
    const reduction = variant === 'split-reduction' ? { variant, workspace: tensor(ws, [batchNormSplitWorkspaceElements(BN_SHAPE)]) } : { variant };
    const statistics = await batchNormStatisticsChunked(gpu, { x: refs.x, mean: refs.mean, variance: refs.variance, ...reduction });
    chunked(statistics, 2, `${variant}: statistics`);
    const [mean, variance] = await run(gpu, statistics, [meanb, varb]);
    assertClose(mean, stats.mean, { atol: 1e-6, rtol: 1e-5 }, `${variant}: mean`);
    assertClose(variance, stats.variance, { atol: 1e-6, rtol: 1e-5 }, `${variant}: variance`);
    // The statistics stay in meanb/varb for what follows (read back above, exactly what the GPU holds).
    gpu.write(meanb, mean);
    gpu.write(varb, variance);
    // accumulate (a dense block's case): dx starts from known values, so a chunk that writes nothing fails too.
    for (const accumulate of [true]) {
      const launches = await batchNormBackwardChunked(gpu, { ...refs, dy: tensor(dyb, BN_SHAPE), eps, relu: true,
        dx: tensor(dxb, BN_SHAPE), dgamma: tensor(dgb, [C]), dbeta: tensor(dbb, [C]), accumulate, ...reduction });
      chunked(launches, 4, `${variant}: backward`);
      const [dx, dgamma, dbeta] = await run(gpu, launches, [dxb, dgb, dbb], accumulate ? new Map([[dxb, dxInit]]) : undefined);
      assertClose(dgamma, backwardRef.dgamma, bnTol, `${variant}: dgamma`);
      assertClose(dbeta, backwardRef.dbeta, bnTol, `${variant}: dbeta`);
      assertClose(dx, accumulate ? backwardRef.dx.map((v, i) => v + dxInit[i]) : backwardRef.dx, bnTol, `${variant}: dx, accumulate ${accumulate}`);
    }
  }
  const forward = await batchNormForwardChunked(gpu, { ...refs, y: tensor(yb, BN_SHAPE), eps, relu: true });
  chunked(forward, 2, 'forward');
  const [y] = await run(gpu, forward, [yb]);
  assertClose(y, batchNormForwardReference(inputs), bnTol, 'forward');
  for (const b of [xb, dyb, gb, bb, meanb, varb, yb, dxb, dgb, dbb, ws]) gpu.arena.free(b);
});

test('average, max and global pools, forward and backward (+=), in channel chunks match the reference', async () => {
  const gpu = await gpuOf();
  const cases: { name: string; shape: [number, number, number, number]; out: number[];
    forward: (x: TensorRef, y: TensorRef) => Promise<Launch[]>; backward: (x: TensorRef, dy: TensorRef, dx: TensorRef) => Promise<Launch[]>;
    ref: (x: Float32Array) => Float64Array; backRef: (x: Float32Array, dy: Float32Array) => Float64Array }[] = [
    { name: 'avgPool2x2', shape: [13, 3, 6, 8], out: [...avgPool2x2OutputShape([13, 3, 6, 8])],
      forward: (x, y) => avgPool2x2ForwardChunked(gpu, { x, y }), backward: (_x, dy, dx) => avgPool2x2BackwardChunked(gpu, { dy, dx, accumulate: true }),
      ref: (x) => avgPool2x2Reference(x, [13, 3, 6, 8]), backRef: (_x, dy) => avgPool2x2BackwardReference(dy, [13, 3, 6, 8]) },
    { name: 'maxPool3x3', shape: [13, 3, 7, 9], out: [...maxPool3x3OutputShape([13, 3, 7, 9])],
      forward: (x, y) => maxPool3x3ForwardChunked(gpu, { x, y }), backward: (x, dy, dx) => maxPool3x3BackwardChunked(gpu, { x, dy, dx, accumulate: true }),
      ref: (x) => maxPool3x3Reference(x, [13, 3, 7, 9]), backRef: (x, dy) => maxPool3x3BackwardReference(x, dy, [13, 3, 7, 9]) },
    { name: 'globalAvgPool', shape: [13, 3, 5, 7], out: [13, 3],
      forward: (x, y) => globalAvgPoolForwardChunked(gpu, { x, y }), backward: (_x, dy, dx) => globalAvgPoolBackwardChunked(gpu, { dy, dx, accumulate: true }),
      ref: (x) => globalAvgPoolReference(x, [13, 3, 5, 7]), backRef: (_x, dy) => globalAvgPoolBackwardReference(dy, [13, 3, 5, 7]) },
  ];
  for (const [k, c] of cases.entries()) {
    const x = randomArray(count(c.shape), 90 + k);
    const dy = randomArray(count(c.out), 95 + k);
    const dxInit = randomArray(count(c.shape), 99 + k);
    const [xb, dyb, yb, dxb] = [gpu.upload('x', 'activations', x), gpu.upload('dy', 'gradients', dy), gpu.zeros('y', 'activations', count(c.out)), gpu.zeros('dx', 'gradients', count(c.shape))];
    const forward = await c.forward(tensor(xb, c.shape), tensor(yb, c.out));
    chunked(forward, 2, `${c.name}: forward`);
    const [y] = await run(gpu, forward, [yb]);
    assertClose(y, c.ref(x), { atol: 1e-6, rtol: 1e-6 }, `${c.name}: forward`);
    const backward = await c.backward(tensor(xb, c.shape), tensor(dyb, c.out), tensor(dxb, c.shape));
    chunked(backward, 2, `${c.name}: backward`);
    const [dx] = await run(gpu, backward, [dxb], new Map([[dxb, dxInit]]));
    assertClose(dx, c.backRef(x, dy).map((v, i) => v + dxInit[i]), { atol: 1e-6, rtol: 1e-6 }, `${c.name}: backward (+=)`);
    for (const b of [xb, dyb, yb, dxb]) gpu.arena.free(b);
  }
});

test('fill and copy (= and +=) run in flat chunks over a tensor larger than the binding', async () => {
  const gpu = await gpuOf();
  const n = 3001;
  const x = randomArray(n, 111);
  const init = randomArray(n, 112);
  const [xb, yb] = [gpu.upload('x', 'activations', x), gpu.zeros('y', 'activations', n + 5)];
  const Y = tensor(yb, [n], 5);
  const fill = await fillLaunch(gpu, Y, 0.25);
  chunked(fill, 3, 'fill');
  const [filled] = await run(gpu, fill, [yb], new Map([[yb, new Float32Array(n + 5).fill(-7)]]));
  assertClose(filled, [...Array(5).fill(-7), ...Array(n).fill(0.25)], { atol: 0, rtol: 0 }, 'fill (the 5 elements before it untouched)');
  const copy = await copyTensor(gpu, { x: tensor(xb, [n]), y: Y });
  chunked(copy, 3, 'copy');
  const [copied] = await run(gpu, copy, [yb]);
  assertClose(copied.subarray(5), x, { atol: 0, rtol: 0 }, 'copy');
  const add = await copyTensor(gpu, { x: tensor(xb, [n]), y: Y, accumulate: true });
  const [added] = await run(gpu, add, [yb], new Map([[yb, Float32Array.from([0, 0, 0, 0, 0, ...init])]]));
  assertClose(added.subarray(5), x.map((v, i) => v + init[i]), { atol: 1e-6, rtol: 1e-6 }, 'copy +=');
  for (const b of [xb, yb]) gpu.arena.free(b);
});

test.run();
