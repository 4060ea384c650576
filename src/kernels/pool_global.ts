// Global average pooling before the classifier: channel-major [C, N, H, W] → [C, N] (each
// output is the mean of one contiguous H·W plane), which linear.ts reads as x [Cin, N].

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { activationDims, ELEMENTWISE_WORKGROUP as WG, type Shape4 } from './pool_common.js';
import { parallelPoolForward, type ParallelPoolOptions } from './pool_global_parallel.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

/** 'thread-per-plane' (default; fastest on lavapipe) or 'parallel' (several lanes per plane, for GPUs: pool_global_parallel.ts). */
export type GlobalPoolVariant = 'thread-per-plane' | 'parallel';

export function globalAvgPoolReference(x: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const hw = H * W;
  const y = new Float64Array(C * N);
  for (let p = 0; p < C * N; p++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += x[p * hw + j];
    y[p] = s / hw;
  }
  return y;
}

/** dx [C, N, H, W] of the input `shape` from dy [C, N]. */
export function globalAvgPoolBackwardReference(dy: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const hw = H * W;
  const dx = new Float64Array(C * N * hw);
  for (let i = 0; i < dx.length; i++) dx[i] = dy[Math.floor(i / hw)] / hw;
  return dx;
}

// One invocation per (c, n) plane: planes are small at the end of a DenseNet (7×7, 8×8), so a
// serial sum beats a workgroup reduction with barriers (costly on lavapipe).
const forwardMain = /* wgsl */ `
  let p = index;
  if (p >= u.planes) { return; }
  let b = u.xOffset + p * u.hw;
  var s = 0.0;
  for (var j = 0u; j < u.hw; j++) { s += x[b + j]; }
  y[u.yOffset + p] = s / f32(u.hw);`;

const backwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  var g = dy[u.dyOffset + i / u.hw] / f32(u.hw);
  if (ACCUMULATE) { g += dx[u.dxOffset + i]; }
  dx[u.dxOffset + i] = g;`;

function inputDims(op: string, name: string, ref: TensorRef): Shape4 {
  const dims = activationDims(op, name, ref);
  if (dims[2] * dims[3] === 0) throw new ShapeError(`${op}: "${name}" ${fmt(dims)} has an empty image`);
  return dims;
}

export async function globalAvgPoolForward(gpu: Gpu, t: { x: TensorRef; y: TensorRef; variant?: GlobalPoolVariant } & ParallelPoolOptions): Promise<Launch[]> {
  const op = 'globalAvgPool';
  const [C, N, H, W] = inputDims(op, 'x', t.x);
  expectShape(op, 'y', t.y, [C, N]);
  const variant = t.variant ?? 'thread-per-plane';
  if (variant !== 'thread-per-plane' && variant !== 'parallel') throw new ShapeError(`${op}: variant "${String(variant)}" is not one of thread-per-plane, parallel`);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, y: { ref: t.y, written: true } });
  if (variant === 'parallel') return parallelPoolForward(gpu, op, b, C * N, H * W, t);
  const program = await gpu.compile(b.program({
    name: 'globalAvgPool.forward', key: '', workgroupSize: [WG], body: '', main: forwardMain,
    uniforms: [...uniformsU32('planes', 'hw'), ...offsetUniforms(['x', 'y'])],
  }));
  return [gpu.launch(program, b.buffers, { planes: C * N, hw: H * W, ...b.offsets }, Math.ceil((C * N) / WG))];
}

export async function globalAvgPoolBackward(gpu: Gpu, t: { dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  const op = 'globalAvgPool.backward';
  const [C, N, H, W] = inputDims(op, 'dx', t.dx);
  expectShape(op, 'dy', t.dy, [C, N]);
  const b = bindOperands(gpu.limits, op, { dy: { ref: t.dy }, dx: { ref: t.dx, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile(b.program({
    name: 'globalAvgPool.backward', key: `acc=${accumulate}`, workgroupSize: [WG],
    body: `const ACCUMULATE = ${accumulate};`, main: backwardMain,
    uniforms: [...uniformsU32('count', 'hw'), ...offsetUniforms(['dy', 'dx'])],
  }));
  const count = C * N * H * W;
  return [gpu.launch(program, b.buffers, { count, hw: H * W, ...b.offsets }, Math.ceil(count / WG))];
}
