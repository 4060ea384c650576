// Fills a tensor with a constant (zeroing a gradient storage before partial contributions add up).
// A tensor larger than one storage binding (a deep block's gradient buffer) is filled in flat
// chunks (optimizer_flat.ts); one that fits is one launch, as it always was.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { flatLaunches } from './optimizer_flat.js';
import { sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export async function fillLaunch(gpu: Gpu, target: TensorRef, value: number): Promise<Launch[]> {
  return flatLaunches(gpu, 'fill', { dst: { ref: target, written: true } }, sizeOf(target.shape), {
    workgroupSize: WORKGROUP,
    program: { name: 'fill', key: '', body: '', uniforms: [{ name: 'value', type: 'f32' }], main: '  if (index < u.count) { dst[u.dstOffset + index] = u.value; }' },
    uniforms: () => ({ value }),
  });
}
