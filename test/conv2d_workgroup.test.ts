// The 'workgroup' conv2d variant (implicit GEMM tiled through workgroup memory) against the float64
// CPU reference: forward and backward-input at awkward sizes and at every named workgroup tile,
// the fused BN→ReLU input, channel slices of larger buffers with their neighbours untouched,
// accumulate, and the checks. Every output is poisoned (NaN) before every run.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  affineReluReference, conv2dBackwardInput, conv2dBackwardInputReference, conv2dForward, conv2dReference, CONV_TILES,
  WORKGROUP_TILES, type WorkgroupTile,
} from '../src/kernels/conv2d.js';
import { channelSlice, ShapeError, tensor } from '../src/kernels/tensor.js';
import { CONV_TOLERANCE, convShapes, elementCount, SENTINEL, tileName, type ConvCase } from './conv2d_cases.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('conv2d_workgroup');
test.after(closeTestGpu);

const tol = CONV_TOLERANCE;

type Case = ConvCase;
/** Channels not multiples of 4 or of a tile, N·H·W not a multiple of a tile's pixels. */
const CASES: Case[] = [
  { name: '3×3 pad 1', Cin: 13, Cout: 5, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 } },
  { name: '1×1 (plain GEMM)', Cin: 13, Cout: 7, N: 3, H: 7, W: 7, KH: 1, KW: 1, params: {} },
  { name: '3×3 pad 1, 70 ← 37 channels (several row tiles, K not a multiple of 16)', Cin: 37, Cout: 70, N: 2, H: 5, W: 6, KH: 3, KW: 3, params: { padding: 1 } },
  { name: '3×3 stride 2 pad 0, non-square map', Cin: 13, Cout: 6, N: 3, H: 7, W: 9, KH: 3, KW: 3, params: { stride: 2 } },
  { name: '7×7 stride 2 pad 3 (stem)', Cin: 3, Cout: 5, N: 2, H: 11, W: 13, KH: 7, KW: 7, params: { stride: 2, padding: 3 } },
  { name: '2×3 kernel, stride [1, 2], padding [1, 0]', Cin: 5, Cout: 4, N: 3, H: 6, W: 9, KH: 2, KW: 3, params: { stride: [1, 2], padding: [1, 0] } },
  { name: '1×1 stride 2', Cin: 6, Cout: 5, N: 2, H: 7, W: 8, KH: 1, KW: 1, params: { stride: 2 } },
];
/**
 * Every case runs at the tiny tile (32 threads, 8 × 32: the small shapes cross every tile edge);
 * the default tile (narrow or square by M) runs on three cases, and the 70 ← 37 case (square by
 * default) at every other named tile too. Each
 * case × tile × direction is a pipeline that compiles for seconds on lavapipe, so not the full product.
 */
const MORE_TILES = new Map<number, (WorkgroupTile | undefined)[]>([
  [0, [undefined]],
  [2, [undefined, WORKGROUP_TILES.narrow, WORKGROUP_TILES.tall, WORKGROUP_TILES.wide]],
  [4, [undefined]],
]);

const shapes = convShapes;
const count = elementCount;
const nanFilled = (n: number) => new Float32Array(n).fill(NaN);

/** Writes `init` into `buffer` (all NaN when absent), runs and destroys the launches, reads `buffer` back. */
async function runPoisoned(gpu: Gpu, launches: Launch[], buffer: ArenaBuffer, init?: Float32Array): Promise<Float32Array> {
  gpu.write(buffer, init ?? nanFilled(buffer.bytes / 4));
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  return gpu.read(buffer);
}

test('forward and backward-input match the reference on awkward shapes, at every workgroup tile on three of them', async () => {
  const gpu = await testGpu();
  for (const [k, c] of CASES.entries()) {
    const s = shapes(c);
    const x = randomArray(count(s.x), 110 + k);
    const w = randomArray(count(s.w), 120 + k);
    const dy = randomArray(count(s.y), 130 + k);
    const xb = gpu.upload('x', 'activations', x);
    const wb = gpu.upload('w', 'parameters', w);
    const dyb = gpu.upload('dy', 'gradients', dy);
    const yb = gpu.zeros('y', 'activations', count(s.y));
    const dxb = gpu.zeros('dx', 'gradients', count(s.x));
    const yRef = conv2dReference(x, s.x, w, s.w, c.params);
    const dxRef = conv2dBackwardInputReference(dy, w, s.w, s.x, c.params);
    for (const workgroupTile of [WORKGROUP_TILES.tiny, ...(MORE_TILES.get(k) ?? [])]) {
      const common = { w: tensor(wb, s.w), variant: 'workgroup' as const, workgroupTile, ...c.params };
      const y = await runPoisoned(gpu, await conv2dForward(gpu, { ...common, x: tensor(xb, s.x), y: tensor(yb, s.y) }), yb);
      assertClose(y, yRef, tol, `${c.name}: forward, workgroup tile ${tileName(workgroupTile)}`);
      const dx = await runPoisoned(gpu, await conv2dBackwardInput(gpu, { ...common, dy: tensor(dyb, s.y), dx: tensor(dxb, s.x) }), dxb);
      assertClose(dx, dxRef, tol, `${c.name}: backward-input, workgroup tile ${tileName(workgroupTile)}`);
    }
    for (const b of [xb, wb, dyb, yb, dxb]) gpu.arena.free(b);
  }
});

test('fused BN→ReLU input: forward matches transform-then-convolve, padding zero after the transform', async () => {
  const gpu = await testGpu();
  // The 1×1 plain GEMM reads x directly, a path of its own: the bottleneck conv of every fused dense layer.
  for (const c of [CASES[0], CASES[1], CASES[4]]) {
    const s = shapes(c);
    const x = randomArray(count(s.x), 141);
    const w = randomArray(count(s.w), 142);
    const scale = randomArray(c.Cin, 143, 2);
    // Positive shifts: relu(shift) > 0, so a kernel that transformed the zero padding would be caught.
    const shift = randomArray(c.Cin, 144).map((v) => 0.5 + Math.abs(v));
    const yRef = conv2dReference(affineReluReference(x, s.x, scale, shift), s.x, w, s.w, c.params);
    const bufs = {
      x: gpu.upload('x', 'activations', x), w: gpu.upload('w', 'parameters', w), scale: gpu.upload('scale', 'parameters', scale),
      shift: gpu.upload('shift', 'parameters', shift), y: gpu.zeros('y', 'activations', count(s.y)),
    };
    const y = await runPoisoned(gpu, await conv2dForward(gpu, {
      x: tensor(bufs.x, s.x), w: tensor(bufs.w, s.w), y: tensor(bufs.y, s.y), variant: 'workgroup', workgroupTile: WORKGROUP_TILES.tiny,
      inputTransform: { scale: tensor(bufs.scale, [c.Cin]), shift: tensor(bufs.shift, [c.Cin]) }, ...c.params,
    }), bufs.y);
    assertClose(y, yRef, tol, `${c.name}: forward with transform`);
    for (const b of Object.values(bufs)) gpu.arena.free(b);
  }
});

test('channel slices: x a prefix of a block buffer, y and dx written into slices with neighbours untouched; accumulate adds; one shared buffer', async () => {
  const gpu = await testGpu();
  const c = CASES[0];
  const s = shapes(c);
  const [, N, H, W] = s.x;
  const [, , Ho, Wo] = s.y;
  const plane = N * H * W;
  const xSlab = randomArray(20 * plane, 151); // x is channels [0, 13) of 20
  const w = randomArray(count(s.w), 152);
  const dySlab = randomArray(9 * N * Ho * Wo, 153); // dy is channels [2, 7) of 9
  const dxInit = randomArray(20 * plane, 154); // dx is channels [3, 16) of 20
  const xb = gpu.upload('block', 'activations', xSlab);
  const wb = gpu.upload('w', 'parameters', w);
  const dyb = gpu.upload('dy', 'gradients', dySlab);
  const yb = gpu.zeros('y', 'activations', 11 * N * Ho * Wo); // y is channels [4, 9) of 11
  const dxb = gpu.zeros('dx', 'gradients', 20 * plane);
  const x = channelSlice(tensor(xb, [20, N, H, W]), 0, c.Cin);
  const y = channelSlice(tensor(yb, [11, N, Ho, Wo]), 4, c.Cout);
  const dy = channelSlice(tensor(dyb, [9, N, Ho, Wo]), 2, c.Cout);
  const dx = channelSlice(tensor(dxb, [20, N, H, W]), 3, c.Cin);
  const opts = { w: tensor(wb, s.w), variant: 'workgroup' as const, workgroupTile: WORKGROUP_TILES.tiny, ...c.params };
  const yRef = conv2dReference(xSlab.subarray(0, count(s.x)), s.x, w, s.w, c.params);
  const dxRef = conv2dBackwardInputReference(dySlab.subarray(dy.offset, dy.offset + count(s.y)), w, s.w, s.x, c.params);

  // Sentinels around, NaN in the slice.
  const yInit = new Float32Array(11 * N * Ho * Wo).fill(SENTINEL);
  yInit.set(nanFilled(count(s.y)), y.offset);
  const yExpected = Float64Array.from(yInit);
  yExpected.set(yRef, y.offset);
  assertClose(await runPoisoned(gpu, await conv2dForward(gpu, { ...opts, x, y }), yb, yInit), yExpected, tol, 'forward into channels [4, 9) of 11');

  const dxPoisoned = Float32Array.from(dxInit);
  dxPoisoned.set(nanFilled(count(s.x)), dx.offset);
  const dxWritten = Float64Array.from(dxInit);
  dxWritten.set(dxRef, dx.offset);
  assertClose(await runPoisoned(gpu, await conv2dBackwardInput(gpu, { ...opts, dy, dx }), dxb, dxPoisoned), dxWritten, tol,
    'backward-input written (=) into channels [3, 16) of 20');
  const dxAdded = Float64Array.from(dxInit);
  for (let i = 0; i < dxRef.length; i++) dxAdded[dx.offset + i] += dxRef[i];
  assertClose(await runPoisoned(gpu, await conv2dBackwardInput(gpu, { ...opts, dy, dx, accumulate: true }), dxb, dxInit), dxAdded, tol,
    'backward-input accumulated (+=) into channels [3, 16) of 20');

  // Dense-block case: the layer reads the prefix and writes channels [14, 19) of the same buffer.
  const blockInit = Float32Array.from(xSlab);
  blockInit.set(nanFilled(c.Cout * plane), (c.Cin + 1) * plane);
  const blockExpected = Float64Array.from(blockInit);
  blockExpected.set(yRef, (c.Cin + 1) * plane);
  const block = tensor(xb, [20, N, H, W]);
  const launches = await conv2dForward(gpu, { ...opts, x, y: channelSlice(block, c.Cin + 1, c.Cout) });
  assertClose(await runPoisoned(gpu, launches, xb, blockInit), blockExpected, tol, 'forward written after its input in one buffer');
  for (const b of [xb, wb, dyb, yb, dxb]) gpu.arena.free(b);
});

test('a grid of more than 65,535 workgroups (folded into 2-D) computes every output: 1×1, 65,626 tiles of 32 pixels', async () => {
  const gpu = await testGpu();
  // Same program as the 1×1 case at the tiny tile (only uniforms differ): no new pipeline.
  const [Cin, Cout, N, H, W] = [2, 3, 1, 1, 65_625 * 32 + 5];
  const x = randomArray(Cin * W, 161);
  const w = randomArray(Cout * Cin, 162);
  const xb = gpu.upload('x', 'activations', x);
  const wb = gpu.upload('w', 'parameters', w);
  const yb = gpu.zeros('y', 'activations', Cout * W);
  const launches = await conv2dForward(gpu, {
    x: tensor(xb, [Cin, N, H, W]), w: tensor(wb, [Cout, Cin, 1, 1]), y: tensor(yb, [Cout, N, H, W]), variant: 'workgroup', workgroupTile: WORKGROUP_TILES.tiny,
  });
  const got = await runPoisoned(gpu, launches, yb);
  // The reference as the plain GEMM it is (conv2dReference on 2 M pixels is slow in a loop of taps).
  const expected = new Float64Array(Cout * W);
  for (let co = 0; co < Cout; co++) for (let ci = 0; ci < Cin; ci++) {
    const wv = w[co * Cin + ci];
    for (let q = 0; q < W; q++) expected[co * W + q] += wv * x[ci * W + q];
  }
  assertClose(got, expected, tol, 'every pixel of every channel');
  for (const b of [xb, wb, yb]) gpu.arena.free(b);
});

test('variant and workgroup-tile errors are thrown before anything is compiled; register stays the default', async () => {
  const gpu = await testGpu();
  const xb = gpu.zeros('x', 'activations', 13 * 3 * 49);
  const wb = gpu.zeros('w', 'parameters', 5 * 13 * 9);
  const yb = gpu.zeros('y', 'activations', 5 * 3 * 49);
  const args = { x: tensor(xb, [13, 3, 7, 7]), w: tensor(wb, [5, 13, 3, 3]), y: tensor(yb, [5, 3, 7, 7]), padding: 1 };
  const pipelines = gpu.pipelines.pipelinesCreated;
  const rejects = async (p: Promise<unknown>, message: RegExp) => {
    await p.then(() => assert.unreachable(`should throw ${message}`), (e: Error) => {
      assert.instance(e, ShapeError);
      assert.match(e.message, message);
    });
  };
  await rejects(conv2dForward(gpu, { ...args, variant: 'workgroup', workgroupTile: { m: 64, n: 64, k: 16, rows: 3, cols: 4 } }),
    /conv2d: workgroup tile .* is invalid/);
  await rejects(conv2dForward(gpu, { ...args, variant: 'workgroup', workgroupTile: { m: 256, n: 256, k: 64, rows: 16, cols: 16 } }),
    /workgroup tile .* is invalid .*bytes <= \d+/);
  await rejects(conv2dForward(gpu, { ...args, variant: 'workgroup', tile: CONV_TILES.tall }), /register tile is given with variant 'workgroup'/);
  await rejects(conv2dBackwardInput(gpu, { dy: args.y, w: args.w, dx: args.x, padding: 1, workgroupTile: WORKGROUP_TILES.tiny }),
    /conv2d.backwardInput: workgroupTile is given but variant is 'register'/);
  await rejects(conv2dForward(gpu, { ...args, variant: 'shared' as 'workgroup' }), /variant "shared" is unknown/);
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'no pipeline was compiled');
  // The register variant stays the default.
  const [plain] = await conv2dForward(gpu, args);
  const [tiled] = await conv2dForward(gpu, { ...args, variant: 'workgroup' });
  assert.equal([plain.name, tiled.name], ['conv2d', 'conv2d.workgroup']);
  plain.destroy();
  tiled.destroy();
  for (const b of [xb, wb, yb]) gpu.arena.free(b);
});

test.run();
