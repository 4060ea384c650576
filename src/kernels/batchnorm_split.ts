// Launch code of the split-reduction variant of batch-norm statistics and backward (the GPU-class
// variant, issue 9): a grid of channel × chunk workgroups writes partials to a caller-owned
// workspace, and a per-channel pass combines them. batchnorm.ts checks shapes and calls here.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import {
  splitBackwardCombineDecls, splitBackwardCombineMain, splitBackwardPartialDecls, splitBackwardPartialMain,
  splitStatisticsCombineDecls, splitStatisticsCombineMain, splitStatisticsPartialDecls, splitStatisticsPartialMain,
} from './batchnorm_split_wgsl.js';
import { bindOperands, offsetUniforms } from './binding.js';
import { expectShape, fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

/** How a per-channel reduction (statistics, backward's Σdy', Σdy'x̂) is spread over workgroups. */
export type BatchNormVariant = 'workgroup-per-channel' | 'split-reduction';
export const BATCHNORM_VARIANTS: readonly BatchNormVariant[] = ['workgroup-per-channel', 'split-reduction'];

/**
 * Workgroups the split variant aims for across all channels: several per multiprocessor of a large
 * GPU (an H100 has 132), so that a dense layer's 12 new channels still fill it.
 */
export const SPLIT_TARGET_WORKGROUPS = 1024;
/** Fewest values per invocation of a chunk (by default), so that a workgroup's fixed cost stays small against its loads. */
const MIN_VALUES_PER_INVOCATION = 4;

export interface SplitOptions {
  /**
   * Reduce within subgroups (subgroupAdd) instead of a barrier tree. Default: wherever the device
   * has the `subgroups` feature; true on a device without it is refused.
   */
  subgroups?: boolean;
  /** Values per chunk (default: chosen so that C × chunks ≈ SPLIT_TARGET_WORKGROUPS, at least 4 per invocation). Tests pick awkward ones. */
  splitChunk?: number;
}

/** Values per chunk and chunks per channel for M values per channel. */
export function splitGeometry(channels: number, count: number, workgroupSize: number, splitChunk?: number): { chunkLength: number; chunks: number } {
  let chunkLength: number;
  if (splitChunk !== undefined) {
    if (!Number.isInteger(splitChunk) || splitChunk < 1) throw new RangeError(`batchNorm: splitChunk must be a whole number >= 1, got ${splitChunk}`);
    chunkLength = Math.min(splitChunk, Math.max(1, count));
  } else {
    const perChannel = Math.max(1, Math.min(Math.ceil(count / (workgroupSize * MIN_VALUES_PER_INVOCATION)), Math.ceil(SPLIT_TARGET_WORKGROUPS / Math.max(1, channels))));
    chunkLength = Math.max(1, Math.ceil(count / perChannel));
  }
  return { chunkLength, chunks: Math.max(1, Math.ceil(count / chunkLength)) };
}

/**
 * Elements of workspace the split variant needs for x of shape [C, N, H, W]: two partials per
 * (channel, chunk). The caller owns it (e.g. a 'workspace' arena buffer allocated once and freed
 * when the step's launches are destroyed); statistics and backward may share one, since each
 * launch pair is done with it before the next pair starts.
 */
export function batchNormSplitWorkspaceElements(xShape: readonly number[], options: SplitOptions & { workgroupSize?: number } = {}): number {
  const C = xShape[0];
  const M = sizeOf(xShape.slice(1));
  return 2 * C * splitGeometry(C, M, options.workgroupSize ?? 64, options.splitChunk).chunks;
}

/** A checked split: its geometry and the workspace cut to exactly the partials' size. */
export interface SplitPlan { chunkLength: number; chunks: number; workspace: TensorRef; subgroups: boolean }

/** Checks the split's options and workspace before anything is compiled or recorded. */
export function planSplit(gpu: Gpu, op: string, C: number, M: number, wg: number, t: { workspace?: TensorRef } & SplitOptions): SplitPlan {
  const { chunkLength, chunks } = splitGeometry(C, M, wg, t.splitChunk);
  const has = gpu.device.features.has('subgroups');
  if (t.subgroups && !has) throw new RangeError(`${op}: subgroups were asked for but the device has no 'subgroups' feature; leave the option out`);
  return { chunkLength, chunks, workspace: checkWorkspace(op, t.workspace, 2 * C * chunks), subgroups: t.subgroups ?? has };
}

/** The program fields that differ with subgroups: the `enable` directive and the cache key. */
function subgroupFields(plan: SplitPlan): { enables: string[]; flag: string } {
  return plan.subgroups ? { enables: ['subgroups'], flag: ',subgroups' } : { enables: [], flag: '' };
}

function checkWorkspace(op: string, workspace: TensorRef | undefined, needed: number): TensorRef {
  if (!workspace) throw new ShapeError(`${op}: the split-reduction variant needs a workspace of ${needed} elements (batchNormSplitWorkspaceElements)`);
  if (workspace.shape.length !== 1 || workspace.shape[0] < needed) {
    throw new ShapeError(`${op}: "workspace" has shape ${fmt(workspace.shape)}, expected at least [${needed}]`);
  }
  expectShape(op, 'workspace', workspace, [-1]);
  return { buffer: workspace.buffer, offset: workspace.offset, shape: [needed] };
}

interface Checked { C: number; M: number; wg: number; plan: SplitPlan }

/** Statistics as two launches: per-chunk mean and M2, then Chan's merge per channel into mean and biased variance. */
export async function splitStatistics(gpu: Gpu, op: string, t: Checked & { x: TensorRef; mean: TensorRef; variance: TensorRef }): Promise<Launch[]> {
  const { C, M, wg } = t;
  const { chunkLength, chunks, workspace } = t.plan;
  const { enables, flag } = subgroupFields(t.plan);
  const partial = bindOperands(gpu.limits, op, { x: { ref: t.x }, workspace: { ref: workspace, written: true } });
  const combine = bindOperands(gpu.limits, op, {
    x: { ref: t.x }, workspace: { ref: workspace }, mean: { ref: t.mean, written: true }, variance: { ref: t.variance, written: true },
  });
  const geometry = [{ name: 'channels', type: 'u32' as const }, { name: 'count', type: 'u32' as const }, { name: 'chunks', type: 'u32' as const }, { name: 'chunkLength', type: 'u32' as const }];
  const [partialProgram, combineProgram] = await Promise.all([
    gpu.compile(partial.program({
      name: `${op}.splitPartial`, key: `wg=${wg}${flag}`, workgroupSize: [wg], enables, body: splitStatisticsPartialDecls(t.plan.subgroups), main: splitStatisticsPartialMain,
      uniforms: [...geometry, ...offsetUniforms(['x', 'workspace'])],
    })),
    gpu.compile(combine.program({
      name: `${op}.splitCombine`, key: `wg=${wg}`, workgroupSize: [wg], body: splitStatisticsCombineDecls, main: splitStatisticsCombineMain,
      uniforms: [...geometry, ...offsetUniforms(['x', 'workspace', 'mean', 'variance'])],
    })),
  ]);
  const shape = { channels: C, count: M, chunks, chunkLength };
  return [
    gpu.launch(partialProgram, partial.buffers, { ...shape, ...partial.offsets }, C * chunks),
    gpu.launch(combineProgram, combine.buffers, { ...shape, ...combine.offsets }, C),
  ];
}

/** The backward's per-channel sums as two launches: per-chunk Σdy' and Σdy'·(x − mean), then per-channel totals into dbeta and dgamma. */
export async function splitBackwardReduce(gpu: Gpu, op: string, t: Checked & {
  x: TensorRef; dy: TensorRef; mean: TensorRef; variance: TensorRef; gamma: TensorRef; beta: TensorRef; eps: number; relu: boolean; dgamma: TensorRef; dbeta: TensorRef;
}): Promise<Launch[]> {
  const { C, M, wg, relu } = t;
  const { chunkLength, chunks, workspace } = t.plan;
  const { enables, flag } = subgroupFields(t.plan);
  const inputs = ['x', 'dy', 'mean', 'variance', 'gamma', 'beta'] as const;
  const partial = bindOperands(gpu.limits, op, {
    ...Object.fromEntries(inputs.map((n) => [n, { ref: t[n] }])), workspace: { ref: workspace, written: true },
  });
  const combine = bindOperands(gpu.limits, op, {
    workspace: { ref: workspace }, variance: { ref: t.variance }, dgamma: { ref: t.dgamma, written: true }, dbeta: { ref: t.dbeta, written: true },
  });
  const scalars = [{ name: 'channels', type: 'u32' as const }, { name: 'count', type: 'u32' as const }, { name: 'chunks', type: 'u32' as const },
    { name: 'chunkLength', type: 'u32' as const }, { name: 'eps', type: 'f32' as const }];
  const [partialProgram, combineProgram] = await Promise.all([
    gpu.compile(partial.program({
      name: `${op}.splitPartial`, key: `wg=${wg},relu=${relu}${flag}`, workgroupSize: [wg], enables,
      body: `const RELU = ${relu};\n${splitBackwardPartialDecls(t.plan.subgroups)}`,
      main: splitBackwardPartialMain, uniforms: [...scalars, ...offsetUniforms([...inputs, 'workspace'])],
    })),
    gpu.compile(combine.program({
      name: `${op}.splitCombine`, key: `wg=${wg}${flag}`, workgroupSize: [wg], enables, body: splitBackwardCombineDecls(t.plan.subgroups), main: splitBackwardCombineMain,
      uniforms: [...scalars, ...offsetUniforms(['workspace', 'variance', 'dgamma', 'dbeta'])],
    })),
  ]);
  const shape = { channels: C, count: M, chunks, chunkLength, eps: t.eps };
  return [
    gpu.launch(partialProgram, partial.buffers, { ...shape, ...partial.offsets }, C * chunks),
    gpu.launch(combineProgram, combine.buffers, { ...shape, ...combine.offsets }, C),
  ];
}
