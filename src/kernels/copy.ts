// Copies (or adds) one tensor into another of the same size: the `naive` memory strategy's
// concatenation (each dense layer copies its input and new channels into a fresh buffer, as the
// Keras and TensorFlow DenseNets do) and its backward (gradient slices flow back to the inputs).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindTensor, expectShape, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export function copyReference(x: ArrayLike<number>, into: ArrayLike<number>, accumulate: boolean): Float64Array {
  return Float64Array.from(x, (v, i) => (accumulate ? into[i] + v : v));
}

export async function copyTensor(gpu: Gpu, t: { x: TensorRef; y: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  expectShape('copy', 'y', t.y, t.x.shape);
  const x = bindTensor(gpu.limits, 'copy', 'x', t.x);
  const y = bindTensor(gpu.limits, 'copy', 'y', t.y);
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile({
    name: 'copy', key: `acc=${accumulate}`, workgroupSize: [WORKGROUP],
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'xOffset', type: 'u32' }, { name: 'yOffset', type: 'u32' }],
    body: `@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i >= u.count) { return; }
  y[u.yOffset + i] = x[u.xOffset + i]${accumulate ? ' + y[u.yOffset + i]' : ''};
}`,
  });
  const count = sizeOf(t.x.shape);
  return [gpu.launch(program, { x: x.binding, y: y.binding }, { count, xOffset: x.offset, yOffset: y.offset }, Math.ceil(count / WORKGROUP))];
}
