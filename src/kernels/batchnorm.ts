// Batch normalization over channel-major [C, N, H, W] activations: batch statistics (a separate
// kernel, so that in a dense block they are computed once when a channel is written and read by
// every later layer's BN, DESIGN.md §3), the running-statistics update, the forward (optionally
// fused with ReLU), the per-channel affine a conv applies on load, and the training-mode backward.
// WGSL lives in batchnorm_wgsl.ts, the float64 references in batchnorm_reference.ts.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import {
  affineMain, backwardDataMain, backwardReduceDecls, backwardReduceMain, ELEMENTWISE_ITEMS, forwardMain, statisticsDecls, statisticsMain, updateRunningMain,
} from './batchnorm_wgsl.js';
import { bindOperands, offsetUniforms, refuseOverlaps, type BoundOperands, type Operand } from './binding.js';
import { BATCHNORM_VARIANTS, planSplit, splitBackwardReduce, splitStatistics, type BatchNormVariant, type SplitOptions } from './batchnorm_split.js';
import { expectShape, fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

export {
  batchNormAffineReference, batchNormBackwardReference, batchNormForwardReference, batchNormStatisticsReference,
  batchNormUpdateRunningReference, type BatchNormForwardInputs, type BatchNormStats,
} from './batchnorm_reference.js';
export { batchNormSplitWorkspaceElements, BATCHNORM_VARIANTS, SPLIT_TARGET_WORKGROUPS, type BatchNormVariant } from './batchnorm_split.js';

/** Invocations per workgroup of the per-channel reductions and the elementwise kernels (a power of two). */
export const BATCHNORM_WORKGROUP_SIZE = 64;
/** Invocations per workgroup of the per-channel vector kernels (running update, affine). */
const VECTOR_WORKGROUP = 64;

export interface WorkgroupOption {
  /** Invocations per workgroup, a power of two (default BATCHNORM_WORKGROUP_SIZE). */
  workgroupSize?: number;
}

/** Checks x is [C, N, H, W] and returns [C, M = N·H·W]. */
function activation(op: string, name: string, ref: TensorRef): [number, number] {
  if (ref.shape.length !== 4) throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)}, expected [C, N, H, W]`);
  expectShape(op, name, ref, ref.shape);
  return [ref.shape[0], sizeOf(ref.shape.slice(1))];
}

/** Checks a per-channel vector is [C], naming the channel count it must match. */
function perChannel(op: string, name: string, ref: TensorRef, channels: number, source: string): void {
  if (ref.shape.length !== 1 || ref.shape[0] !== channels) {
    throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)} but ${source} has ${channels} channels; expected [${channels}]`);
  }
  expectShape(op, name, ref, [channels]);
}

/**
 * Which way statistics and the backward's sums reduce over N·H·W: 'workgroup-per-channel' (the
 * default, best on software adapters) or 'split-reduction' (channel × chunk workgroups, for GPUs;
 * needs `workspace`, batchNormSplitWorkspaceElements elements).
 */
export interface ReductionOption extends SplitOptions {
  variant?: BatchNormVariant;
  /** Partials of the split-reduction variant; caller-owned, written and read within the launches. */
  workspace?: TensorRef;
}

function variantOf(op: string, variant: BatchNormVariant | undefined): BatchNormVariant {
  const v = variant ?? 'workgroup-per-channel';
  if (!BATCHNORM_VARIANTS.includes(v)) throw new RangeError(`${op}: variant "${v}" is not one of ${BATCHNORM_VARIANTS.join(', ')}`);
  return v;
}

function workgroupSize(gpu: Gpu, op: string, requested: number | undefined): number {
  const size = requested ?? BATCHNORM_WORKGROUP_SIZE;
  const max = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0 || size > max) {
    throw new RangeError(`${op}: workgroupSize ${size} must be a power of two between 1 and ${max}`);
  }
  return size;
}

function checkEps(op: string, eps: number): void {
  if (!Number.isFinite(eps) || eps < 0) throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
}

/**
 * Binds one dispatch's tensors by the binding rule (binding.ts): `written` names the outputs;
 * the rest are read.
 */
function bind(gpu: Gpu, op: string, refs: Record<string, TensorRef>, written: string[]): BoundOperands {
  return bindOperands(gpu.limits, op, operands(refs, written));
}

function operands(refs: Record<string, TensorRef>, written: string[]): Record<string, Operand> {
  return Object.fromEntries(Object.entries(refs).map(([name, ref]) => [name, { ref, written: written.includes(name) }]));
}

/** Per-channel batch mean and biased variance over N·H·W (float32, compensated two-pass). */
export async function batchNormStatistics(gpu: Gpu, t: { x: TensorRef; mean: TensorRef; variance: TensorRef } & WorkgroupOption & ReductionOption): Promise<Launch[]> {
  const op = 'batchNorm.statistics';
  const [C, M] = activation(op, 'x', t.x);
  perChannel(op, 'mean', t.mean, C, 'x');
  perChannel(op, 'variance', t.variance, C, 'x');
  if (M === 0 && C > 0) throw new ShapeError(`${op}: "x" ${fmt(t.x.shape)} has no values per channel`);
  const wg = workgroupSize(gpu, op, t.workgroupSize);
  if (variantOf(op, t.variant) === 'split-reduction') {
    const plan = planSplit(gpu, op, C, M, wg, t);
    refuseOverlaps(op, { ...operands({ x: t.x, mean: t.mean, variance: t.variance }, ['mean', 'variance']), workspace: { ref: plan.workspace, written: true } });
    return splitStatistics(gpu, op, { ...t, C, M, wg, plan });
  }
  const b = bind(gpu, op, { x: t.x, mean: t.mean, variance: t.variance }, ['mean', 'variance']);
  const program = await gpu.compile(b.program({
    name: op, key: `wg=${wg}`, workgroupSize: [wg], body: statisticsDecls, main: statisticsMain,
    uniforms: [{ name: 'channels', type: 'u32' }, { name: 'count', type: 'u32' }, ...offsetUniforms(['x', 'mean', 'variance'])],
  }));
  return [gpu.launch(program, b.buffers, { channels: C, count: M, ...b.offsets }, C)];
}

/**
 * running = (1 − momentum)·running + momentum·batch; the running variance takes the UNBIASED batch
 * variance (×count/(count − 1)), PyTorch's convention. count = N·H·W of the batch.
 */
export async function batchNormUpdateRunning(gpu: Gpu, t: { mean: TensorRef; variance: TensorRef; runningMean: TensorRef; runningVariance: TensorRef; momentum: number; count: number }): Promise<Launch[]> {
  const op = 'batchNorm.updateRunning';
  if (t.mean.shape.length !== 1) throw new ShapeError(`${op}: "mean" has shape ${fmt(t.mean.shape)}, expected [C]`);
  const C = t.mean.shape[0];
  perChannel(op, 'mean', t.mean, C, 'mean');
  perChannel(op, 'variance', t.variance, C, 'mean');
  perChannel(op, 'runningMean', t.runningMean, C, 'mean');
  perChannel(op, 'runningVariance', t.runningVariance, C, 'mean');
  if (!Number.isInteger(t.count) || t.count < 2) {
    throw new RangeError(`${op}: count (N·H·W) must be a whole number >= 2 for the unbiased variance, got ${t.count}`);
  }
  if (!(t.momentum >= 0 && t.momentum <= 1)) throw new RangeError(`${op}: momentum must be in [0, 1], got ${t.momentum}`);
  const refs = { mean: t.mean, variance: t.variance, runningMean: t.runningMean, runningVariance: t.runningVariance };
  const b = bind(gpu, op, refs, ['runningMean', 'runningVariance']);
  const program = await gpu.compile(b.program({
    name: op, key: '', workgroupSize: [VECTOR_WORKGROUP], body: '', main: updateRunningMain,
    uniforms: [{ name: 'channels', type: 'u32' }, { name: 'momentum', type: 'f32' }, { name: 'unbias', type: 'f32' },
      ...offsetUniforms(Object.keys(refs))],
  }));
  const uniforms = { channels: C, momentum: t.momentum, unbias: t.count / (t.count - 1), ...b.offsets };
  return [gpu.launch(program, b.buffers, uniforms, Math.ceil(C / VECTOR_WORKGROUP))];
}

/** y = (x − mean)·rsqrt(variance + eps)·gamma + beta, then ReLU if asked. Training passes batch statistics, inference running ones. */
export async function batchNormForward(gpu: Gpu, t: { x: TensorRef; mean: TensorRef; variance: TensorRef; gamma: TensorRef; beta: TensorRef; y: TensorRef; eps: number; relu?: boolean } & WorkgroupOption): Promise<Launch[]> {
  const op = 'batchNorm.forward';
  const [C, M] = activation(op, 'x', t.x);
  for (const name of ['mean', 'variance', 'gamma', 'beta'] as const) perChannel(op, name, t[name], C, 'x');
  expectShape(op, 'y', t.y, t.x.shape);
  checkEps(op, t.eps);
  const inputs = { x: t.x, mean: t.mean, variance: t.variance, gamma: t.gamma, beta: t.beta };
  const wg = workgroupSize(gpu, op, t.workgroupSize);
  const relu = t.relu ?? false;
  const b = bind(gpu, op, { ...inputs, y: t.y }, ['y']);
  const program = await gpu.compile(b.program({
    name: op, key: `wg=${wg},relu=${relu}`, workgroupSize: [wg],
    body: `const ITEMS = ${ELEMENTWISE_ITEMS}u;\nconst RELU = ${relu};`, main: forwardMain,
    uniforms: [{ name: 'channels', type: 'u32' }, { name: 'count', type: 'u32' }, { name: 'chunks', type: 'u32' }, { name: 'eps', type: 'f32' },
      ...offsetUniforms(['x', 'mean', 'variance', 'gamma', 'beta', 'y'])],
  }));
  const chunks = Math.max(1, Math.ceil(M / (wg * ELEMENTWISE_ITEMS)));
  return [gpu.launch(program, b.buffers, { channels: C, count: M, chunks, eps: t.eps, ...b.offsets }, M === 0 ? 0 : C * chunks)];
}

/** scale = gamma·rsqrt(variance + eps), shift = beta − mean·scale: the per-channel affine a conv applies on load (fused BN→ReLU). */
export async function batchNormAffine(gpu: Gpu, t: { mean: TensorRef; variance: TensorRef; gamma: TensorRef; beta: TensorRef; scale: TensorRef; shift: TensorRef; eps: number }): Promise<Launch[]> {
  const op = 'batchNorm.affine';
  if (t.gamma.shape.length !== 1) throw new ShapeError(`${op}: "gamma" has shape ${fmt(t.gamma.shape)}, expected [C]`);
  const C = t.gamma.shape[0];
  for (const name of ['mean', 'variance', 'beta', 'scale', 'shift'] as const) perChannel(op, name, t[name], C, 'gamma');
  checkEps(op, t.eps);
  const inputs = { mean: t.mean, variance: t.variance, gamma: t.gamma, beta: t.beta };
  const b = bind(gpu, op, { ...inputs, scale: t.scale, shift: t.shift }, ['scale', 'shift']);
  const program = await gpu.compile(b.program({
    name: op, key: '', workgroupSize: [VECTOR_WORKGROUP], body: '', main: affineMain,
    uniforms: [{ name: 'channels', type: 'u32' }, { name: 'eps', type: 'f32' }, ...offsetUniforms(['mean', 'variance', 'gamma', 'beta', 'scale', 'shift'])],
  }));
  return [gpu.launch(program, b.buffers, { channels: C, eps: t.eps, ...b.offsets }, Math.ceil(C / VECTOR_WORKGROUP))];
}

/**
 * Training-mode backward through the batch statistics (mean and variance must be x's batch
 * statistics). With relu, dy is the gradient w.r.t. the ReLU output and the pre-ReLU value is
 * recomputed from x to mask it. Launches: a per-channel reduction that writes dbeta = Σdy'
 * and dgamma = Σdy'·x̂ (two launches under 'split-reduction'), then an elementwise pass that
 * writes (or, with accumulate, adds) dx.
 */
export async function batchNormBackward(gpu: Gpu, t: {
  x: TensorRef; dy: TensorRef; mean: TensorRef; variance: TensorRef; gamma: TensorRef; beta: TensorRef; eps: number; relu?: boolean;
  dx: TensorRef; dgamma: TensorRef; dbeta: TensorRef; accumulate?: boolean;
} & WorkgroupOption & ReductionOption): Promise<Launch[]> {
  const op = 'batchNorm.backward';
  const [C, M] = activation(op, 'x', t.x);
  expectShape(op, 'dy', t.dy, t.x.shape);
  expectShape(op, 'dx', t.dx, t.x.shape);
  for (const name of ['mean', 'variance', 'gamma', 'beta', 'dgamma', 'dbeta'] as const) perChannel(op, name, t[name], C, 'x');
  if (M === 0 && C > 0) throw new ShapeError(`${op}: "x" ${fmt(t.x.shape)} has no values per channel`);
  checkEps(op, t.eps);
  const inputs = { x: t.x, dy: t.dy, mean: t.mean, variance: t.variance, gamma: t.gamma, beta: t.beta };
  const wg = workgroupSize(gpu, op, t.workgroupSize);
  const relu = t.relu ?? false;
  const accumulate = t.accumulate ?? false;
  const plan = variantOf(op, t.variant) === 'split-reduction' ? planSplit(gpu, op, C, M, wg, t) : undefined;
  if (plan) refuseOverlaps(op, { ...operands({ ...inputs, dx: t.dx, dgamma: t.dgamma, dbeta: t.dbeta }, ['dx', 'dgamma', 'dbeta']), workspace: { ref: plan.workspace, written: true } });
  // Each program's cache key names every constant its WGSL text carries.
  const reduceFlags = `const RELU = ${relu};\n`;
  const dataFlags = `const ITEMS = ${ELEMENTWISE_ITEMS}u;\nconst RELU = ${relu};\nconst ACCUMULATE = ${accumulate};\n`;
  const common = ['x', 'dy', 'mean', 'variance', 'gamma', 'beta'];
  const scalars = [{ name: 'channels', type: 'u32' as const }, { name: 'count', type: 'u32' as const }, { name: 'eps', type: 'f32' as const }];
  const reduceBound = bind(gpu, op, { ...inputs, dgamma: t.dgamma, dbeta: t.dbeta }, ['dgamma', 'dbeta']);
  const dataBound = bind(gpu, op, { ...inputs, dgamma: t.dgamma, dbeta: t.dbeta, dx: t.dx }, ['dx']);
  const reduce = plan
    ? splitBackwardReduce(gpu, op, { ...t, C, M, wg, relu, plan })
    : gpu.compile(reduceBound.program({
      name: `${op}.reduce`, key: `wg=${wg},relu=${relu}`, workgroupSize: [wg], body: reduceFlags + backwardReduceDecls, main: backwardReduceMain,
      uniforms: [...scalars, ...offsetUniforms([...common, 'dgamma', 'dbeta'])],
    })).then((program) => [gpu.launch(program, reduceBound.buffers, { channels: C, count: M, eps: t.eps, ...reduceBound.offsets }, C)]);
  const dataCompile = gpu.compile(dataBound.program({
    name: `${op}.data`, key: `wg=${wg},relu=${relu},acc=${accumulate}`, workgroupSize: [wg], body: dataFlags, main: backwardDataMain,
    uniforms: [...scalars, { name: 'chunks', type: 'u32' }, ...offsetUniforms([...common, 'dgamma', 'dbeta', 'dx'])],
  }));
  let dataProgram;
  try {
    dataProgram = await dataCompile;
  } catch (e) {
    (await reduce.catch(() => [])).forEach((l) => l.destroy()); // no uniform buffer outlives a failed call
    throw e;
  }
  const reduceLaunches = await reduce;
  const chunks = Math.max(1, Math.ceil(M / (wg * ELEMENTWISE_ITEMS)));
  const data = gpu.launch(dataProgram, dataBound.buffers, { channels: C, count: M, eps: t.eps, chunks, ...dataBound.offsets }, C * chunks);
  return [...reduceLaunches, data];
}
