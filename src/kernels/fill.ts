// Fills a tensor with a constant (zeroing a gradient storage before partial contributions add up).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export async function fillLaunch(gpu: Gpu, target: TensorRef, value: number): Promise<Launch[]> {
  const b = bindOperands(gpu.limits, 'fill', { dst: { ref: target, written: true } });
  const program = await gpu.compile(b.program({
    name: 'fill', key: '', workgroupSize: [WORKGROUP], body: '',
    uniforms: [...uniformsU32('count'), ...offsetUniforms(['dst']), { name: 'value', type: 'f32' }],
    main: '  if (index < u.count) { dst[u.dstOffset + index] = u.value; }',
  }));
  const count = sizeOf(target.shape);
  return [gpu.launch(program, b.buffers, { count, ...b.offsets, value }, Math.ceil(count / WORKGROUP))];
}
