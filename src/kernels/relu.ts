// ReLU forward and backward, elementwise over any tensor (the backward masks by the forward input).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { expectShape, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export function reluReference(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => (v > 0 ? v : 0));
}

export function reluBackwardReference(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => (v > 0 ? dy[i] : 0));
}

const forwardMain = /* wgsl */ `
  if (index >= u.count) { return; }
  y[u.yOffset + index] = max(x[u.xOffset + index], 0.0);`;

const backwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  var g = select(0.0, dy[u.dyOffset + i], x[u.xOffset + i] > 0.0);
  if (ACCUMULATE) { g += dx[u.dxOffset + i]; }
  dx[u.dxOffset + i] = g;`;

export async function reluForward(gpu: Gpu, t: { x: TensorRef; y: TensorRef }): Promise<Launch> {
  expectShape('relu', 'y', t.y, t.x.shape);
  const b = bindOperands(gpu.limits, 'relu', { x: { ref: t.x }, y: { ref: t.y, written: true } });
  const program = await gpu.compile(b.program({
    name: 'relu.forward', key: '', workgroupSize: [WORKGROUP], body: '', main: forwardMain,
    uniforms: [...uniformsU32('count'), ...offsetUniforms(['x', 'y'])],
  }));
  const count = sizeOf(t.x.shape);
  return gpu.launch(program, b.buffers, { count, ...b.offsets }, Math.ceil(count / WORKGROUP));
}

export async function reluBackward(gpu: Gpu, t: { x: TensorRef; dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch> {
  expectShape('relu.backward', 'dy', t.dy, t.x.shape);
  expectShape('relu.backward', 'dx', t.dx, t.x.shape);
  const b = bindOperands(gpu.limits, 'relu.backward', { x: { ref: t.x }, dy: { ref: t.dy }, dx: { ref: t.dx, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile(b.program({
    name: 'relu.backward', key: `acc=${accumulate}`, workgroupSize: [WORKGROUP],
    body: `const ACCUMULATE = ${accumulate};`, main: backwardMain,
    uniforms: [...uniformsU32('count'), ...offsetUniforms(['x', 'dy', 'dx'])],
  }));
  const count = sizeOf(t.x.shape);
  return gpu.launch(program, b.buffers, { count, ...b.offsets }, Math.ceil(count / WORKGROUP));
}
