// ReLU forward and backward, elementwise over any tensor (the backward masks by the forward input).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindTensor, expectShape, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export function reluReference(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => (v > 0 ? v : 0));
}

export function reluBackwardReference(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => (v > 0 ? dy[i] : 0));
}

const forwardBody = /* wgsl */ `
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i >= u.count) { return; }
  y[u.yOffset + i] = max(x[u.xOffset + i], 0.0);
}`;

const backwardBody = /* wgsl */ `
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i >= u.count) { return; }
  var g = select(0.0, dy[u.dyOffset + i], x[u.xOffset + i] > 0.0);
  if (ACCUMULATE) { g += dx[u.dxOffset + i]; }
  dx[u.dxOffset + i] = g;
}`;

export async function reluForward(gpu: Gpu, t: { x: TensorRef; y: TensorRef }): Promise<Launch> {
  expectShape('relu', 'y', t.y, t.x.shape);
  const x = bindTensor(gpu.limits, 'relu', 'x', t.x);
  const y = bindTensor(gpu.limits, 'relu', 'y', t.y);
  const program = await gpu.compile({
    name: 'relu.forward', key: '', workgroupSize: [WORKGROUP], body: forwardBody,
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'xOffset', type: 'u32' }, { name: 'yOffset', type: 'u32' }],
  });
  const count = sizeOf(t.x.shape);
  return gpu.launch(program, { x: x.binding, y: y.binding }, { count, xOffset: x.offset, yOffset: y.offset }, Math.ceil(count / WORKGROUP));
}

export async function reluBackward(gpu: Gpu, t: { x: TensorRef; dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch> {
  expectShape('relu.backward', 'dy', t.dy, t.x.shape);
  expectShape('relu.backward', 'dx', t.dx, t.x.shape);
  const x = bindTensor(gpu.limits, 'relu.backward', 'x', t.x);
  const dy = bindTensor(gpu.limits, 'relu.backward', 'dy', t.dy);
  const dx = bindTensor(gpu.limits, 'relu.backward', 'dx', t.dx);
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile({
    name: 'relu.backward', key: `acc=${accumulate}`, workgroupSize: [WORKGROUP],
    body: `const ACCUMULATE = ${accumulate};\n${backwardBody}`,
    bindings: [{ name: 'x', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dx', access: 'read_write' }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'xOffset', type: 'u32' }, { name: 'dyOffset', type: 'u32' }, { name: 'dxOffset', type: 'u32' }],
  });
  const count = sizeOf(t.x.shape);
  return gpu.launch(program, { x: x.binding, dy: dy.binding, dx: dx.binding },
    { count, xOffset: x.offset, dyOffset: dy.offset, dxOffset: dx.offset }, Math.ceil(count / WORKGROUP));
}
