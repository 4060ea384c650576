// The classifier: logits y [N, Cout] = xᵀ·Wᵀ + b, reading x [Cin, N] channel-major straight from
// the global pool, W [Cout, Cin] in PyTorch's layout, and writing logits row-major per sample,
// as softmax_cross_entropy.ts reads them. Backward: dx [Cin, N] (activation gradient, `accumulate`
// adds), dW [Cout, Cin] and db [Cout] (parameter gradients, always written).
// Sizes here are small (Cin ≤ ~2k, Cout ≤ 1000, N ≤ 256), so one invocation per output element
// with a serial dot product is enough; no tiling.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

const WG = 256;

export interface LinearDims { cin: number; n: number; cout: number }

export function linearReference(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, d: LinearDims): Float64Array {
  const y = new Float64Array(d.n * d.cout);
  for (let n = 0; n < d.n; n++) {
    for (let o = 0; o < d.cout; o++) {
      let s = 0;
      for (let i = 0; i < d.cin; i++) s += weight[o * d.cin + i] * x[i * d.n + n];
      y[n * d.cout + o] = s + bias[o];
    }
  }
  return y;
}

export function linearBackwardReference(x: ArrayLike<number>, weight: ArrayLike<number>, dy: ArrayLike<number>, d: LinearDims):
  { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const dx = new Float64Array(d.cin * d.n);
  const dweight = new Float64Array(d.cout * d.cin);
  const dbias = new Float64Array(d.cout);
  for (let n = 0; n < d.n; n++) {
    for (let o = 0; o < d.cout; o++) {
      const g = dy[n * d.cout + o];
      dbias[o] += g;
      for (let i = 0; i < d.cin; i++) {
        dx[i * d.n + n] += weight[o * d.cin + i] * g;
        dweight[o * d.cin + i] += g * x[i * d.n + n];
      }
    }
  }
  return { dx, dweight, dbias };
}

// Invocation i = n·Cout + o, so consecutive invocations write consecutive logits of a sample.
const forwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.n * u.cout) { return; }
  let o = i % u.cout;
  let n = i / u.cout;
  let wRow = u.weightOffset + o * u.cin;
  var s = 0.0;
  for (var k = 0u; k < u.cin; k++) { s += weight[wRow + k] * x[u.xOffset + k * u.n + n]; }
  y[u.yOffset + i] = s + bias[u.biasOffset + o];`;

// dx[k, n] = Σ_o W[o, k]·dy[n, o]; invocation i = k·N + n.
const inputGradMain = /* wgsl */ `
  let i = index;
  if (i >= u.cin * u.n) { return; }
  let n = i % u.n;
  let k = i / u.n;
  var g = 0.0;
  for (var o = 0u; o < u.cout; o++) { g += weight[u.weightOffset + o * u.cin + k] * dy[u.dyOffset + n * u.cout + o]; }
  if (ACCUMULATE) { g += dx[u.dxOffset + i]; }
  dx[u.dxOffset + i] = g;`;

// Invocations [0, Cout·Cin): dW[o, k] = Σ_n dy[n, o]·x[k, n]; the next Cout: db[o] = Σ_n dy[n, o].
const paramGradMain = /* wgsl */ `
  let i = index;
  let weights = u.cout * u.cin;
  if (i < weights) {
    let k = i % u.cin;
    let o = i / u.cin;
    var g = 0.0;
    for (var n = 0u; n < u.n; n++) { g += dy[u.dyOffset + n * u.cout + o] * x[u.xOffset + k * u.n + n]; }
    dweight[u.dweightOffset + i] = g;
  } else if (i < weights + u.cout) {
    let o = i - weights;
    var g = 0.0;
    for (var n = 0u; n < u.n; n++) { g += dy[u.dyOffset + n * u.cout + o]; }
    dbias[u.dbiasOffset + o] = g;
  }`;

function inputDims(op: string, x: TensorRef, weight: TensorRef): LinearDims {
  if (x.shape.length !== 2) throw new ShapeError(`${op}: "x" has shape ${fmt(x.shape)}, expected [Cin, N] (channel-major, from the global pool)`);
  const [cin, n] = x.shape;
  if (weight.shape.length !== 2 || weight.shape[1] !== cin) {
    throw new ShapeError(`${op}: "weight" has shape ${fmt(weight.shape)}, expected [Cout, ${cin}] for x ${fmt(x.shape)}`);
  }
  expectShape(op, 'x', x, [cin, n]);
  expectShape(op, 'weight', weight, [-1, cin]);
  return { cin, n, cout: weight.shape[0] };
}

export async function linearForward(gpu: Gpu, t: { x: TensorRef; weight: TensorRef; bias: TensorRef; y: TensorRef }): Promise<Launch[]> {
  const op = 'linear';
  const d = inputDims(op, t.x, t.weight);
  expectShape(op, 'bias', t.bias, [d.cout]);
  expectShape(op, 'y', t.y, [d.n, d.cout]);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, weight: { ref: t.weight }, bias: { ref: t.bias }, y: { ref: t.y, written: true } });
  const program = await gpu.compile(b.program({
    name: 'linear.forward', key: '', workgroupSize: [WG], body: '', main: forwardMain,
    uniforms: [...uniformsU32('cin', 'n', 'cout'), ...offsetUniforms(['x', 'weight', 'bias', 'y'])],
  }));
  return [gpu.launch(program, b.buffers, { ...d, ...b.offsets }, Math.ceil((d.n * d.cout) / WG))];
}

export async function linearBackward(gpu: Gpu, t: {
  x: TensorRef; weight: TensorRef; dy: TensorRef; dx?: TensorRef; dweight: TensorRef; dbias: TensorRef; accumulate?: boolean;
}): Promise<Launch[]> {
  const op = 'linear.backward';
  const d = inputDims(op, t.x, t.weight);
  expectShape(op, 'dy', t.dy, [d.n, d.cout]);
  if (t.dx) expectShape(op, 'dx', t.dx, [d.cin, d.n]);
  expectShape(op, 'dweight', t.dweight, [d.cout, d.cin]);
  expectShape(op, 'dbias', t.dbias, [d.cout]);
  // Check every binding before compiling anything, so a bad call records nothing.
  const inputGrad = t.dx ? bindOperands(gpu.limits, op, { weight: { ref: t.weight }, dy: { ref: t.dy }, dx: { ref: t.dx, written: true } }) : undefined;
  const params = bindOperands(gpu.limits, op, {
    x: { ref: t.x }, dy: { ref: t.dy }, dweight: { ref: t.dweight, written: true }, dbias: { ref: t.dbias, written: true },
  });
  const accumulate = t.accumulate ?? false;
  const inputProgram = inputGrad && await gpu.compile(inputGrad.program({
    name: 'linear.backwardInput', key: `acc=${accumulate}`, workgroupSize: [WG],
    body: `const ACCUMULATE = ${accumulate};`, main: inputGradMain,
    uniforms: [...uniformsU32('cin', 'n', 'cout'), ...offsetUniforms(['weight', 'dy', 'dx'])],
  }));
  const paramProgram = await gpu.compile(params.program({
    name: 'linear.backwardParams', key: '', workgroupSize: [WG], body: '', main: paramGradMain,
    uniforms: [...uniformsU32('cin', 'n', 'cout'), ...offsetUniforms(['x', 'dy', 'dweight', 'dbias'])],
  }));
  const launches: Launch[] = [];
  if (inputGrad && inputProgram) {
    launches.push(gpu.launch(inputProgram, inputGrad.buffers, { ...d, ...inputGrad.offsets }, Math.ceil((d.cin * d.n) / WG)));
  }
  launches.push(gpu.launch(paramProgram, params.buffers, { ...d, ...params.offsets }, Math.ceil((d.cout * d.cin + d.cout) / WG)));
  return launches;
}
