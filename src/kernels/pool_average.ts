// Average pooling 2×2, stride 2, no padding (DenseNet transition layers), channel-major
// [C, N, H, W] → [C, N, ⌊H/2⌋, ⌊W/2⌋]. An odd last row/column is dropped, as tf.avgPool 'valid'
// and torch.nn.AvgPool2d(2) do; its gradient is 0 (or left untouched when accumulating).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { kernelClass } from '../gpu/profile.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { activationDims, ELEMENTWISE_WORKGROUP as WG, type Shape4 } from './pool_common.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

/** Output shape of avgPool2x2 for an input [C, N, H, W]. */
export function avgPool2x2OutputShape(shape: Shape4): Shape4 {
  const [C, N, H, W] = shape;
  return [C, N, Math.floor(H / 2), Math.floor(W / 2)];
}

export function avgPool2x2Reference(x: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = avgPool2x2OutputShape(shape);
  const y = new Float64Array(C * N * Ho * Wo);
  for (let p = 0; p < C * N; p++) {
    for (let ho = 0; ho < Ho; ho++) {
      for (let wo = 0; wo < Wo; wo++) {
        const b = (p * H + 2 * ho) * W + 2 * wo;
        y[(p * Ho + ho) * Wo + wo] = 0.25 * (x[b] + x[b + 1] + x[b + W] + x[b + W + 1]);
      }
    }
  }
  return y;
}

/** dx for an input of `shape` (the dropped odd row/column gets 0). */
export function avgPool2x2BackwardReference(dy: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = avgPool2x2OutputShape(shape);
  const dx = new Float64Array(C * N * H * W);
  for (let p = 0; p < C * N; p++) {
    for (let h = 0; h < 2 * Ho; h++) {
      for (let w = 0; w < 2 * Wo; w++) dx[(p * H + h) * W + w] = 0.25 * dy[(p * Ho + (h >> 1)) * Wo + (w >> 1)];
    }
  }
  return dx;
}

/**
 * Outputs (2×2 blocks) one invocation handles along a row. On lavapipe each invocation is costly
 * (and its index arithmetic, three integer divisions, more so): 8 per invocation measured 2.7×
 * faster forward and 4× faster backward than 1 at [48, 16, 32, 32] (2 CPU cores). On a real GPU
 * one per invocation keeps every thread busy and loads coalesced, as tfjs-webgpu does.
 */
export function defaultBlocksPerInvocation(gpu: Gpu): number {
  return kernelClass(gpu) === 'software' ? 8 : 1;
}

// Invocation i covers outputs [wo0, wo0 + R) of output row `row` (= plane·Ho + ho); x is
// [planes, H, W], y [planes, Ho, Wo].
const forwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let wo0 = (i % u.runs) * R;
  let row = i / u.runs;
  let ho = row % u.ho;
  let plane = row / u.ho;
  let b = u.xOffset + (plane * u.h + 2u * ho) * u.w + 2u * wo0;
  let o = u.yOffset + row * u.wo + wo0;
  for (var r = 0u; r < R; r++) {
    if (wo0 + r >= u.wo) { break; }
    let c = b + 2u * r;
    y[o + r] = 0.25 * (x[c] + x[c + 1u] + x[c + u.w] + x[c + u.w + 1u]);
  }`;

// Invocation i covers 2×2 blocks [bw0, bw0 + R) of block row bh of a plane tiled by ⌈H/2⌉×⌈W/2⌉
// blocks, so every dx element is written by exactly one invocation (no races), including an odd
// last row/column (blocks outside the Ho×Wo outputs: 0, or untouched when accumulating).
const backwardDecls = /* wgsl */ `
fn put(at: u32, g: f32) {
  if (ACCUMULATE) { dx[at] += g; } else { dx[at] = g; }
}`;

const backwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let bw0 = (i % u.runs) * R;
  let blockRow = i / u.runs;
  let bh = blockRow % u.hh;
  let plane = blockRow / u.hh;
  let top = u.dxOffset + (plane * u.h + 2u * bh) * u.w;
  let hasBottom = 2u * bh + 1u < u.h;
  for (var r = 0u; r < R; r++) {
    let bw = bw0 + r;
    if (bw >= u.wh) { break; }
    let inside = bh < u.ho && bw < u.wo;
    if (ACCUMULATE && !inside) { continue; }
    var g = 0.0;
    if (inside) { g = 0.25 * dy[u.dyOffset + (plane * u.ho + bh) * u.wo + bw]; }
    let c = top + 2u * bw;
    let hasRight = 2u * bw + 1u < u.w;
    put(c, g);
    if (hasRight) { put(c + 1u, g); }
    if (hasBottom) {
      put(c + u.w, g);
      if (hasRight) { put(c + u.w + 1u, g); }
    }
  }`;

function inputDims(op: string, name: string, ref: TensorRef): Shape4 {
  const dims = activationDims(op, name, ref);
  if (dims[2] < 2 || dims[3] < 2) throw new ShapeError(`${op}: "${name}" ${fmt(dims)} is smaller than the 2×2 window`);
  return dims;
}

function blocksPerInvocation(gpu: Gpu, op: string, r: number | undefined): number {
  const blocks = r ?? defaultBlocksPerInvocation(gpu);
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > 64) throw new RangeError(`${op}: blocksPerInvocation must be an integer in [1, 64], got ${r}`);
  return blocks;
}

export interface AvgPoolOptions {
  /** Outputs per invocation along a row (default: defaultBlocksPerInvocation). */
  blocksPerInvocation?: number;
}

export async function avgPool2x2Forward(gpu: Gpu, t: { x: TensorRef; y: TensorRef } & AvgPoolOptions): Promise<Launch[]> {
  const op = 'avgPool2x2';
  const [C, N, H, W] = inputDims(op, 'x', t.x);
  const [, , Ho, Wo] = avgPool2x2OutputShape([C, N, H, W]);
  expectShape(op, 'y', t.y, [C, N, Ho, Wo]);
  const R = blocksPerInvocation(gpu, op, t.blocksPerInvocation);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, y: { ref: t.y, written: true } });
  const program = await gpu.compile(b.program({
    name: 'avgPool2x2.forward', key: `R=${R}`, workgroupSize: [WG], body: `const R = ${R}u;`, main: forwardMain,
    uniforms: [...uniformsU32('count', 'runs', 'h', 'w', 'ho', 'wo'), ...offsetUniforms(['x', 'y'])],
  }));
  const runs = Math.ceil(Wo / R);
  const count = C * N * Ho * runs;
  return [gpu.launch(program, b.buffers, { count, runs, h: H, w: W, ho: Ho, wo: Wo, ...b.offsets }, Math.ceil(count / WG))];
}

export async function avgPool2x2Backward(gpu: Gpu, t: { dy: TensorRef; dx: TensorRef; accumulate?: boolean } & AvgPoolOptions): Promise<Launch[]> {
  const op = 'avgPool2x2.backward';
  const [C, N, H, W] = inputDims(op, 'dx', t.dx);
  const [, , Ho, Wo] = avgPool2x2OutputShape([C, N, H, W]);
  expectShape(op, 'dy', t.dy, [C, N, Ho, Wo]);
  const R = blocksPerInvocation(gpu, op, t.blocksPerInvocation);
  const b = bindOperands(gpu.limits, op, { dy: { ref: t.dy }, dx: { ref: t.dx, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile(b.program({
    name: 'avgPool2x2.backward', key: `acc=${accumulate};R=${R}`, workgroupSize: [WG],
    body: `const ACCUMULATE = ${accumulate};\nconst R = ${R}u;\n${backwardDecls}`, main: backwardMain,
    uniforms: [...uniformsU32('count', 'runs', 'h', 'w', 'ho', 'wo', 'hh', 'wh'), ...offsetUniforms(['dy', 'dx'])],
  }));
  const [hh, wh] = [Math.ceil(H / 2), Math.ceil(W / 2)];
  const runs = Math.ceil(wh / R);
  const count = C * N * hh * runs;
  return [gpu.launch(program, b.buffers, { count, runs, h: H, w: W, ho: Ho, wo: Wo, hh, wh, ...b.offsets }, Math.ceil(count / WG))];
}
