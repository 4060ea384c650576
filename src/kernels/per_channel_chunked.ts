// Batch norm and the pools over operands larger than one storage binding: each treats every channel
// on its own, so it runs once per channel range (chunks.ts), every operand cut to the same channels.
// Where all fits, each function is the kernel's own call, unchanged.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { batchNormBackward, batchNormForward, batchNormStatistics, BATCHNORM_WORKGROUP_SIZE } from './batchnorm.js';
import { splitGeometry } from './batchnorm_split.js';
import type { Operand } from './binding.js';
import { perChannelChunks } from './chunks.js';
import { avgPool2x2Backward, avgPool2x2Forward } from './pool_average.js';
import { globalAvgPoolBackward, globalAvgPoolForward } from './pool_global.js';
import { maxPool3x3Backward, maxPool3x3Forward } from './pool_max.js';
import { sizeOf, type TensorRef } from './tensor.js';

const read = (ref: TensorRef): Operand => ({ ref });
const written = (ref: TensorRef): Operand => ({ ref, written: true });

type StatisticsArgs = Parameters<typeof batchNormStatistics>[1];
type ForwardArgs = Parameters<typeof batchNormForward>[1];
type BackwardArgs = Parameters<typeof batchNormBackward>[1];

/**
 * The split-reduction variant's chunking of N·H·W for the whole x: every channel chunk reduces its
 * channels exactly as the whole would (same partial sums), and its partials fit the workspace
 * sized for the whole.
 */
function sameSplit(t: StatisticsArgs | BackwardArgs): { splitChunk?: number } {
  if (t.variant !== 'split-reduction' || t.splitChunk !== undefined) return {};
  const [C, ...rest] = t.x.shape;
  return { splitChunk: splitGeometry(C, sizeOf(rest), t.workgroupSize ?? BATCHNORM_WORKGROUP_SIZE).chunkLength };
}

export function batchNormStatisticsChunked(gpu: Gpu, t: StatisticsArgs): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'batchNorm.statistics', { x: read(t.x), mean: written(t.mean), variance: written(t.variance) },
    (p, r) => batchNormStatistics(gpu, r.start === 0 && r.count === t.x.shape[0] ? t : { ...t, ...p, ...sameSplit(t) }));
}

export function batchNormForwardChunked(gpu: Gpu, t: ForwardArgs): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'batchNorm.forward', {
    x: read(t.x), mean: read(t.mean), variance: read(t.variance), gamma: read(t.gamma), beta: read(t.beta), y: written(t.y),
  }, (p) => batchNormForward(gpu, { ...t, ...p }));
}

export function batchNormBackwardChunked(gpu: Gpu, t: BackwardArgs): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'batchNorm.backward', {
    x: read(t.x), dy: read(t.dy), mean: read(t.mean), variance: read(t.variance), gamma: read(t.gamma), beta: read(t.beta),
    dx: written(t.dx), dgamma: written(t.dgamma), dbeta: written(t.dbeta),
  }, (p, r) => batchNormBackward(gpu, r.start === 0 && r.count === t.x.shape[0] ? t : { ...t, ...p, ...sameSplit(t) }));
}

type AvgForwardArgs = Parameters<typeof avgPool2x2Forward>[1];
type AvgBackwardArgs = Parameters<typeof avgPool2x2Backward>[1];

export function avgPool2x2ForwardChunked(gpu: Gpu, t: AvgForwardArgs): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'avgPool2x2', { x: read(t.x), y: written(t.y) }, (p) => avgPool2x2Forward(gpu, { ...t, ...p }));
}

export function avgPool2x2BackwardChunked(gpu: Gpu, t: AvgBackwardArgs): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'avgPool2x2.backward', { dy: read(t.dy), dx: written(t.dx) }, (p) => avgPool2x2Backward(gpu, { ...t, ...p }));
}

export function maxPool3x3ForwardChunked(gpu: Gpu, t: { x: TensorRef; y: TensorRef }): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'maxPool3x3', { x: read(t.x), y: written(t.y) }, (p) => maxPool3x3Forward(gpu, p));
}

export function maxPool3x3BackwardChunked(gpu: Gpu, t: { x: TensorRef; dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'maxPool3x3.backward', { x: read(t.x), dy: read(t.dy), dx: written(t.dx) },
    (p) => maxPool3x3Backward(gpu, { ...t, ...p }));
}

export function globalAvgPoolForwardChunked(gpu: Gpu, t: Parameters<typeof globalAvgPoolForward>[1]): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'globalAvgPool', { x: read(t.x), y: written(t.y) }, (p) => globalAvgPoolForward(gpu, { ...t, ...p }));
}

export function globalAvgPoolBackwardChunked(gpu: Gpu, t: { dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  return perChannelChunks(gpu.limits, 'globalAvgPool.backward', { dy: read(t.dy), dx: written(t.dx) },
    (p) => globalAvgPoolBackward(gpu, { ...t, ...p }));
}
