// Fills a tensor with a constant (zeroing a gradient storage before partial contributions add up).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindTensor, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export async function fillLaunch(gpu: Gpu, target: TensorRef, value: number): Promise<Launch[]> {
  const t = bindTensor(gpu.limits, 'fill', 'target', target);
  const program = await gpu.compile({
    name: 'fill', key: '', workgroupSize: [WORKGROUP],
    bindings: [{ name: 'dst', access: 'read_write' }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'offset', type: 'u32' }, { name: 'value', type: 'f32' }],
    body: `@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i < u.count) { dst[u.offset + i] = u.value; }
}`,
  });
  const count = sizeOf(target.shape);
  return [gpu.launch(program, { dst: t.binding }, { count, offset: t.offset, value }, Math.ceil(count / WORKGROUP))];
}
