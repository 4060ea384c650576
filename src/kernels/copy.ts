// Copies (or adds) one tensor into another of the same size: the `naive` memory strategy's
// concatenation (each dense layer copies its input and new channels into a fresh buffer, as the
// Keras and TensorFlow DenseNets do) and its backward (gradient slices flow back to the inputs).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { expectShape, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export async function copyTensor(gpu: Gpu, t: { x: TensorRef; y: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  expectShape('copy', 'y', t.y, t.x.shape);
  const b = bindOperands(gpu.limits, 'copy', { x: { ref: t.x }, y: { ref: t.y, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile(b.program({
    name: 'copy', key: `acc=${accumulate}`, workgroupSize: [WORKGROUP], body: '',
    uniforms: [...uniformsU32('count'), ...offsetUniforms(['x', 'y'])],
    main: `
  if (index >= u.count) { return; }
  y[u.yOffset + index] = x[u.xOffset + index]${accumulate ? ' + y[u.yOffset + index]' : ''};`,
  }));
  const count = sizeOf(t.x.shape);
  return [gpu.launch(program, b.buffers, { count, ...b.offsets }, Math.ceil(count / WORKGROUP))];
}
