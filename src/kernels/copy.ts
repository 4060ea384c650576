// Copies (or adds) one tensor into another of the same size: the `naive` memory strategy's
// concatenation (each dense layer copies its input and new channels into a fresh buffer, as the
// Keras and TensorFlow DenseNets do) and its backward (gradient slices flow back to the inputs).
// Tensors larger than one storage binding are copied in flat chunks (optimizer_flat.ts).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { flatLaunches } from './optimizer_flat.js';
import { expectShape, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

export async function copyTensor(gpu: Gpu, t: { x: TensorRef; y: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  expectShape('copy', 'y', t.y, t.x.shape);
  expectShape('copy', 'x', t.x, t.x.shape);
  const accumulate = t.accumulate ?? false;
  return flatLaunches(gpu, 'copy', { x: { ref: t.x }, y: { ref: t.y, written: true } }, sizeOf(t.x.shape), {
    workgroupSize: WORKGROUP,
    program: {
      name: 'copy', key: `acc=${accumulate}`, body: '', uniforms: [],
      main: `
  if (index >= u.count) { return; }
  y[u.yOffset + index] = x[u.xOffset + index]${accumulate ? ' + y[u.yOffset + index]' : ''};`,
    },
    uniforms: () => ({}),
  });
}
