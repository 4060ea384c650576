// conv2d kernels against the float64 CPU reference: awkward shapes at every tile, channel slices
// of larger buffers (including the dense-block case of reading and writing one buffer), the fused
// BN→ReLU input transform, the naive oracle, and the checks that run before anything is recorded.
// (TensorFlow.js and finite-difference checks: conv2d_oracles.test.ts.)

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  affineReluReference, chooseConvTile, conv2dBackwardFilter, conv2dBackwardFilterReference, conv2dBackwardFilterWorkspaceElements, conv2dBackwardInput,
  conv2dBackwardInputReference, conv2dForward, conv2dNaiveForward, conv2dReference, CONV_TILES, DEFAULT_CONV_TILE,
  DEFAULT_FILTER_TILE, type ConvTile,
} from '../src/kernels/conv2d.js';
import { channelSlice, ShapeError, tensor } from '../src/kernels/tensor.js';
import { CONV_TOLERANCE, convShapes, elementCount, SENTINEL, tileName, type ConvCase } from './conv2d_cases.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('conv2d');
test.after(closeTestGpu);

const tol = CONV_TOLERANCE;

type Case = ConvCase;
const CASES: Case[] = [
  { name: '3×3 pad 1', Cin: 13, Cout: 5, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 } },
  { name: '1×1', Cin: 13, Cout: 7, N: 3, H: 7, W: 7, KH: 1, KW: 1, params: {} },
  { name: '3×3 stride 2 pad 0, non-square map', Cin: 13, Cout: 6, N: 3, H: 7, W: 9, KH: 3, KW: 3, params: { stride: 2 } },
  { name: '7×7 stride 2 pad 3 (stem)', Cin: 3, Cout: 5, N: 2, H: 11, W: 13, KH: 7, KW: 7, params: { stride: 2, padding: 3 } },
  { name: '3×3 pad 3 (output larger than input)', Cin: 4, Cout: 3, N: 2, H: 5, W: 6, KH: 3, KW: 3, params: { padding: 3 } },
  { name: '2×3 kernel, stride [1, 2], padding [1, 0]', Cin: 5, Cout: 4, N: 3, H: 6, W: 9, KH: 2, KW: 3, params: { stride: [1, 2], padding: [1, 0] } },
  { name: '1×1 stride 2', Cin: 6, Cout: 5, N: 2, H: 7, W: 8, KH: 1, KW: 1, params: { stride: 2 } },
];
/** undefined = the default chosen for the shape. */
const GEMM_TILES: (ConvTile | undefined)[] = [undefined, CONV_TILES.default, CONV_TILES.tall, CONV_TILES.wide, CONV_TILES.single];
const FILTER_TILES: (ConvTile | undefined)[] = [undefined, CONV_TILES.filter, CONV_TILES.small, CONV_TILES.split];
/**
 * Every case runs at its default tile; every other tile runs on these cases, whose geometries
 * (3×3 pad 1; 3×3 stride 2 on a non-square map; 2×3 kernel, stride [1, 2], padding [1, 0]) differ
 * in every compile-time constant. Each case × tile is a pipeline of its own, and compiling one
 * costs seconds of CPU on lavapipe with a cold shader cache (a fresh machine): the full cross
 * product (~100 pipelines) took over 10 minutes on a busy machine.
 */
const ALL_TILE_CASES = new Set([0, 2, 5]);

const shapes = convShapes;
const pairOf = (v: number | [number, number] | undefined): [number, number] => (v === undefined ? [0, 0] : typeof v === 'number' ? [v, v] : v);

/** x [C, N, H, W] with ph zero rows above and below and pw zero columns left and right. */
function zeroPad(x: ArrayLike<number>, [C, N, H, W]: number[], ph: number, pw: number): Float64Array {
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  const out = new Float64Array(C * N * Hp * Wp);
  for (let cn = 0; cn < C * N; cn++) {
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) out[(cn * Hp + h + ph) * Wp + w + pw] = x[(cn * H + h) * W + w];
  }
  return out;
}
const count = elementCount;

/** Runs the launches, destroys them, and returns the buffer's contents. */
async function runAndRead(gpu: Gpu, launches: Launch[], buffer: ArenaBuffer): Promise<Float32Array> {
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  return gpu.read(buffer);
}

/**
 * Fills `buffer` (and any workspace) with NaN, then runs the launches and reads `buffer` back: an
 * output element a kernel forgot to write stays NaN and fails assertClose, whatever an earlier
 * run (another tile or variant sharing the buffer) left there.
 */
async function runPoisoned(gpu: Gpu, launches: Launch[], buffer: ArenaBuffer, ...scratch: ArenaBuffer[]): Promise<Float32Array> {
  for (const b of [buffer, ...scratch]) gpu.write(b, new Float32Array(b.bytes / 4).fill(NaN));
  return runAndRead(gpu, launches, buffer);
}

function free(gpu: Gpu, ...buffers: ArenaBuffer[]): void {
  for (const b of buffers) gpu.arena.free(b);
}

test('forward, backward-input and backward-filter match the reference on awkward shapes, at every tile on three of them', async () => {
  const gpu = await testGpu();
  for (const [k, c] of CASES.entries()) {
    const s = shapes(c);
    const x = randomArray(count(s.x), 10 + k);
    const w = randomArray(count(s.w), 20 + k);
    const dy = randomArray(count(s.y), 30 + k);
    const xb = gpu.upload('x', 'activations', x);
    const wb = gpu.upload('w', 'parameters', w);
    const dyb = gpu.upload('dy', 'gradients', dy);
    const yb = gpu.zeros('y', 'activations', count(s.y));
    const dxb = gpu.zeros('dx', 'gradients', count(s.x));
    const dwb = gpu.zeros('dw', 'gradients', count(s.w));
    const X = tensor(xb, s.x);
    const W = tensor(wb, s.w);
    const DY = tensor(dyb, s.y);
    const yRef = conv2dReference(x, s.x, w, s.w, c.params);
    const dxRef = conv2dBackwardInputReference(dy, w, s.w, s.x, c.params);
    const dwRef = conv2dBackwardFilterReference(x, s.x, dy, s.w, c.params);
    for (const tile of ALL_TILE_CASES.has(k) ? GEMM_TILES : [undefined]) {
      const y = await runPoisoned(gpu, await conv2dForward(gpu, { x: X, w: W, y: tensor(yb, s.y), tile, ...c.params }), yb);
      assertClose(y, yRef, tol, `${c.name}: forward, tile ${tileName(tile)}`);
      const dx = await runPoisoned(gpu, await conv2dBackwardInput(gpu, { dy: DY, w: W, dx: tensor(dxb, s.x), tile, ...c.params }), dxb);
      assertClose(dx, dxRef, tol, `${c.name}: backward-input, tile ${tileName(tile)}`);
    }
    for (const tile of ALL_TILE_CASES.has(k) ? FILTER_TILES : [undefined]) {
      const wsElements = conv2dBackwardFilterWorkspaceElements(s.w, tile);
      const ws = wsElements > 0 ? gpu.zeros('conv.workspace', 'workspace', wsElements) : undefined;
      const launches = await conv2dBackwardFilter(gpu, {
        x: X, dy: DY, dw: tensor(dwb, s.w), tile, workspace: ws && tensor(ws, [wsElements]), ...c.params,
      });
      assert.is(launches.length, wsElements > 0 ? 2 : 1, 'split-K adds one reduction launch');
      const dw = await runPoisoned(gpu, launches, dwb, ...(ws ? [ws] : []));
      assertClose(dw, dwRef, tol, `${c.name}: backward-filter, tile ${tileName(tile)}`);
      if (ws) gpu.arena.free(ws);
    }
    free(gpu, xb, wb, dyb, yb, dxb, dwb);
  }
});

test('the poisoned check fails a variant that writes nothing, even after a correct run into the same buffer', async () => {
  const gpu = await testGpu();
  const c = CASES[0];
  const s = shapes(c);
  const x = randomArray(count(s.x), 91);
  const w = randomArray(count(s.w), 92);
  const yRef = conv2dReference(x, s.x, w, s.w, c.params);
  const xb = gpu.upload('x', 'activations', x);
  const wb = gpu.upload('w', 'parameters', w);
  const yb = gpu.zeros('y', 'activations', count(s.y));
  const args = { x: tensor(xb, s.x), w: tensor(wb, s.w), y: tensor(yb, s.y), ...c.params };
  // A correct run first leaves the right answer in y, as the tile before the next one would.
  assertClose(await runPoisoned(gpu, await conv2dForward(gpu, args), yb), yRef, tol, 'forward');
  const nothing = await runPoisoned(gpu, [], yb);
  // uvu's assert.throws rethrows its own assertion errors, so catch by hand.
  const failure = (() => { try { assertClose(nothing, yRef, tol, 'a variant that writes nothing'); } catch (e) { return (e as Error).message; } return ''; })();
  assert.match(failure, /a variant that writes nothing: element \d+ is NaN/);
  free(gpu, xb, wb, yb);
});

test('channel slices: x a prefix of a larger buffer, y/dx/dw written at offsets, the rest untouched; accumulate adds', async () => {
  const gpu = await testGpu();
  const c = CASES[0];
  const s = shapes(c);
  const [, N, H, W] = s.x;
  const [, , Ho, Wo] = s.y;
  const xSlab = randomArray(20 * N * H * W, 41); // 20 channels; x is the first 13
  const w = randomArray(count(s.w), 42);
  const dySlab = randomArray(9 * N * Ho * Wo, 43); // dy is channels [2, 7)
  const outInit = new Float32Array(11 * N * Ho * Wo).fill(SENTINEL); // y goes to channels [4, 9)
  const dxInit = randomArray(20 * N * H * W, 44); // dx accumulates into channels [3, 16)
  const dwInit = new Float32Array(count(s.w) + 50).fill(SENTINEL); // dw at element 17
  const xb = gpu.upload('block', 'activations', xSlab);
  const wb = gpu.upload('w', 'parameters', w);
  const dyb = gpu.upload('dy', 'gradients', dySlab);
  const yb = gpu.upload('y', 'activations', outInit);
  const dxb = gpu.upload('dx', 'gradients', dxInit);
  const dwb = gpu.upload('dw', 'gradients', dwInit);
  const x = channelSlice(tensor(xb, [20, N, H, W]), 0, c.Cin);
  const y = channelSlice(tensor(yb, [11, N, Ho, Wo]), 4, c.Cout);
  const dy = channelSlice(tensor(dyb, [9, N, Ho, Wo]), 2, c.Cout);
  const dx = channelSlice(tensor(dxb, [20, N, H, W]), 3, c.Cin);
  const dw = tensor(dwb, s.w, 17);
  const xs = xSlab.subarray(0, count(s.x));
  const dys = dySlab.subarray(dy.offset, dy.offset + count(s.y));
  for (const tile of [undefined, CONV_TILES.tall]) {
    const what = `tile ${tileName(tile)}`;
    // Neighbours hold the sentinel, the slice NaN: the tile before this one must not satisfy the check.
    gpu.write(yb, outInit);
    gpu.write(yb, new Float32Array(count(s.y)).fill(NaN), y.offset);
    const yGot = await runAndRead(gpu, await conv2dForward(gpu, { x, w: tensor(wb, s.w), y, tile, ...c.params }), yb);
    const yExpected = Float64Array.from(outInit);
    yExpected.set(conv2dReference(xs, s.x, w, s.w, c.params), y.offset);
    assertClose(yGot, yExpected, tol, `forward into channels [4, 9) of 11, ${what}`);

    const dxRef = conv2dBackwardInputReference(dys, w, s.w, s.x, c.params);
    gpu.write(dxb, dxInit); // restore dx, with the slice written (=) poisoned
    gpu.write(dxb, new Float32Array(count(s.x)).fill(NaN), dx.offset);
    const dxWritten = await runAndRead(gpu, await conv2dBackwardInput(gpu, { dy, w: tensor(wb, s.w), dx, tile, ...c.params }), dxb);
    const dxWrittenExpected = Float64Array.from(dxInit);
    dxWrittenExpected.set(dxRef, dx.offset);
    assertClose(dxWritten, dxWrittenExpected, tol, `backward-input written (=) into channels [3, 16) of 20, ${what}`);

    gpu.write(dxb, dxInit);
    const dxGot = await runAndRead(gpu, await conv2dBackwardInput(gpu, { dy, w: tensor(wb, s.w), dx, accumulate: true, tile, ...c.params }), dxb);
    const dxExpected = Float64Array.from(dxInit);
    for (let i = 0; i < dxRef.length; i++) dxExpected[dx.offset + i] += dxRef[i];
    assertClose(dxGot, dxExpected, tol, `backward-input accumulated (+=) into channels [3, 16) of 20, ${what}`);
  }
  const dwGot = await runAndRead(gpu, await conv2dBackwardFilter(gpu, { x, dy, dw, ...c.params }), dwb);
  const dwExpected = Float64Array.from(dwInit);
  dwExpected.set(conv2dBackwardFilterReference(xs, s.x, dys, s.w, c.params), 17);
  assertClose(dwGot, dwExpected, tol, 'backward-filter written at element 17, neighbours untouched');
  free(gpu, xb, wb, dyb, yb, dxb, dwb);
});

test('dense-block case: x is a prefix and y a later slice of the same buffer (one binding), forward and naive', async () => {
  const gpu = await testGpu();
  const c = CASES[0];
  const s = shapes(c);
  const [, N, H, W] = s.x;
  const total = c.Cin + c.Cout + 2;
  const block = randomArray(total * N * H * W, 51);
  const w = randomArray(count(s.w), 52);
  const wb = gpu.upload('w', 'parameters', w);
  const expected = Float64Array.from(block);
  expected.set(conv2dReference(block.subarray(0, count(s.x)), s.x, w, s.w, c.params), (c.Cin + 1) * N * H * W);
  for (const run of [conv2dForward, conv2dNaiveForward]) {
    const bb = gpu.upload('block', 'activations', block);
    const blockRef = tensor(bb, [total, N, H, W]);
    const launches = await run(gpu, { x: channelSlice(blockRef, 0, c.Cin), w: tensor(wb, s.w), y: channelSlice(blockRef, c.Cin + 1, c.Cout), ...c.params });
    assertClose(await runAndRead(gpu, launches, bb), expected, tol, `${run.name}: layer output written after its input in one buffer`);
    gpu.arena.free(bb);
  }
  gpu.arena.free(wb);
});

test('input transform (fused BN→ReLU): forward, backward-filter and naive match transform-then-convolve; padding is zero after the transform', async () => {
  const gpu = await testGpu();
  for (const c of [CASES[0], CASES[3], CASES[5]]) {
    const s = shapes(c);
    const x = randomArray(count(s.x), 61);
    const w = randomArray(count(s.w), 62);
    const dy = randomArray(count(s.y), 63);
    const scale = randomArray(c.Cin, 64, 2);
    // Positive shifts, so relu(shift) > 0: a kernel that transformed the padding would be caught.
    const shift = randomArray(c.Cin, 65).map((v) => 0.5 + Math.abs(v));
    const xt = affineReluReference(x, s.x, scale, shift);
    const yRef = conv2dReference(xt, s.x, w, s.w, c.params);
    const dwRef = conv2dBackwardFilterReference(xt, s.x, dy, s.w, c.params);
    // What padding before the transform would give: the padded positions hold relu(shift), not 0.
    const { stride, padding: [ph, pw] = [0, 0] } = { stride: c.params.stride, padding: pairOf(c.params.padding) };
    const padded = zeroPad(x, s.x, ph, pw);
    const paddedShape = [c.Cin, c.N, c.H + 2 * ph, c.W + 2 * pw];
    const wrong = conv2dReference(affineReluReference(padded, paddedShape, scale, shift), paddedShape, w, s.w, { stride });
    assert.ok(wrong.some((v, i) => Math.abs(v - yRef[i]) > 0.01), 'the check can tell the padding conventions apart');
    const bufs = {
      x: gpu.upload('x', 'activations', x), w: gpu.upload('w', 'parameters', w), dy: gpu.upload('dy', 'gradients', dy),
      scale: gpu.upload('scale', 'parameters', scale), shift: gpu.upload('shift', 'parameters', shift),
      y: gpu.zeros('y', 'activations', count(s.y)), dw: gpu.zeros('dw', 'gradients', count(s.w)),
    };
    const inputTransform = { scale: tensor(bufs.scale, [c.Cin]), shift: tensor(bufs.shift, [c.Cin]) };
    const X = tensor(bufs.x, s.x);
    const W = tensor(bufs.w, s.w);
    for (const tile of [undefined, CONV_TILES.wide]) {
      const y = await runPoisoned(gpu, await conv2dForward(gpu, { x: X, w: W, y: tensor(bufs.y, s.y), inputTransform, tile, ...c.params }), bufs.y);
      assertClose(y, yRef, tol, `${c.name}: forward with transform, tile ${tileName(tile)}`);
    }
    const yNaive = await runPoisoned(gpu, await conv2dNaiveForward(gpu, { x: X, w: W, y: tensor(bufs.y, s.y), inputTransform, ...c.params }), bufs.y);
    assertClose(yNaive, yRef, tol, `${c.name}: naive forward with transform`);
    for (const tile of [undefined, CONV_TILES.single]) {
      const dw = await runPoisoned(gpu, await conv2dBackwardFilter(gpu, { x: X, dy: tensor(bufs.dy, s.y), dw: tensor(bufs.dw, s.w), inputTransform, tile, ...c.params }), bufs.dw);
      assertClose(dw, dwRef, tol, `${c.name}: backward-filter with transform, tile ${tileName(tile)}`);
    }
    free(gpu, ...Object.values(bufs));
  }
});

test('the naive oracle agrees with the fast path', async () => {
  const gpu = await testGpu();
  for (const [k, c] of CASES.entries()) {
    const s = shapes(c);
    const xb = gpu.upload('x', 'activations', randomArray(count(s.x), 70 + k));
    const wb = gpu.upload('w', 'parameters', randomArray(count(s.w), 80 + k));
    const fast = gpu.zeros('fast', 'activations', count(s.y));
    const naive = gpu.zeros('naive', 'activations', count(s.y));
    const args = { x: tensor(xb, s.x), w: tensor(wb, s.w), ...c.params };
    const yFast = await runPoisoned(gpu, await conv2dForward(gpu, { ...args, y: tensor(fast, s.y) }), fast);
    const yNaive = await runPoisoned(gpu, await conv2dNaiveForward(gpu, { ...args, y: tensor(naive, s.y) }), naive);
    assertClose(yFast, yNaive, tol, `${c.name}: fast vs naive`);
    free(gpu, xb, wb, fast, naive);
  }
});

test('the default tiles are the documented ones for the benchmark shapes and fit other shapes', () => {
  const x = [48, 16, 32, 32];
  const w = [12, 48, 3, 3];
  assert.equal(chooseConvTile('forward', x, w, { padding: 1 }), DEFAULT_CONV_TILE);
  assert.equal(chooseConvTile('backwardFilter', x, w, { padding: 1 }), DEFAULT_FILTER_TILE);
  // Backward-input of that conv: M = 48 input channels.
  assert.equal(chooseConvTile('backwardInput', x, w, { padding: 1 }), { ...DEFAULT_CONV_TILE, rows: 12 });
  // 1×1 stride 1: the plain GEMM over N·H·W pixels, 8 per thread; 48 output rows.
  assert.equal(chooseConvTile('forward', [120, 16, 32, 32], [48, 120, 1, 1]), { rows: 12, cols: 8, workgroupSize: 32, unroll: 1 });
  // 7×7 maps: a thread takes a whole row; 13 channels: 8-row tiles waste the fewest (3).
  assert.equal(chooseConvTile('forward', [13, 3, 7, 7], [13, 13, 3, 3], { padding: 1 }), { rows: 8, cols: 7, workgroupSize: 32, unroll: 1 });
  // Rows of 28 with at most 14 pixels per thread (8 rows × 14 ≤ 112 accumulators).
  assert.equal(chooseConvTile('forward', [128, 4, 28, 28], [32, 128, 3, 3], { padding: 1 }), { rows: 8, cols: 14, workgroupSize: 32, unroll: 1 });
  // Backward-filter 1×1 48 ← 120: 24 output channels × 4 input channels per thread.
  assert.equal(chooseConvTile('backwardFilter', [120, 16, 32, 32], [48, 120, 1, 1]), { rows: 24, cols: 4, workgroupSize: 8, unroll: 1 });
});

test('shape, slice and tile errors are thrown before anything is compiled or allocated', async () => {
  const gpu = await testGpu();
  const xb = gpu.zeros('x', 'activations', 13 * 3 * 49);
  const wb = gpu.zeros('w', 'parameters', 5 * 13 * 9);
  const yb = gpu.zeros('y', 'activations', 5 * 3 * 49);
  const w9b = gpu.zeros('w9', 'parameters', 13 * 81);
  const x = tensor(xb, [13, 3, 7, 7]);
  const w = tensor(wb, [5, 13, 3, 3]);
  const y = tensor(yb, [5, 3, 7, 7]);
  const pipelines = gpu.pipelines.pipelinesCreated;
  const buffers = gpu.arena.liveBuffers;
  const rejects = async (p: Promise<unknown>, message: string | RegExp) => {
    await p.then(() => assert.unreachable(`should throw ${message}`), (e: Error) => {
      assert.instance(e, ShapeError);
      assert.match(e.message, message);
    });
  };
  await rejects(conv2dForward(gpu, { x, w: tensor(wb, [5, 4, 3, 3]), y, padding: 1 }), 'conv2d: "w" has shape [5, 4, 3, 3], expected [?, 13, ?, ?]');
  await rejects(conv2dForward(gpu, { x, w, y: tensor(yb, [5, 3, 5, 5]), padding: 1 }), 'conv2d: "y" has shape [5, 3, 5, 5], expected [5, 3, 7, 7]');
  await rejects(conv2dForward(gpu, { x, w, y: { buffer: yb, offset: 10, shape: [5, 3, 7, 7] }, padding: 1 }), /conv2d: "y" \[5, 3, 7, 7\] at element 10 is outside its buffer "y"/);
  await rejects(conv2dNaiveForward(gpu, { x: { buffer: xb, offset: 1, shape: [13, 3, 7, 7] }, w, y, padding: 1 }), /conv2d.naive: "x" .* is outside its buffer/);
  await rejects(conv2dBackwardInput(gpu, { dy: tensor(yb, [5, 3, 5, 5]), w, dx: x, padding: 1 }), 'conv2d.backwardInput: "dy" has shape [5, 3, 5, 5], expected [5, 3, 7, 7]');
  await rejects(conv2dBackwardFilter(gpu, { x, dy: y, dw: tensor(wb, [5, 12, 3, 3]), padding: 1 }), 'conv2d.backwardFilter: "dw" has shape [5, 12, 3, 3], expected [?, 13, ?, ?]');
  await rejects(conv2dBackwardFilter(gpu, { x, dy: y, dw: w, padding: 1, tile: CONV_TILES.split }), /needs a workspace of 1755 elements/);
  await rejects(conv2dForward(gpu, { x, w, y, padding: 1, stride: 0 }), /stride \[0, 0\] must be whole numbers >= 1/);
  await rejects(conv2dForward(gpu, { x, w: tensor(w9b, [1, 13, 9, 9]), y, padding: 0 }), /does not fit "x"/);
  await rejects(conv2dForward(gpu, { x, w, y, padding: 1, tile: { rows: 0, cols: 4, workgroupSize: 32 } }), /tile .* is invalid/);
  await rejects(conv2dForward(gpu, { x, w, y: channelSlice(tensor(xb, [13, 3, 7, 7]), 2, 5), padding: 1 }), /conv2d: "y" \(elements \[.*\)\) and "x" \(elements \[.*\)\) overlap in buffer "x"/);
  await rejects(conv2dForward(gpu, { x, w, y, padding: 1, inputTransform: { scale: tensor(wb, [12]), shift: tensor(wb, [13]) } }),
    'conv2d: "inputTransform.scale" has shape [12], expected [13]');
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'no pipeline was compiled');
  assert.is(gpu.arena.liveBuffers, buffers, 'nothing was allocated');
  free(gpu, xb, wb, yb, w9b);
});

test.run();
