// Max pooling 3×3, stride 2, padding 1 (the ImageNet DenseNet stem), channel-major
// [C, N, H, W] → [C, N, Ho, Wo] with Ho = ⌊(H + 2 − 3)/2⌋ + 1. Padding never wins: a window's
// maximum is taken over its in-image cells only (as with −∞ padding).
//
// The backward pass keeps no argmax indices: each dx element recomputes the argmax of the (at
// most 2×2) windows that contain it. Ties go to the FIRST maximum in row-major window order
// (strict `>` while scanning rows top to bottom, columns left to right), which is what the
// TensorFlow.js cpu backend does (maxPoolPositions); the whole dy of that window goes there.
// (tfjs starts its scan from −∞ and so gives no gradient to a window that is all −∞; we start
// from the window's first cell, so such a window routes its gradient to that cell.)

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { activationDims, ELEMENTWISE_WORKGROUP as WG, type Shape4 } from './pool_common.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

/** Output shape of maxPool3x3 (stride 2, padding 1) for an input [C, N, H, W]. */
export function maxPool3x3OutputShape(shape: Shape4): Shape4 {
  const [C, N, H, W] = shape;
  return [C, N, Math.floor((H - 1) / 2) + 1, Math.floor((W - 1) / 2) + 1];
}

/** Flat index inside one [H, W] plane of the first maximum of window (ho, wo). */
function windowArgmax(x: ArrayLike<number>, base: number, H: number, W: number, ho: number, wo: number): number {
  const r0 = Math.max(2 * ho - 1, 0), r1 = Math.min(2 * ho + 2, H);
  const c0 = Math.max(2 * wo - 1, 0), c1 = Math.min(2 * wo + 2, W);
  let best = r0 * W + c0;
  for (let r = r0; r < r1; r++) {
    for (let c = c0; c < c1; c++) if (x[base + r * W + c] > x[base + best]) best = r * W + c;
  }
  return best;
}

export function maxPool3x3Reference(x: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = maxPool3x3OutputShape(shape);
  const y = new Float64Array(C * N * Ho * Wo);
  for (let p = 0; p < C * N; p++) {
    for (let ho = 0; ho < Ho; ho++) {
      for (let wo = 0; wo < Wo; wo++) y[(p * Ho + ho) * Wo + wo] = x[p * H * W + windowArgmax(x, p * H * W, H, W, ho, wo)];
    }
  }
  return y;
}

/** dx for input x of `shape`: each window's dy goes to its first maximum. */
export function maxPool3x3BackwardReference(x: ArrayLike<number>, dy: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = maxPool3x3OutputShape(shape);
  const dx = new Float64Array(C * N * H * W);
  for (let p = 0; p < C * N; p++) {
    for (let ho = 0; ho < Ho; ho++) {
      for (let wo = 0; wo < Wo; wo++) dx[p * H * W + windowArgmax(x, p * H * W, H, W, ho, wo)] += dy[(p * Ho + ho) * Wo + wo];
    }
  }
  return dx;
}

// The forward's first maximum of window (ho, wo) of the plane starting at `base`, as (row,
// column). Every window holds its centre (2ho, 2wo), so it is never empty.
const argmaxFn = /* wgsl */ `
fn windowArgmax(base: u32, ho: u32, wo: u32) -> vec2<u32> {
  let r0 = select(2u * ho - 1u, 0u, ho == 0u);
  let r1 = min(2u * ho + 2u, u.h);
  let c0 = select(2u * wo - 1u, 0u, wo == 0u);
  let c1 = min(2u * wo + 2u, u.w);
  var best = x[base + r0 * u.w + c0];
  var at = vec2<u32>(r0, c0);
  for (var r = r0; r < r1; r++) {
    for (var c = c0; c < c1; c++) {
      let v = x[base + r * u.w + c];
      if (v > best) { best = v; at = vec2<u32>(r, c); }
    }
  }
  return at;
}`;

const forwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let wo = i % u.wo;
  let t = i / u.wo;
  let ho = t % u.ho;
  let base = u.xOffset + (t / u.ho) * u.h * u.w;
  let at = windowArgmax(base, ho, wo);
  y[u.yOffset + i] = x[base + at.x * u.w + at.y];`;

// One invocation per 2×2 block of input cells (2bh + a, 2bw + b), a, b ∈ {0, 1}. Row 2bh lies in
// window row bh only and row 2bh + 1 in bh and bh + 1 (likewise columns), so the block's cells
// receive gradient from windows (bh + dh, bw + dw), dh, dw ∈ {0, 1}, which together cover the 5×5
// region of rows 2bh − 1 … 2bh + 3 and columns 2bw − 1 … 2bw + 3. The invocation loads that region
// once (25 loads for 4 cells), finds each window's first maximum in it, and adds the window's dy
// to the block cell that holds it, summing in row-major window order as the reference does. A
// window whose maximum lies outside the block is also found by the neighbouring block that holds
// it; each block writes only its own cells. (The kernel this replaced had each input cell scan
// every window containing it: up to 36 loads per cell, and loops whose trip counts differed
// between neighbouring invocations.) Every index is clamped into the plane; the masks decide.
const REGION = 5;
const regionCells = Array.from({ length: REGION * REGION }, (_, k) => [Math.floor(k / REGION), k % REGION] as const);
const blockCells = [[0, 0], [0, 1], [1, 0], [1, 1]] as const;
const backwardMain = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let bw = i % u.bw;
  let t = i / u.bw;
  let bh = t % u.bh;
  let plane = t / u.bh;
  let base = u.xOffset + plane * u.h * u.w;
  let top = i32(2u * bh) - 1;
  let left = i32(2u * bw) - 1;
${Array.from({ length: REGION }, (_, r) => `  let row${r} = top + ${r};
  let rowOk${r} = row${r} >= 0 && row${r} < i32(u.h);
  let rowAt${r} = u32(clamp(row${r}, 0, i32(u.h) - 1)) * u.w;`).join('\n')}
${Array.from({ length: REGION }, (_, c) => `  let col${c} = left + ${c};
  let colOk${c} = col${c} >= 0 && col${c} < i32(u.w);
  let colAt${c} = u32(clamp(col${c}, 0, i32(u.w) - 1));`).join('\n')}
${regionCells.map(([r, c]) => `  let v${r}${c} = x[base + rowAt${r} + colAt${c}];`).join('\n')}
${blockCells.map(([a, b]) => `  var g${a}${b} = 0.0;`).join('\n')}
${blockCells.map(([dh, dw]) => `  {
    let ho = bh + ${dh}u;
    let wo = bw + ${dw}u;
    var found = false;
    var best = 0.0;
    var at = ${REGION * REGION}u;
${[0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => {
    const [R, C] = [2 * dh + r, 2 * dw + c];
    return `    if (rowOk${R} && colOk${C} && (!found || v${R}${C} > best)) { best = v${R}${C}; at = ${R * REGION + C}u; found = true; }`;
  })).join('\n')}
    let exists = ho < u.ho && wo < u.wo;
    let d = select(0.0, dy[u.dyOffset + (plane * u.ho + min(ho, u.ho - 1u)) * u.wo + min(wo, u.wo - 1u)], exists);
${blockCells.map(([a, b]) => `    g${a}${b} += select(0.0, d, exists && at == ${(1 + a) * REGION + 1 + b}u);`).join('\n')}
  }`).join('\n')}
${blockCells.map(([a, b]) => `  if (rowOk${1 + a} && colOk${1 + b}) {
    let o = u.dxOffset + plane * u.h * u.w + u32(row${1 + a}) * u.w + u32(col${1 + b});
    dx[o] = select(g${a}${b}, g${a}${b} + dx[o], ACCUMULATE);
  }`).join('\n')}`;

function inputDims(op: string, name: string, ref: TensorRef): Shape4 {
  const dims = activationDims(op, name, ref);
  if (dims[2] < 1 || dims[3] < 1) throw new ShapeError(`${op}: "${name}" ${fmt(dims)} has an empty image`);
  return dims;
}

export async function maxPool3x3Forward(gpu: Gpu, t: { x: TensorRef; y: TensorRef }): Promise<Launch[]> {
  const op = 'maxPool3x3';
  const [C, N, H, W] = inputDims(op, 'x', t.x);
  const [, , Ho, Wo] = maxPool3x3OutputShape([C, N, H, W]);
  expectShape(op, 'y', t.y, [C, N, Ho, Wo]);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, y: { ref: t.y, written: true } });
  const program = await gpu.compile(b.program({
    name: 'maxPool3x3.forward', key: '', workgroupSize: [WG], body: argmaxFn, main: forwardMain,
    uniforms: [...uniformsU32('count', 'h', 'w', 'ho', 'wo'), ...offsetUniforms(['x', 'y'])],
  }));
  const count = C * N * Ho * Wo;
  return [gpu.launch(program, b.buffers, { count, h: H, w: W, ho: Ho, wo: Wo, ...b.offsets }, Math.ceil(count / WG))];
}

export async function maxPool3x3Backward(gpu: Gpu, t: { x: TensorRef; dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  const op = 'maxPool3x3.backward';
  const [C, N, H, W] = inputDims(op, 'x', t.x);
  const [, , Ho, Wo] = maxPool3x3OutputShape([C, N, H, W]);
  expectShape(op, 'dy', t.dy, [C, N, Ho, Wo]);
  expectShape(op, 'dx', t.dx, [C, N, H, W]);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, dy: { ref: t.dy }, dx: { ref: t.dx, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile(b.program({
    name: 'maxPool3x3.backward', key: `blocks acc=${accumulate}`, workgroupSize: [WG],
    body: `const ACCUMULATE = ${accumulate};`, main: backwardMain,
    uniforms: [...uniformsU32('count', 'h', 'w', 'ho', 'wo', 'bh', 'bw'), ...offsetUniforms(['x', 'dy', 'dx'])],
  }));
  const [BH, BW] = [Math.ceil(H / 2), Math.ceil(W / 2)];
  const count = C * N * BH * BW;
  return [gpu.launch(program, b.buffers, { count, h: H, w: W, ho: Ho, wo: Wo, bh: BH, bw: BW, ...b.offsets }, Math.ceil(count / WG))];
}
