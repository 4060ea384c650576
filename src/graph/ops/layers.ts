// The remaining graph ops, each a forward launch builder beside its backward rule: batch
// statistics (computed once per channel), running-statistics updates, pools, the classifier,
// softmax cross-entropy, dropout and the naive strategy's concatenation copy.

import { batchNormSplitWorkspaceElements, batchNormUpdateRunning, type ReductionOption } from '../../kernels/batchnorm.js';
import { copyTensor } from '../../kernels/copy.js';
import { dropoutBackward, dropoutForward } from '../../kernels/dropout.js';
import { linearBackward, linearForward } from '../../kernels/linear.js';
// Per-channel ops go through their chunked entry points: the kernel itself where the operands fit
// one binding, channel chunks where one does not (kernels/chunks.ts).
import {
  avgPool2x2BackwardChunked, avgPool2x2ForwardChunked, batchNormStatisticsChunked, globalAvgPoolBackwardChunked, globalAvgPoolForwardChunked,
  maxPool3x3BackwardChunked, maxPool3x3ForwardChunked,
} from '../../kernels/per_channel_chunked.js';
import { deriveSeed } from '../../kernels/random.js';
import { ShapeError, sizeOf } from '../../kernels/tensor.js';
import { softmaxCrossEntropy, softmaxRowsWorkspaceElements } from '../../kernels/softmax_cross_entropy.js';
import type { Launch } from '../../gpu/program.js';
import { poolSite, type TunedKernel } from '../../gpu/tuning.js';
import type { GradientBuilder } from '../autograd.js';
import type { BuildContext, Graph, StepContext, Value } from '../graph.js';

/** Per-channel batch mean and biased variance of x, written once and read by every BN over those channels. */
export function bnStatistics(g: Graph, name: string, t: { x: Value; mean: Value; variance: Value }): void {
  const split = splitReduction(g, name, t.x);
  g.add({ name, reads: [t.x], writes: [t.mean, t.variance, ...split.writes],
    build: (c) => batchNormStatisticsChunked(c.gpu, { x: c.ref(t.x), mean: c.ref(t.mean), variance: c.ref(t.variance), ...split.options(c) }) });
}

/**
 * GPU-class kernels reduce each channel with many workgroups (batchnorm_split.ts) into partial
 * sums in a small planned workspace; the software default uses one workgroup per channel and none.
 */
export function splitReduction(g: Graph, name: string, x: Value): { writes: Value[]; options(c: BuildContext): ReductionOption } {
  if (g.kernels === 'software') return { writes: [], options: () => ({}) };
  // The tuning table may set the values per chunk (the workspace is sized for it).
  const splitChunk = g.tuning?.choose(poolSite('batchNorm.split', x.shape))?.splitChunk;
  const chunk = splitChunk ? { splitChunk } : {};
  const partials = g.tensor(`${name}.partials`, [batchNormSplitWorkspaceElements(x.shape, chunk)], 'workspace');
  return { writes: [partials], options: (c) => ({ variant: 'split-reduction', workspace: c.ref(partials), ...chunk }) };
}

/** Runs an op's build; where `tuned`, a shape error the kernel raises is named as the tuning table's `what`, with the fix. */
export async function fromTuningTable<T>(tuned: boolean, what: string, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (e) {
    if (!tuned || !(e instanceof ShapeError)) throw e;
    throw new ShapeError(`${e.message}; the ${what} comes from the tuning table (rerun \`densenet-wgsl tune\` for this adapter, or pass --no-tune-cache)`);
  }
}

/** Running statistics of one BN layer, updated once per step in the forward pass (never in backward). */
export function bnRunningUpdate(g: Graph, name: string, t: { mean: Value; variance: Value; runningMean: Value; runningVariance: Value; momentum: number; count: number }): void {
  g.add({ name, reads: [t.mean, t.variance], writes: [t.runningMean, t.runningVariance],
    build: (c) => batchNormUpdateRunning(c.gpu, {
      mean: c.ref(t.mean), variance: c.ref(t.variance), runningMean: c.ref(t.runningMean), runningVariance: c.ref(t.runningVariance),
      momentum: t.momentum, count: t.count,
    }) });
}

type UnaryKernel = (c: BuildContext, x: Value, y: Value) => Promise<Launch[]>;
type UnaryBackward = (c: BuildContext, x: Value, dy: Value, dx: Value, accumulate: boolean) => Promise<Launch[]>;

/**
 * An op y = f(x) whose backward is one kernel producing dx from dy (and x where it needs it):
 * the whole graph side of a new elementwise or pooling op. `onStep` (if any) rewrites per-step
 * uniforms of both the forward and the backward launches.
 */
function unary(g: Graph, name: string, x: Value, y: Value, forward: UnaryKernel, backward: UnaryBackward, backwardReadsX: boolean,
  onStep?: (launches: Launch[], step: StepContext) => void, onBackward?: () => void): void {
  g.add({
    name, reads: [x], writes: [y], onStep,
    build: (c) => forward(c, x, y),
    backward: (gb: GradientBuilder) => {
      const dy = gb.grad(y)!;
      const dx = gb.contribute(x);
      if (!dx) return;
      onBackward?.();
      g.add({ name: `${name}.backward`, reads: backwardReadsX ? [x, dy] : [dy], writes: [dx.grad], onStep,
        build: (c) => backward(c, x, dy, dx.grad, dx.accumulate) });
    },
  });
}

/** Blocks per invocation from the graph's tuning table (undefined: the kernel's default for the adapter). */
export function avgPool2x2(g: Graph, name: string, x: Value, y: Value): void {
  const tuned = (kernel: TunedKernel) => g.tuning?.choose(poolSite(kernel, x.shape))?.blocksPerInvocation;
  const forwardBlocks = tuned('avgPool2x2.forward');
  // The backward's choice is asked for only in a graph with gradients (what the tuner tunes is what the graph runs).
  let backwardBlocks: number | undefined;
  unary(g, name, x, y,
    (c, x, y) => avgPool2x2ForwardChunked(c.gpu, { x: c.ref(x), y: c.ref(y), blocksPerInvocation: forwardBlocks }),
    (c, _x, dy, dx, accumulate) => avgPool2x2BackwardChunked(c.gpu, { dy: c.ref(dy), dx: c.ref(dx), accumulate, blocksPerInvocation: backwardBlocks }), false,
    undefined, () => { backwardBlocks = tuned('avgPool2x2.backward'); });
}

export function maxPool3x3(g: Graph, name: string, x: Value, y: Value): void {
  unary(g, name, x, y,
    (c, x, y) => maxPool3x3ForwardChunked(c.gpu, { x: c.ref(x), y: c.ref(y) }),
    (c, x, dy, dx, accumulate) => maxPool3x3BackwardChunked(c.gpu, { x: c.ref(x), dy: c.ref(dy), dx: c.ref(dx), accumulate }), true);
}

export function globalAvgPool(g: Graph, name: string, x: Value, y: Value): void {
  // GPU-class kernels reduce each plane with several lanes (as many as the tuning table says); the software default, one thread per plane.
  const variant = g.kernels === 'software' ? 'thread-per-plane' : 'parallel';
  const lanesPerPlane = variant === 'parallel' ? g.tuning?.choose(poolSite('globalAvgPool.forward', x.shape))?.lanesPerPlane : undefined;
  unary(g, name, x, y,
    (c, x, y) => fromTuningTable(!!lanesPerPlane, 'lanesPerPlane', () =>
      globalAvgPoolForwardChunked(c.gpu, { x: c.ref(x), y: c.ref(y), variant, ...(lanesPerPlane ? { lanesPerPlane } : {}) })),
    (c, _x, dy, dx, accumulate) => globalAvgPoolBackwardChunked(c.gpu, { dy: c.ref(dy), dx: c.ref(dx), accumulate }), false);
}

/** y (= or +=) x: the naive strategy's concatenation, one copy per part. */
export function copyInto(g: Graph, name: string, x: Value, y: Value): void {
  unary(g, name, x, y,
    (c, x, y) => copyTensor(c.gpu, { x: c.ref(x), y: c.ref(y) }),
    (c, _x, dy, dx, accumulate) => copyTensor(c.gpu, { x: c.ref(dy), y: c.ref(dx), accumulate }), false);
}

/**
 * Inverted dropout with a per-step seed: forward and backward of a step draw the same mask (the
 * seed is derived from the step's seed and this site's index, and rewritten every step).
 */
export function dropout(g: Graph, name: string, t: { x: Value; y: Value; rate: number; site: number }): void {
  const setSeed = (launches: Launch[], step: StepContext) => {
    const seed = deriveSeed(step.seed, t.site);
    for (const l of launches) l.setUniforms(step.queue, { seed });
  };
  unary(g, name, t.x, t.y,
    (c, x, y) => dropoutForward(c.gpu, { x: c.ref(x), y: c.ref(y), rate: t.rate, seed: 0 }),
    (c, _x, dy, dx, accumulate) => dropoutBackward(c.gpu, { dy: c.ref(dy), dx: c.ref(dx), rate: t.rate, seed: 0, accumulate }), false, setSeed);
}

/** logits [N, K] = x[Cin, N]ᵀ·Wᵀ + b. */
export function linear(g: Graph, name: string, t: { x: Value; weight: Value; bias: Value; y: Value }): void {
  const flops = 2 * sizeOf(t.y.shape) * t.weight.shape[1]; // N·K outputs of Cin products each
  g.add({
    name, reads: [t.x, t.weight, t.bias], writes: [t.y], flops,
    build: (c) => linearForward(c.gpu, { x: c.ref(t.x), weight: c.ref(t.weight), bias: c.ref(t.bias), y: c.ref(t.y) }),
    backward: (gb) => {
      const dy = gb.grad(t.y)!;
      const dx = gb.contribute(t.x);
      const dweight = gb.contribute(t.weight)!;
      const dbias = gb.contribute(t.bias)!;
      g.add({
        name: `${name}.backward`, reads: [t.x, t.weight, dy], writes: [dweight.grad, dbias.grad, ...(dx ? [dx.grad] : [])], flops: dx ? 2 * flops : flops,
        build: (c) => linearBackward(c.gpu, {
          x: c.ref(t.x), weight: c.ref(t.weight), dy: c.ref(dy), dx: dx ? c.ref(dx.grad) : undefined,
          dweight: c.ref(dweight.grad), dbias: c.ref(dbias.grad), accumulate: dx?.accumulate ?? false,
        }),
      });
    },
  });
}

/**
 * Mean softmax cross-entropy over the batch. Writes the loss, the number of correct predictions,
 * and d(loss)/d(logits), which seeds the backward pass.
 */
export function softmaxCrossEntropyLoss(g: Graph, name: string, t: { logits: Value; labels: Value; loss: Value; correct: Value; dlogits: Value }): void {
  // GPU-class kernels: a workgroup per sample, the rows' losses in a planned workspace (2 per sample).
  const rows = g.kernels === 'software' ? undefined : g.tensor(`${name}.rows`, [softmaxRowsWorkspaceElements(t.logits.shape[0])], 'workspace');
  g.add({ name, reads: [t.logits, t.labels], writes: [t.loss, t.correct, t.dlogits, ...(rows ? [rows] : [])],
    build: (c) => softmaxCrossEntropy(c.gpu, {
      logits: c.ref(t.logits), labels: c.ref(t.labels), loss: c.ref(t.loss), dlogits: c.ref(t.dlogits), correct: c.ref(t.correct),
      ...(rows ? { variant: 'row-parallel' as const, workspace: c.ref(rows) } : {}),
    }) });
}
