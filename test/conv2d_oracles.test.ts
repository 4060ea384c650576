// conv2d against independent oracles: TensorFlow.js's cpu backend (forward, and dx, dw through
// tf.grads), and finite differences of the CPU reference (its backward functions).

import { suite } from 'uvu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradient functions; esbuild bundles tfjs-core's own ESM
// gradient configs from this path and they register into the registry the Node bundle shares.
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import {
  conv2dBackwardFilter, conv2dBackwardFilterReference, conv2dBackwardInput, conv2dBackwardInputReference, conv2dForward,
  conv2dOutputSize, conv2dReference, type Conv2dParams,
} from '../src/kernels/conv2d.js';
import { tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, testGpu, type Tolerance } from './helpers.js';

const test = suite('conv2d oracles');
test.before(async () => { await tf.setBackend('cpu'); });
test.after(closeTestGpu);

/** Both sides accumulate ≤ 5·49 products of size ≤ 1 in float32 (orders differ): see conv2d.test.ts. */
const tfTol: Tolerance = { atol: 2e-4, rtol: 2e-4 };
/** Convolution is linear, so central differences are exact up to float64 rounding of O(10) values / 2e-5. */
const fdTol: Tolerance = { atol: 1e-7, rtol: 1e-7 };

interface Case { name: string; Cin: number; Cout: number; N: number; H: number; W: number; KH: number; KW: number; params: Conv2dParams }
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
const pairOf = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

/** [C, N, H, W] → [N, H, W, C]. */
function cnhwToNhwc(a: ArrayLike<number>, [C, N, H, W]: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
    out[((n * H + h) * W + w) * C + c] = a[((c * N + n) * H + h) * W + w];
  }
  return out;
}
/** [N, H, W, C] → [C, N, H, W]. */
function nhwcToCnhw(a: ArrayLike<number>, [C, N, H, W]: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
    out[((c * N + n) * H + h) * W + w] = a[((n * H + h) * W + w) * C + c];
  }
  return out;
}
/** OIHW ↔ HWIO. */
function oihwToHwio(a: ArrayLike<number>, [O, I, KH, KW]: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) {
    out[((h * KW + w) * I + i) * O + o] = a[((o * I + i) * KH + h) * KW + w];
  }
  return out;
}
function hwioToOihw(a: ArrayLike<number>, [O, I, KH, KW]: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) {
    out[((o * I + i) * KH + h) * KW + w] = a[((h * KW + w) * I + i) * O + o];
  }
  return out;
}

const TF_CASES: Case[] = [
  { name: '3×3 pad 1', Cin: 5, Cout: 4, N: 2, H: 6, W: 5, KH: 3, KW: 3, params: { padding: 1 } },
  { name: '3×3 stride 2 pad 1, odd/even sizes', Cin: 4, Cout: 3, N: 3, H: 7, W: 8, KH: 3, KW: 3, params: { stride: 2, padding: 1 } },
  { name: '7×7 stride 2 pad 3 (stem)', Cin: 3, Cout: 4, N: 2, H: 9, W: 10, KH: 7, KW: 7, params: { stride: 2, padding: 3 } },
  { name: '1×1', Cin: 6, Cout: 5, N: 2, H: 4, W: 3, KH: 1, KW: 1, params: {} },
];

test('forward, dx and dw match TensorFlow.js (cpu) conv2d and its gradients', async () => {
  const gpu = await testGpu();
  for (const [k, c] of TF_CASES.entries()) {
    const [Ho, Wo] = conv2dOutputSize(c.H, c.W, c.KH, c.KW, c.params);
    const xs = [c.Cin, c.N, c.H, c.W];
    const ws = [c.Cout, c.Cin, c.KH, c.KW];
    const ys = [c.Cout, c.N, Ho, Wo];
    const x = randomArray(count(xs), 100 + k);
    const w = randomArray(count(ws), 110 + k);
    const dy = randomArray(count(ys), 120 + k);

    const [sh, sw] = pairOf(c.params.stride, 1);
    const [ph, pw] = pairOf(c.params.padding, 0);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [ph, ph], [pw, pw], [0, 0]];
    const xT = tf.tensor4d(cnhwToNhwc(x, xs), [c.N, c.H, c.W, c.Cin]);
    const wT = tf.tensor4d(oihwToHwio(w, ws), [c.KH, c.KW, c.Cin, c.Cout]);
    const dyT = tf.tensor4d(cnhwToNhwc(dy, ys), [c.N, Ho, Wo, c.Cout]);
    const conv = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(a, b, [sh, sw], pad);
    const yTf = conv(xT, wT);
    const [dxTf, dwTf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), dyT)))([xT, wT]);
    const yExpected = nhwcToCnhw(await yTf.data(), ys);
    const dxExpected = nhwcToCnhw(await dxTf.data(), xs);
    const dwExpected = hwioToOihw(await dwTf.data(), ws);
    tf.dispose([xT, wT, dyT, yTf, dxTf, dwTf]);

    const bufs = {
      x: gpu.upload('x', 'activations', x), w: gpu.upload('w', 'parameters', w), dy: gpu.upload('dy', 'gradients', dy),
      y: gpu.zeros('y', 'activations', count(ys)), dx: gpu.zeros('dx', 'gradients', count(xs)), dw: gpu.zeros('dw', 'gradients', count(ws)),
    };
    const X = tensor(bufs.x, xs);
    const W = tensor(bufs.w, ws);
    const DY = tensor(bufs.dy, ys);
    const launches = [
      ...await conv2dForward(gpu, { x: X, w: W, y: tensor(bufs.y, ys), ...c.params }),
      ...await conv2dBackwardInput(gpu, { dy: DY, w: W, dx: tensor(bufs.dx, xs), ...c.params }),
      ...await conv2dBackwardFilter(gpu, { x: X, dy: DY, dw: tensor(bufs.dw, ws), ...c.params }),
    ];
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    assertClose(await gpu.read(bufs.y), yExpected, tfTol, `${c.name}: forward vs tf.conv2d`);
    assertClose(await gpu.read(bufs.dx), dxExpected, tfTol, `${c.name}: dx vs tf.grads`);
    assertClose(await gpu.read(bufs.dw), dwExpected, tfTol, `${c.name}: dw vs tf.grads`);
    for (const b of Object.values(bufs)) gpu.arena.free(b);
  }
});

test('the reference backward-input and backward-filter match finite differences', () => {
  const cases: Case[] = [
    { name: '3×3 stride 2 pad 1', Cin: 2, Cout: 3, N: 2, H: 5, W: 4, KH: 3, KW: 3, params: { stride: 2, padding: 1 } },
    { name: '2×3 kernel stride [1, 2] pad [1, 0]', Cin: 3, Cout: 2, N: 1, H: 4, W: 7, KH: 2, KW: 3, params: { stride: [1, 2], padding: [1, 0] } },
  ];
  for (const [k, c] of cases.entries()) {
    const [Ho, Wo] = conv2dOutputSize(c.H, c.W, c.KH, c.KW, c.params);
    const xs = [c.Cin, c.N, c.H, c.W];
    const ws = [c.Cout, c.Cin, c.KH, c.KW];
    const x = randomArray(count(xs), 200 + k);
    const w = randomArray(count(ws), 210 + k);
    const r = randomArray(c.Cout * c.N * Ho * Wo, 220 + k); // loss = Σ y·r, so dy = r
    const dxNumeric = finiteDifference((v) => dot(conv2dReference(v, xs, w, ws, c.params), r), x);
    assertClose(conv2dBackwardInputReference(r, w, ws, xs, c.params), dxNumeric, fdTol, `${c.name}: dx`);
    const dwNumeric = finiteDifference((v) => dot(conv2dReference(x, xs, v, ws, c.params), r), w);
    assertClose(conv2dBackwardFilterReference(x, xs, r, ws, c.params), dwNumeric, fdTol, `${c.name}: dw`);
  }
});

test.run();
