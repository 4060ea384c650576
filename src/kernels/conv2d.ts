// 2-D convolution (no bias) over channel-major activations: forward, gradient w.r.t. the input and
// gradient w.r.t. the weights, with an optional BN→ReLU transform fused into the input load.
// Layouts: x [Cin, N, H, W] (may be a channel prefix of a dense block's buffer), w [Cout, Cin, KH, KW]
// (PyTorch OIHW), y [Cout, N, Ho, Wo] (may be a channel slice of a larger buffer, even of the
// buffer x is in).
//
// Every conv is an implicit GEMM with K = Cin·KH·KW, each thread computing a register tile of
// outputs (conv2d_wgsl.ts says why there is no workgroup memory); a 1×1 stride-1 unpadded conv
// is the plain GEMM Y[Cout × NHW] = W[Cout × Cin] · X[Cin × NHW]. Tiles: conv2d_tiles.ts.
// Forward and backward-input also have a GPU-class variant (`variant: 'workgroup'`): the same
// GEMM tiled through workgroup memory with coalesced loads (conv2d_workgroup.ts); the register
// variant stays the default, the fastest on lavapipe.
//
// Backward-filter reduces over N·Ho·Wo inside each thread; its parallelism comes from the
// Cout × Cin·KH outputs. A tile with `splits` > 1 adds split-K over the output rows: partial sums
// go to a caller-owned workspace (conv2dBackwardFilterWorkspaceElements says how big) and a second
// launch sums them, so every function returns Launch[]. Nothing here allocates beyond the
// uniform buffers each Launch owns (freed by its destroy()).
//
// inputTransform: x' = max(x·scale[c] + shift[c], 0) is applied while loading x in forward and
// recomputed in backward-filter; padding is zero in x' space. backward-input returns ∂L/∂x' (the
// caller's BN-ReLU backward masks it).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, refuseOverlaps, uniformsU32, type BoundOperands } from './binding.js';
import { conv2dOutputSize, normalizeConvParams, type Conv2dParams } from './conv2d_reference.js';
import {
  FILTER_GRAD_UNIFORMS, filterGradMain, NAIVE_UNIFORMS, naiveConvMain, ROW_CONV_UNIFORMS, rowConvMain, SPLIT_SUM_UNIFORMS, splitSumMain,
  STRIDED_BACKWARD_INPUT_UNIFORMS, stridedBackwardInputMain,
} from './conv2d_wgsl.js';
import {
  checkTile, chooseTile, CONV_TILES, DEFAULT_CONV_TILE, DEFAULT_FILTER_TILE, FILTER_ACCUMULATORS, isPlainGemm, type ConvGeometry, type ConvTile,
} from './conv2d_tiles.js';
import { expectShape, fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';
import { checkWorkgroupTile, chooseWorkgroupTile, workgroupGemmLaunch, WORKGROUP_TILES, type WorkgroupTile } from './conv2d_workgroup.js';

export { chooseWorkgroupTile, CONV_TILES, DEFAULT_CONV_TILE, DEFAULT_FILTER_TILE, WORKGROUP_TILES, type ConvTile, type WorkgroupTile };

/**
 * Which program runs forward and backward-input: 'register' (default; register tiles straight
 * from global memory, the fastest on lavapipe) or 'workgroup' (an implicit GEMM tiled through
 * workgroup memory, coalesced: for GPUs), with `workgroupTile` (default chooseWorkgroupTile).
 */
export type ConvVariant = 'register' | 'workgroup';
export interface ConvVariantOptions { variant?: ConvVariant; workgroupTile?: WorkgroupTile }

export {
  affineReluReference, conv2dBackwardFilterReference, conv2dBackwardInputReference, conv2dOutputSize, conv2dReference,
  type Conv2dParams,
} from './conv2d_reference.js';

/** Optional per-input-channel BN→ReLU applied while loading x: x' = max(x·scale[c] + shift[c], 0). */
export interface InputAffineRelu { scale: TensorRef; shift: TensorRef }

interface Geometry extends ConvGeometry {
  Cin: number; Cout: number; N: number; H: number; W: number; Ho: number; Wo: number;
  /** Input channels of the weight tensor (w's second axis): Cin, or more where x is a channel chunk (wChannelOffset). */
  CinW: number;
}

/**
 * For channel-chunked convs (conv2d_chunked.ts): x holds input channels [wChannelOffset,
 * wChannelOffset + Cin) of the weight tensor `w` (or `dw`), whose second axis may then be longer
 * than x's channel count. The kernels read (or write) those columns through strides; 0 by default.
 */
export interface WeightChannelWindow { wChannelOffset?: number }

function checkParams(op: string, params: Conv2dParams): { stride: [number, number]; padding: [number, number] } {
  const p = normalizeConvParams(params);
  if (!p.stride.every((s) => Number.isInteger(s) && s >= 1)) throw new ShapeError(`${op}: stride ${fmt(p.stride)} must be whole numbers >= 1`);
  if (!p.padding.every((s) => Number.isInteger(s) && s >= 0)) throw new ShapeError(`${op}: padding ${fmt(p.padding)} must be whole numbers >= 0`);
  return p;
}

/** Checks x, w and the output-side tensor; returns the geometry. `out` is y (forward) or dy (backward). */
function geometry(
  op: string, x: { name: string; ref: TensorRef }, w: { name: string; ref: TensorRef }, out: { name: string; ref: TensorRef }, params: Conv2dParams & WeightChannelWindow,
): Geometry {
  expectShape(op, x.name, x.ref, [-1, -1, -1, -1]);
  const [Cin, N, H, W] = x.ref.shape;
  const window = params.wChannelOffset ?? 0;
  if (!Number.isInteger(window) || window < 0) throw new ShapeError(`${op}: wChannelOffset must be a whole number >= 0, got ${window}`);
  if (params.wChannelOffset === undefined) expectShape(op, w.name, w.ref, [-1, Cin, -1, -1]);
  else expectShape(op, w.name, w.ref, [-1, -1, -1, -1]);
  const [Cout, CinW, KH, KW] = w.ref.shape;
  if (window + Cin > CinW) {
    throw new ShapeError(`${op}: "${x.name}" ${fmt(x.ref.shape)} at weight channel ${window} needs ${window + Cin} input channels but "${w.name}" ${fmt(w.ref.shape)} has ${CinW}`);
  }
  const { stride: [sh, sw], padding: [ph, pw] } = checkParams(op, params);
  const [Ho, Wo] = conv2dOutputSize(H, W, KH, KW, params);
  if (Ho < 1 || Wo < 1) {
    throw new ShapeError(`${op}: a ${KH}×${KW} kernel with padding ${fmt([ph, pw])} does not fit "${x.name}" ${fmt(x.ref.shape)}`);
  }
  expectShape(op, out.name, out.ref, [Cout, N, Ho, Wo]);
  return { Cin, Cout, N, H, W, KH, KW, Ho, Wo, sh, sw, ph, pw, CinW };
}

function checkTransform(op: string, t: InputAffineRelu | undefined, Cin: number): void {
  if (!t) return;
  expectShape(op, 'inputTransform.scale', t.scale, [Cin]);
  expectShape(op, 'inputTransform.shift', t.shift, [Cin]);
}

interface Operand { role: 'src' | 'wt' | 'dy' | 'dst' | 'scale' | 'shift'; name: string; ref: TensorRef }

/**
 * Binds the written operand and the read ones by the binding rule (binding.ts); a dense block's
 * layer reads a prefix of the buffer it writes into, and when the two share a 256-byte block the
 * prefix is read through the output's binding. Bindings and offsets are named by role (the WGSL's
 * names); errors name the operands as the caller knows them.
 */
function bindConv(gpu: Gpu, op: string, written: Operand, reads: Operand[]): BoundOperands {
  const all = [written, ...reads];
  const byName = Object.fromEntries(all.map((o) => [o.name, { ref: o.ref, written: o === written }]));
  refuseOverlaps(op, byName);
  return bindOperands(gpu.limits, op, Object.fromEntries(all.map((o) => [o.role, { ref: o.ref, written: o === written }])));
}

function transformOperands(t: InputAffineRelu | undefined): Operand[] {
  return t ? [{ role: 'scale', name: 'inputTransform.scale', ref: t.scale }, { role: 'shift', name: 'inputTransform.shift', ref: t.shift }] : [];
}

const uniformsOf = (names: readonly string[]) => uniformsU32(...names);

/**
 * The tile a kernel uses when the caller passes none (shapes as the kernel takes them: x [Cin, N, H, W],
 * w [Cout, Cin, KH, KW]). For benchmarks and reports; no checks.
 */
export function chooseConvTile(
  kernel: 'forward' | 'backwardInput' | 'backwardFilter', xShape: readonly number[], wShape: readonly number[], params: Conv2dParams = {},
): ConvTile {
  const { stride: [sh, sw], padding: [ph, pw] } = normalizeConvParams(params);
  const [Cout, Cin, KH, KW] = wShape;
  const g = { KH, KW, sh, sw, ph, pw };
  const [, Wo] = conv2dOutputSize(xShape[2], xShape[3], KH, KW, params);
  if (kernel === 'forward') return chooseTile('gemm', g, Cout, Wo);
  if (kernel === 'backwardInput') return chooseTile('gemm', g, Cin, xShape[3]);
  return chooseTile('filter', g, Cout, Wo);
}

/** y = conv2d(x', w) with x' = x or the fused BN→ReLU of x. */
export async function conv2dForward(
  gpu: Gpu, t: { x: TensorRef; w: TensorRef; y: TensorRef; inputTransform?: InputAffineRelu; tile?: ConvTile; accumulate?: boolean } & ConvVariantOptions & Conv2dParams & WeightChannelWindow,
): Promise<Launch[]> {
  const op = 'conv2d';
  const g = geometry(op, { name: 'x', ref: t.x }, { name: 'w', ref: t.w }, { name: 'y', ref: t.y }, t);
  checkTransform(op, t.inputTransform, g.Cin);
  const workgroup = checkVariant(gpu, op, t, g.Cout);
  const tile = workgroup ? undefined : checkTile(gpu, op, t.tile ?? chooseTile('gemm', g, g.Cout, g.Wo));
  const bound = bindConv(gpu, op, { role: 'dst', name: 'y', ref: t.y },
    [{ role: 'src', name: 'x', ref: t.x }, { role: 'wt', name: 'w', ref: t.w }, ...transformOperands(t.inputTransform)]);
  const KK = g.KH * g.KW;
  const accumulate = t.accumulate ?? false;
  windowOffsets(bound, 'wtOffset', g, t.wChannelOffset);
  if (workgroup) {
    return [await workgroupGemmLaunch(gpu, op, 'forward', g, workgroup, !!t.inputTransform, accumulate, bound, {
      M: g.Cout, C: g.Cin, N: g.N, srcH: g.H, srcW: g.W, dstH: g.Ho, dstW: g.Wo, mStride: g.CinW * KK, cStride: KK,
    })];
  }
  if (!tile) throw new Error('unreachable');
  return [await rowConvLaunch(gpu, op, 'forward', g, tile, !!t.inputTransform, accumulate, bound, {
    M: g.Cout, C: g.Cin, srcH: g.H, srcW: g.W, dstH: g.Ho, dstW: g.Wo, N: g.N, mStride: g.CinW * KK, cStride: KK,
  })];
}

/** dx (=, or += with accumulate) = ∂L/∂x' given dy = ∂L/∂y. */
export async function conv2dBackwardInput(
  gpu: Gpu, t: { dy: TensorRef; w: TensorRef; dx: TensorRef; accumulate?: boolean; tile?: ConvTile } & ConvVariantOptions & Conv2dParams & WeightChannelWindow,
): Promise<Launch[]> {
  const op = 'conv2d.backwardInput';
  const g = geometry(op, { name: 'dx', ref: t.dx }, { name: 'w', ref: t.w }, { name: 'dy', ref: t.dy }, t);
  const workgroup = checkVariant(gpu, op, t, g.Cin);
  const tile = workgroup ? undefined : checkTile(gpu, op, t.tile ?? chooseTile('gemm', g, g.Cin, g.W));
  const accumulate = t.accumulate ?? false;
  const bound = bindConv(gpu, op, { role: 'dst', name: 'dx', ref: t.dx },
    [{ role: 'src', name: 'dy', ref: t.dy }, { role: 'wt', name: 'w', ref: t.w }]);
  const KK = g.KH * g.KW;
  windowOffsets(bound, 'wtOffset', g, t.wChannelOffset);
  if (workgroup) {
    // The transposed convolution at any stride: dx[ci, q] = Σ_{co, tap} w[co, ci, tap] · dy at the tap's source pixel.
    return [await workgroupGemmLaunch(gpu, op, 'backwardInput', g, workgroup, false, accumulate, bound, {
      M: g.Cin, C: g.Cout, N: g.N, srcH: g.Ho, srcW: g.Wo, dstH: g.H, dstW: g.W, mStride: KK, cStride: g.CinW * KK,
    })];
  }
  if (!tile) throw new Error('unreachable');
  if (g.sh === 1 && g.sw === 1) {
    return [await rowConvLaunch(gpu, op, 'backwardInput', g, tile, false, accumulate, bound, {
      M: g.Cin, C: g.Cout, srcH: g.Ho, srcW: g.Wo, dstH: g.H, dstW: g.W, N: g.N, mStride: KK, cStride: g.CinW * KK,
    })];
  }
  const spec = { kh: g.KH, kw: g.KW, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw, rows: tile.rows, cols: tile.cols, workgroupSize: tile.workgroupSize, accumulate };
  const program = await gpu.compile(bound.program({
    name: `${op}.strided`, key: JSON.stringify(spec), workgroupSize: [tile.workgroupSize],
    body: '', main: stridedBackwardInputMain(spec), uniforms: uniformsOf(STRIDED_BACKWARD_INPUT_UNIFORMS),
  }));
  const Q = g.N * g.H * g.W;
  const mBlocks = Math.ceil(g.Cin / tile.rows);
  const blocks = mBlocks * Math.ceil(Q / (tile.cols * tile.workgroupSize));
  const o = bound.offsets;
  return [gpu.launch(program, bound.buffers, {
    M: g.Cin, Q, C: g.Cout, srcH: g.Ho, srcW: g.Wo, dstH: g.H, dstW: g.W, srcPlane: g.N * g.Ho * g.Wo, mBlocks, blocks,
    mStride: KK, cStride: g.CinW * KK, srcOffset: o.srcOffset, wOffset: o.wtOffset, dstOffset: o.dstOffset,
  }, blocks)];
}

/** The workgroup tile when `variant` is 'workgroup' (checked), else undefined; refuses a tile given for the other variant. */
function checkVariant(gpu: Gpu, op: string, t: ConvVariantOptions & { tile?: ConvTile }, M: number): WorkgroupTile | undefined {
  const variant = t.variant ?? 'register';
  if (variant !== 'register' && variant !== 'workgroup') throw new ShapeError(`${op}: variant "${String(variant)}" is unknown; use 'register' or 'workgroup'`);
  if (variant === 'register') {
    if (t.workgroupTile) throw new ShapeError(`${op}: workgroupTile is given but variant is 'register'; pass variant: 'workgroup'`);
    return undefined;
  }
  if (t.tile) throw new ShapeError(`${op}: a register tile is given with variant 'workgroup'; pass workgroupTile instead`);
  return checkWorkgroupTile(gpu, op, t.workgroupTile ?? chooseWorkgroupTile(M));
}

async function rowConvLaunch(
  gpu: Gpu, op: string, mode: 'forward' | 'backwardInput', g: Geometry, tile: ConvTile, transform: boolean, accumulate: boolean,
  bound: BoundOperands, sizes: Record<'M' | 'C' | 'srcH' | 'srcW' | 'dstH' | 'dstW' | 'N' | 'mStride' | 'cStride', number>,
): Promise<Launch> {
  const unroll = tile.unroll ?? 1;
  const spec = {
    mode, kh: g.KH, kw: g.KW, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw,
    rows: tile.rows, cols: tile.cols, workgroupSize: tile.workgroupSize, unroll, transform, accumulate,
  };
  const program = await gpu.compile(bound.program({
    name: op, key: JSON.stringify(spec), workgroupSize: [tile.workgroupSize],
    body: '', main: rowConvMain(spec), uniforms: uniformsOf(ROW_CONV_UNIFORMS),
  }));
  let { srcH, srcW, dstH, dstW, N } = sizes;
  const { M, C, mStride, cStride } = sizes;
  if (isPlainGemm(g)) {
    // 1×1, stride 1, no padding: the plain GEMM over the N·H·W pixels as one row, so a thread's
    // pixels may run across image rows and no lane idles at the end of a short row.
    [N, srcH, dstH] = [1, 1, 1];
    srcW = dstW = sizes.N * sizes.dstH * sizes.dstW;
  }
  const owBlocks = Math.ceil(dstW / tile.cols);
  const items = N * dstH * owBlocks;
  const mBlocks = Math.ceil(M / tile.rows);
  const blocks = mBlocks * Math.ceil(items / tile.workgroupSize);
  const o = bound.offsets;
  return gpu.launch(program, bound.buffers, {
    M, C, Q: N * dstH * dstW, srcH, srcW, dstH, dstW, srcPlane: N * srcH * srcW, owBlocks, items, mBlocks, blocks, mStride, cStride,
    srcOffset: o.srcOffset, wOffset: o.wtOffset, dstOffset: o.dstOffset, scaleOffset: o.scaleOffset ?? 0, shiftOffset: o.shiftOffset ?? 0,
  }, blocks);
}

/**
 * Elements of workspace conv2dBackwardFilter needs for this geometry and tile: splits × |dw| when
 * the tile splits the pixel reduction (split-K), else 0. The caller owns the workspace (a
 * 'workspace' arena buffer it allocates and frees); it may be shared by every conv of a step.
 */
export function conv2dBackwardFilterWorkspaceElements(wShape: readonly number[], tile?: ConvTile): number {
  const splits = tile?.splits ?? 1;
  return splits > 1 ? splits * sizeOf(wShape) : 0;
}

/**
 * dw (=) = ∂L/∂w given x (and the same inputTransform as forward) and dy = ∂L/∂y. With a tile whose
 * `splits` > 1, the N·Ho output rows are split among that many workgroup sets whose partial sums go
 * to `workspace` (see conv2dBackwardFilterWorkspaceElements), and a second launch sums them into dw.
 */
export async function conv2dBackwardFilter(
  gpu: Gpu,
  t: { x: TensorRef; dy: TensorRef; dw: TensorRef; inputTransform?: InputAffineRelu; tile?: ConvTile; workspace?: TensorRef } & Conv2dParams & WeightChannelWindow,
): Promise<Launch[]> {
  const op = 'conv2d.backwardFilter';
  const g = geometry(op, { name: 'x', ref: t.x }, { name: 'dw', ref: t.dw }, { name: 'dy', ref: t.dy }, t);
  checkTransform(op, t.inputTransform, g.Cin);
  const tile = checkTile(gpu, op, t.tile ?? chooseTile('filter', g, g.Cout, g.Wo));
  const rows = g.N * g.Ho;
  const splits = Math.min(tile.splits ?? 1, Math.max(rows, 1));
  if (splits > 1 && g.CinW !== g.Cin) throw new ShapeError(`${op}: a tile that splits the reduction cannot write a channel window of "dw" (wChannelOffset); use splits 1`);
  const dwSize = sizeOf(t.dw.shape);
  let target = t.dw;
  if (splits > 1) {
    const needed = conv2dBackwardFilterWorkspaceElements(t.dw.shape, tile);
    if (!t.workspace) throw new ShapeError(`${op}: tile ${JSON.stringify(tile)} splits the reduction and needs a workspace of ${needed} elements`);
    if (t.workspace.shape.length !== 1 || t.workspace.shape[0] < needed) {
      throw new ShapeError(`${op}: "workspace" has shape ${fmt(t.workspace.shape)}, expected at least [${needed}]`);
    }
    expectShape(op, 'workspace', t.workspace, [-1]);
    target = { buffer: t.workspace.buffer, offset: t.workspace.offset, shape: [splits * dwSize] };
  }
  const bound = bindConv(gpu, op, { role: 'dst', name: splits > 1 ? 'workspace' : 'dw', ref: target },
    [{ role: 'src', name: 'x', ref: t.x }, { role: 'dy', name: 'dy', ref: t.dy }, ...transformOperands(t.inputTransform)]);
  // Accumulators per thread: rows·cols·kernelRows·KW. Large kernels (the 7×7 stem) spread their
  // kernel rows over workgroups: kernelRows is the largest divisor of KH that keeps within budget.
  let kernelRows = Math.max(1, Math.min(g.KH, Math.floor(FILTER_ACCUMULATORS / (tile.rows * tile.cols * g.KW))));
  while (g.KH % kernelRows !== 0) kernelRows--;
  const spec = {
    kh: g.KH, kw: g.KW, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw, rows: tile.rows, cols: tile.cols, workgroupSize: tile.workgroupSize,
    kernelRows, unroll: tile.unroll ?? 1, transform: !!t.inputTransform,
  };
  const program = await gpu.compile(bound.program({
    name: op, key: JSON.stringify(spec), workgroupSize: [tile.workgroupSize],
    body: '', main: filterGradMain(spec), uniforms: uniformsOf(FILTER_GRAD_UNIFORMS),
  }));
  const sum = splits > 1 ? bindConv(gpu, `${op}.splitSum`, { role: 'dst', name: 'dw', ref: t.dw }, [{ role: 'src', name: 'workspace', ref: target }]) : undefined;
  const sumProgram = sum && await gpu.compile(sum.program({
    name: `${op}.splitSum`, key: '', workgroupSize: [SPLIT_SUM_WORKGROUP],
    body: '', main: splitSumMain(), uniforms: uniformsOf(SPLIT_SUM_UNIFORMS),
  }));
  const coBlocks = Math.ceil(g.Cout / tile.rows);
  const khBlocks = Math.ceil(g.KH / kernelRows);
  const ciBlocks = Math.ceil(g.Cin / (tile.cols * tile.workgroupSize));
  const blocks = coBlocks * khBlocks * ciBlocks * splits;
  const o = bound.offsets;
  windowOffsets(bound, 'dstOffset', g, t.wChannelOffset);
  const launches = [gpu.launch(program, bound.buffers, {
    Cout: g.Cout, Cin: g.Cin, dwCin: g.CinW, H: g.H, W: g.W, Ho: g.Ho, Wo: g.Wo, rows, plane: g.N * g.H * g.W, coBlocks, khBlocks, ciBlocks, blocks,
    rowsPerSplit: Math.ceil(rows / splits), splitStride: splits > 1 ? dwSize : 0,
    xOffset: o.srcOffset, dyOffset: o.dyOffset, dwOffset: o.dstOffset, scaleOffset: o.scaleOffset ?? 0, shiftOffset: o.shiftOffset ?? 0,
  }, blocks)];
  if (sum && sumProgram) {
    launches.push(gpu.launch(sumProgram, sum.buffers, { count: dwSize, splits, srcOffset: sum.offsets.srcOffset, dstOffset: sum.offsets.dstOffset },
      Math.ceil(dwSize / SPLIT_SUM_WORKGROUP)));
  }
  return launches;
}

/** Moves the weight operand's offset to its first column of the channel window (wChannelOffset). */
function windowOffsets(bound: BoundOperands, offset: 'wtOffset' | 'dstOffset', g: Geometry, wChannelOffset = 0): void {
  bound.offsets[offset] += wChannelOffset * g.KH * g.KW;
}

const SPLIT_SUM_WORKGROUP = 64;
const NAIVE_WORKGROUP = 64;

/** Direct convolution, one output per thread: a debugging oracle kept behind the fast path. */
export async function conv2dNaiveForward(
  gpu: Gpu, t: { x: TensorRef; w: TensorRef; y: TensorRef; inputTransform?: InputAffineRelu } & Conv2dParams,
): Promise<Launch[]> {
  const op = 'conv2d.naive';
  const g = geometry(op, { name: 'x', ref: t.x }, { name: 'w', ref: t.w }, { name: 'y', ref: t.y }, t);
  checkTransform(op, t.inputTransform, g.Cin);
  const bound = bindConv(gpu, op, { role: 'dst', name: 'y', ref: t.y },
    [{ role: 'src', name: 'x', ref: t.x }, { role: 'wt', name: 'w', ref: t.w }, ...transformOperands(t.inputTransform)]);
  const program = await gpu.compile(bound.program({
    name: op, key: `transform=${!!t.inputTransform}`, workgroupSize: [NAIVE_WORKGROUP],
    body: '', main: naiveConvMain(!!t.inputTransform), uniforms: uniformsOf(NAIVE_UNIFORMS),
  }));
  const count = sizeOf(t.y.shape);
  const o = bound.offsets;
  return [gpu.launch(program, bound.buffers, {
    count, Cin: g.Cin, N: g.N, H: g.H, W: g.W, Ho: g.Ho, Wo: g.Wo, KH: g.KH, KW: g.KW, strideH: g.sh, strideW: g.sw, padH: g.ph, padW: g.pw,
    xOffset: o.srcOffset, wOffset: o.wtOffset, yOffset: o.dstOffset, scaleOffset: o.scaleOffset ?? 0, shiftOffset: o.shiftOffset ?? 0,
  }, Math.ceil(count / NAIVE_WORKGROUP))];
}
