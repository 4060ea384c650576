// conv2d over operands larger than one storage binding: the three kernels run once per pair of
// channel chunks (input channels × output channels), each chunk bound on its own (chunks.ts).
//  - forward: y[co-chunk] = Σ over input-channel chunks of conv(x[ci-chunk], w[co-chunk, ci-chunk]):
//    split-K over channel chunks, the first chunk writing y and the others adding to it;
//  - backward-input: dx[ci-chunk] = Σ over output-channel chunks of the transposed conv of dy[co-chunk];
//  - backward-filter: dw[co-chunk, ci-chunk] from x[ci-chunk] and dy[co-chunk], each written once.
// A weight chunk is its output rows (contiguous in OIHW); the kernels reach the columns of an input
// chunk through strides (`wChannelOffset`). With every operand within one binding, each function
// is exactly conv2d.ts's: one call, the same launches and pipelines.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { oversizedBindings, type Operand } from './binding.js';
import { buildEach, channelRanges, channelsOf, firstGuess, oneChannelTooLarge, type ChannelRange } from './chunks.js';
import {
  chooseConvTile, chooseWorkgroupTile, conv2dBackwardFilter, conv2dBackwardInput, conv2dForward, type ConvTile, type ConvVariantOptions, type InputAffineRelu,
} from './conv2d.js';
import type { Conv2dParams } from './conv2d_reference.js';
import { sizeOf, type TensorRef } from './tensor.js';

/** Which side of the conv an operand's channels belong to: input channels (x, dx, scale, shift) or output channels (y, dy, w's and dw's rows). */
type Side = 'in' | 'out';
interface SidedOperand extends Operand { side: Side }

interface ConvChunks { inRanges: ChannelRange[]; outRanges: ChannelRange[] }

/**
 * The fewest equal input × output channel chunks in which every binding of every sub-call fits
 * (one of each when all fits). Each sub-call's operands are its chunks (binding.ts groups them as
 * the kernel will). Refuses by name where one channel of an operand alone is over the limit.
 */
function planConvChunks(gpu: Gpu, op: string, operands: Record<string, SidedOperand>, Cin: number, Cout: number): ConvChunks {
  const limits = gpu.limits;
  if (oversizedBindings(limits, operands).length === 0) return { inRanges: [{ start: 0, count: Cin }], outRanges: [{ start: 0, count: Cout }] };
  const entries = Object.entries(operands);
  const refsOf = (side: Side) => entries.filter(([, o]) => o.side === side).map(([, o]) => o.ref);
  let parts = { in: firstGuess(limits, Cin, refsOf('in')), out: firstGuess(limits, Cout, refsOf('out')) };
  for (;;) {
    const inRanges = channelRanges(Cin, parts.in);
    const outRanges = channelRanges(Cout, parts.out);
    const grow = new Set<Side>();
    let culprit: [string, SidedOperand] | undefined;
    for (const ri of inRanges) {
      for (const ro of outRanges) {
        const sub = Object.fromEntries(entries.map(([n, o]) => [n, { ...o, ref: channelsOf(o.ref, o.side === 'in' ? ri : ro) }]));
        for (const group of oversizedBindings(limits, sub)) {
          for (const n of group) {
            grow.add(operands[n].side);
            culprit ??= [n, operands[n]];
          }
        }
      }
    }
    if (grow.size === 0) return { inRanges, outRanges };
    const total = { in: Cin, out: Cout };
    let grew = false;
    for (const side of grow) {
      if (parts[side] < total[side]) { parts = { ...parts, [side]: parts[side] + 1 }; grew = true; }
    }
    if (!grew) throw oneChannelTooLarge(limits, op, culprit![0], culprit![1].ref);
  }
}

const transformSides = (t?: InputAffineRelu): Record<string, SidedOperand> =>
  (t ? { scale: { ref: t.scale, side: 'in' }, shift: { ref: t.shift, side: 'in' } } : {});
const transformOf = (t: InputAffineRelu | undefined, r: ChannelRange): InputAffineRelu | undefined =>
  t && { scale: channelsOf(t.scale, r), shift: channelsOf(t.shift, r) };

type ForwardArgs = Parameters<typeof conv2dForward>[1];

/**
 * The whole op's tile (or workgroup tile) for every chunk where the caller gives none: the chunks
 * then share the unchunked op's program (fewer pipelines to compile) instead of each choosing by
 * its own channel count.
 */
function wholeTile(t: ConvVariantOptions & { tile?: ConvTile }, kernel: 'forward' | 'backwardInput', x: TensorRef, w: TensorRef, params: Conv2dParams, M: number) {
  if (t.variant === 'workgroup') return { workgroupTile: t.workgroupTile ?? chooseWorkgroupTile(M) };
  return { tile: t.tile ?? chooseConvTile(kernel, x.shape, w.shape, params) };
}

/** conv2dForward, split into channel chunks where an operand exceeds one binding (y accumulates over input-channel chunks). */
export async function conv2dForwardChunked(gpu: Gpu, t: ForwardArgs): Promise<Launch[]> {
  const [Cout, Cin] = [t.w.shape[0], t.x.shape[0]];
  const { inRanges, outRanges } = planConvChunks(gpu, 'conv2d', {
    y: { ref: t.y, side: 'out', written: true }, x: { ref: t.x, side: 'in' }, w: { ref: t.w, side: 'out' }, ...transformSides(t.inputTransform),
  }, Cin, Cout);
  if (inRanges.length === 1 && outRanges.length === 1) return conv2dForward(gpu, t);
  const tile = wholeTile(t, 'forward', t.x, t.w, t, Cout);
  return buildEach(outRanges.flatMap((ro) => inRanges.map((ri, k) => () => conv2dForward(gpu, {
    ...t, ...tile, x: channelsOf(t.x, ri), y: channelsOf(t.y, ro), w: channelsOf(t.w, ro), wChannelOffset: ri.start,
    inputTransform: transformOf(t.inputTransform, ri), accumulate: k > 0 || (t.accumulate ?? false),
  }))));
}

type BackwardInputArgs = Parameters<typeof conv2dBackwardInput>[1];

/** conv2dBackwardInput, split into channel chunks where an operand exceeds one binding (dx accumulates over output-channel chunks). */
export async function conv2dBackwardInputChunked(gpu: Gpu, t: BackwardInputArgs): Promise<Launch[]> {
  const [Cout, Cin] = [t.w.shape[0], t.dx.shape[0]];
  const { inRanges, outRanges } = planConvChunks(gpu, 'conv2d.backwardInput', {
    dx: { ref: t.dx, side: 'in', written: true }, dy: { ref: t.dy, side: 'out' }, w: { ref: t.w, side: 'out' },
  }, Cin, Cout);
  if (inRanges.length === 1 && outRanges.length === 1) return conv2dBackwardInput(gpu, t);
  const tile = wholeTile(t, 'backwardInput', t.dx, t.w, t, Cin);
  return buildEach(inRanges.flatMap((ri) => outRanges.map((ro, k) => () => conv2dBackwardInput(gpu, {
    ...t, ...tile, dx: channelsOf(t.dx, ri), dy: channelsOf(t.dy, ro), w: channelsOf(t.w, ro), wChannelOffset: ri.start,
    accumulate: k > 0 || (t.accumulate ?? false),
  }))));
}

type BackwardFilterArgs = { x: TensorRef; dy: TensorRef; dw: TensorRef; inputTransform?: InputAffineRelu; tile?: ConvTile; workspace?: TensorRef } & Conv2dParams;

/**
 * conv2dBackwardFilter, split into channel chunks where an operand exceeds one binding: each
 * (input, output) chunk pair writes its block of dw. A tile that splits the pixel reduction keeps
 * its split (and the shared workspace) over output-channel chunks; input-channel chunks write
 * strided columns of dw, which the split's sum cannot, so they run the tile unsplit.
 */
export async function conv2dBackwardFilterChunked(gpu: Gpu, t: BackwardFilterArgs): Promise<Launch[]> {
  const [Cout, Cin] = [t.dw.shape[0], t.x.shape[0]];
  // A split tile writes its partial sums (splits × the dw chunk) to the workspace: that binding must fit too.
  const splits = t.tile?.splits ?? 1;
  const workspace: Record<string, SidedOperand> = splits > 1 && t.workspace
    ? { workspace: { ref: { buffer: t.workspace.buffer, offset: t.workspace.offset, shape: [Cout, splits * sizeOf(t.dw.shape.slice(1))] }, side: 'out', written: true } }
    : {};
  const { inRanges, outRanges } = planConvChunks(gpu, 'conv2d.backwardFilter', {
    dw: { ref: t.dw, side: 'out', written: true }, x: { ref: t.x, side: 'in' }, dy: { ref: t.dy, side: 'out' }, ...transformSides(t.inputTransform), ...workspace,
  }, Cin, Cout);
  if (inRanges.length === 1 && outRanges.length === 1) return conv2dBackwardFilter(gpu, t);
  // The default filter tiles never split (conv2d_tiles.ts); a tuned one may.
  const whole = t.tile ?? chooseConvTile('backwardFilter', t.x.shape, t.dw.shape, t);
  const tile = inRanges.length > 1 ? { ...whole, splits: 1 } : whole;
  return buildEach(outRanges.flatMap((ro) => inRanges.map((ri) => () => conv2dBackwardFilter(gpu, {
    ...t, x: channelsOf(t.x, ri), dy: channelsOf(t.dy, ro), dw: channelsOf(t.dw, ro), wChannelOffset: ri.start,
    inputTransform: transformOf(t.inputTransform, ri), tile,
  }))));
}

/** Kernel option types re-exported for callers that only import the chunked entry points. */
export type { ConvTile, ConvVariantOptions, InputAffineRelu };
