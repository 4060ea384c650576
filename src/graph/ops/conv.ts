// Convolution ops: plain, and with batch norm → ReLU applied to the input. Under the `fused`
// strategy the BN→ReLU is applied while the conv loads its input and never stored; under
// `recompute` it is written to one buffer shared by all layers and recomputed in backward.

import { batchNormAffine } from '../../kernels/batchnorm.js';
import { convSite, gemmChoice, type TunedKernel } from '../../gpu/tuning.js';
import { chooseConvTile, conv2dBackwardFilterWorkspaceElements, type ConvTile, type ConvVariant, type InputAffineRelu, type WorkgroupTile } from '../../kernels/conv2d.js';
// Every kernel call below goes through its chunked entry point: the kernel itself where its
// operands fit one binding, channel chunks where one does not (kernels/chunks.ts).
import { conv2dBackwardFilterChunked, conv2dBackwardInputChunked, conv2dForwardChunked } from '../../kernels/conv2d_chunked.js';
import { batchNormBackwardChunked, batchNormForwardChunked } from '../../kernels/per_channel_chunked.js';
import { chooseGpuFilterTile } from '../../kernels/conv2d_filter_split.js';
import { fromTuningTable, splitReduction } from './layers.js';
import { sizeOf } from '../../kernels/tensor.js';
import type { GradientBuilder } from '../autograd.js';
import type { BuildContext, Graph, Value } from '../graph.js';

export interface ConvGeometry { stride: number; padding: number }

/**
 * The conv GEMM (forward, input gradient): register tiles (tuned where the table says) on software
 * adapters; on GPUs workgroup-memory tiles, whose tile (or the register variant as a rival) the
 * table may set at its own " gpu" sites (tuning.ts gemmChoice). A tile the adapter cannot run is
 * refused by the kernel when the op builds (checkWorkgroupTile names the rule).
 */
function gemmOptions(
  g: Graph, kernel: TunedKernel, x: Value, w: Value, t: ConvGeometry, transform: boolean,
): { variant: ConvVariant; tile?: ConvTile; workgroupTile?: WorkgroupTile } {
  if (g.kernels !== 'software') return gemmChoice(g.tuning?.choose(convSite(kernel, x.shape, w.shape, t.stride, t.padding, transform, true)));
  return { variant: 'register', tile: tunedTile(g, kernel, x, w, t, transform) };
}

/** Builds a conv GEMM launch; a tuned workgroup tile the kernel refuses is named as the tuning table's, with the fix. */
const buildGemm = <T>(gemm: { workgroupTile?: WorkgroupTile }, build: () => Promise<T>): Promise<T> => fromTuningTable(!!gemm.workgroupTile, 'tile', build);

/** Batch-norm operands: `mean`/`variance` are batch statistics in training, running statistics in inference. */
export interface BatchNormOperands { mean: Value; variance: Value; gamma: Value; beta: Value; eps: number }

/**
 * The graph's tuning-table tile for this conv (undefined: the kernel's default). `x` is the
 * forward input (backward-input's dx), `w` the weights.
 */
function tunedTile(g: Graph, kernel: TunedKernel, x: Value, w: Value, t: ConvGeometry, transform: boolean): ConvTile | undefined {
  return g.tuning?.choose(convSite(kernel, x.shape, w.shape, t.stride, t.padding, transform))?.tile;
}

/**
 * Emits the filter gradient; returns the output gradient for the caller's input-gradient ops. A
 * tuned tile that splits the reduction (split-K) gets its workspace as a planned 'workspace'
 * tensor written by this op alone, so the planner shares its bytes with every other transient.
 */
function convBackward(g: Graph, gb: GradientBuilder, name: string, t: { x: Value; w: Value; y: Value; transform?: TransformValues } & ConvGeometry): Value {
  const { stride, padding } = t;
  const dy = gb.grad(t.y)!;
  const dw = gb.contribute(t.w);
  if (dw) {
    // GPU-class kernels split a long N·H·W reduction over many workgroups by default (conv2d_filter_split.ts).
    const tile = tunedTile(g, 'conv2d.backwardFilter', t.x, t.w, t, !!t.transform) ??
      (g.kernels === 'software' ? undefined : chooseGpuFilterTile(t.x.shape, t.w.shape, { stride, padding }));
    // Sized by the tile the kernel will use (the tuned one, else its default), so a default that splits is planned too.
    const elements = conv2dBackwardFilterWorkspaceElements(t.w.shape, tile ?? chooseConvTile('backwardFilter', t.x.shape, t.w.shape, { stride, padding }));
    const workspace = elements > 0 ? g.tensor(`${name}.backwardFilter.workspace`, [elements], 'workspace') : undefined;
    g.add({
      name: `${name}.backwardFilter`, reads: [t.x, dy, ...transformReads(t.transform)], writes: [dw.grad, ...(workspace ? [workspace] : [])], flops: convFlops(dy, t.w),
      build: (c) => conv2dBackwardFilterChunked(c.gpu, {
        x: c.ref(t.x), dy: c.ref(dy), dw: c.ref(dw.grad), inputTransform: transformRefs(c, t.transform), stride, padding,
        tile, workspace: workspace && c.ref(workspace),
      }),
    });
  }
  return dy;
}

/**
 * Floating-point operations of a conv GEMM whose output (or output gradient) is `y` and weights `w`
 * [Cout, Cin, kh, kw]: each of y's elements is a sum of Cin·kh·kw products, and the filter and input
 * gradients do the same multiply-adds in another order (bench profile's GFLOP/s).
 */
const convFlops = (y: Value, w: Value) => (2 * sizeOf(y.shape) * sizeOf(w.shape)) / w.shape[0];

interface TransformValues { scale: Value; shift: Value }
const transformReads = (t?: TransformValues) => (t ? [t.scale, t.shift] : []);
function transformRefs(c: BuildContext, t?: TransformValues): InputAffineRelu | undefined {
  return t ? { scale: c.ref(t.scale), shift: c.ref(t.shift) } : undefined;
}

/** y = relu(bn(x)), stored. Backward recomputes the ReLU mask from x. */
export function bnRelu(g: Graph, name: string, t: { x: Value; y: Value } & BatchNormOperands): void {
  g.add({
    name, reads: [t.x, t.mean, t.variance, t.gamma, t.beta], writes: [t.y],
    build: (c) => batchNormForwardChunked(c.gpu, { ...bnRefs(c, t), x: c.ref(t.x), y: c.ref(t.y), relu: true }),
    backward: (gb) => bnReluBackward(g, gb, name, t, gb.grad(t.y)!),
  });
}

function bnRefs(c: BuildContext, t: BatchNormOperands) {
  return { mean: c.ref(t.mean), variance: c.ref(t.variance), gamma: c.ref(t.gamma), beta: c.ref(t.beta), eps: t.eps };
}

/** dx, dγ, dβ of relu(bn(x)) given dy, through the batch statistics (training mode). */
function bnReluBackward(g: Graph, gb: GradientBuilder, name: string, t: { x: Value } & BatchNormOperands, dy: Value): void {
  const dx = gb.contribute(t.x);
  const dgamma = gb.contribute(t.gamma);
  const dbeta = gb.contribute(t.beta);
  if (!dgamma || !dbeta) throw new Error(`${name}: batch-norm parameters must be trainable`);
  // With no input gradient wanted (a BN right on the images), the kernel still needs somewhere to
  // write dx: a scratch gradient value.
  const dxTarget = dx?.grad ?? g.tensor(`${name}.dx.unused`, t.x.shape, 'gradients');
  const split = splitReduction(g, `${name}.backward`, t.x);
  g.add({
    name: `${name}.backward`, reads: [t.x, dy, t.mean, t.variance, t.gamma, t.beta], writes: [dxTarget, dgamma.grad, dbeta.grad, ...split.writes],
    build: (c) => batchNormBackwardChunked(c.gpu, {
      ...bnRefs(c, t), ...split.options(c), x: c.ref(t.x), dy: c.ref(dy), relu: true,
      dx: c.ref(dxTarget), dgamma: c.ref(dgamma.grad), dbeta: c.ref(dbeta.grad), accumulate: dx?.accumulate ?? false,
    }),
  });
}

/**
 * y = conv(relu(bn(x)), w) without storing relu(bn(x)) (`fused`): the conv applies the per-channel
 * affine (scale, shift) while loading x. Backward recomputes it in the filter gradient and masks
 * the input gradient in the BN backward.
 */
export function fusedBnReluConv(g: Graph, name: string, t: { x: Value; w: Value; y: Value } & BatchNormOperands & ConvGeometry): void {
  const channels = t.x.shape[0];
  const transform = {
    scale: g.tensor(`${name}.scale`, [channels], 'workspace'),
    shift: g.tensor(`${name}.shift`, [channels], 'workspace'),
  };
  g.add({
    name: `${name}.affine`, reads: [t.mean, t.variance, t.gamma, t.beta], writes: [transform.scale, transform.shift],
    build: (c) => batchNormAffine(c.gpu, { ...bnRefs(c, t), scale: c.ref(transform.scale), shift: c.ref(transform.shift) }),
  });
  const { stride, padding } = t;
  const gemm = gemmOptions(g, 'conv2d.forward', t.x, t.w, t, true);
  g.add({
    name, reads: [t.x, t.w, transform.scale, transform.shift], writes: [t.y], flops: convFlops(t.y, t.w),
    build: (c) => buildGemm(gemm, () => conv2dForwardChunked(c.gpu, { ...gemm, x: c.ref(t.x), w: c.ref(t.w), y: c.ref(t.y), inputTransform: transformRefs(c, transform), stride, padding })),
    backward: (gb) => {
      const dy = convBackward(g, gb, name, { ...t, transform });
      const dActivated = inputGradient(g, name, t, dy);
      bnReluBackward(g, gb, `${name}.bn`, t, dActivated);
    },
  });
}

/** ∂L/∂relu(bn(x)) from the conv's output gradient, into a transient gradient buffer. */
function inputGradient(g: Graph, name: string, t: { x: Value; w: Value } & ConvGeometry, dy: Value): Value {
  const { stride, padding } = t;
  const dActivated = g.tensor(`${name}.dinput`, t.x.shape, 'gradients');
  const gemm = gemmOptions(g, 'conv2d.backwardInput', t.x, t.w, t, false);
  g.add({
    name: `${name}.backwardInput`, reads: [dy, t.w], writes: [dActivated], flops: convFlops(dy, t.w),
    build: (c) => buildGemm(gemm, () => conv2dBackwardInputChunked(c.gpu, { ...gemm, dy: c.ref(dy), w: c.ref(t.w), dx: c.ref(dActivated), stride, padding })),
  });
  return dActivated;
}

/**
 * y = conv(relu(bn(x)), w) with relu(bn(x)) written to `shared`, a buffer all layers reuse
 * (`recompute`, Pleiss et al.'s shared storage 2). Backward rewrites `shared` from x and the
 * saved batch statistics (no statistics kernel, no running-statistics update) before using it.
 */
export function recomputedBnReluConv(g: Graph, name: string, t: { x: Value; w: Value; y: Value; shared: Value } & BatchNormOperands & ConvGeometry): void {
  const { stride, padding } = t;
  const normalize = (c: BuildContext) => batchNormForwardChunked(c.gpu, { ...bnRefs(c, t), x: c.ref(t.x), y: c.ref(t.shared), relu: true });
  const bnReads = [t.x, t.mean, t.variance, t.gamma, t.beta];
  g.add({ name: `${name}.bn`, reads: bnReads, writes: [t.shared], build: normalize });
  const gemm = gemmOptions(g, 'conv2d.forward', t.x, t.w, t, false);
  g.add({
    name, reads: [t.shared, t.w], writes: [t.y], flops: convFlops(t.y, t.w),
    build: (c) => buildGemm(gemm, () => conv2dForwardChunked(c.gpu, { ...gemm, x: c.ref(t.shared), w: c.ref(t.w), y: c.ref(t.y), stride, padding })),
    backward: (gb) => {
      g.add({ name: `${name}.bn.recompute`, reads: bnReads, writes: [t.shared], build: normalize });
      const dy = convBackward(g, gb, name, { ...t, x: t.shared });
      const dActivated = inputGradient(g, name, t, dy);
      bnReluBackward(g, gb, `${name}.bn`, t, dActivated);
    },
  });
}

/** A plain conv; its input gradient flows back to x where x needs one (not for the images). */
export function conv(g: Graph, name: string, t: { x: Value; w: Value; y: Value } & ConvGeometry): void {
  const { stride, padding } = t;
  const gemm = gemmOptions(g, 'conv2d.forward', t.x, t.w, t, false);
  g.add({
    name, reads: [t.x, t.w], writes: [t.y], flops: convFlops(t.y, t.w),
    build: (c) => buildGemm(gemm, () => conv2dForwardChunked(c.gpu, { ...gemm, x: c.ref(t.x), w: c.ref(t.w), y: c.ref(t.y), stride, padding })),
    backward: (gb) => {
      const dy = convBackward(g, gb, name, t);
      const dx = gb.contribute(t.x);
      if (dx) {
        const inputGemm = gemmOptions(g, 'conv2d.backwardInput', t.x, t.w, t, false);
        g.add({
          name: `${name}.backwardInput`, reads: [dy, t.w], writes: [dx.grad], flops: convFlops(dy, t.w),
          build: (c) => buildGemm(inputGemm, () => conv2dBackwardInputChunked(c.gpu, { ...inputGemm, dy: c.ref(dy), w: c.ref(t.w), dx: c.ref(dx.grad), accumulate: dx.accumulate, stride, padding })),
        });
      }
    },
  });
}
