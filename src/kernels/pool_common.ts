// Shared by the pooling kernels (pool_*.ts): the rank-4 activation check and their workgroup size.

import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

export type Shape4 = readonly [number, number, number, number];

export const ELEMENTWISE_WORKGROUP = 256;

/** Checks that `ref` is a rank-4 channel-major activation [C, N, H, W] inside its buffer; returns its dims. */
export function activationDims(op: string, name: string, ref: TensorRef): Shape4 {
  if (ref.shape.length !== 4) throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)}, expected a channel-major [C, N, H, W] activation`);
  expectShape(op, name, ref, [-1, -1, -1, -1]);
  return ref.shape as unknown as Shape4;
}
