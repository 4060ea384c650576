// WGSL generators for conv2d. Each program is specialised on the kernel geometry (KH, KW, stride,
// padding), the register tile and the variant flags, so taps unroll and index maths on constants
// folds; sizes, offsets and channel counts travel as uniforms.
//
// Cost model, measured on lavapipe (llvmpipe runs a workgroup's invocations as 8-wide SIMD lanes
// of one CPU thread): every storage-buffer load costs about the same, ~10 cycles per 8 lanes,
// whether its index is uniform (scalar load + broadcast) or per-lane (a gather); a loop iteration
// costs about as much as a load; FMAs are nearly free; barriers are costly (DESIGN.md §5). So the
// programs use no workgroup memory and minimise loads per FMA: each thread keeps a rows × cols
// register tile, and a value loaded from x feeds every kernel tap it takes part in:
//  - forward / backward-input: a thread's `cols` pixels are consecutive in one output row, so for
//    one kernel row the (cols−1)·stride + KW input values under them are loaded once and used by
//    all KW taps (a 3×3 conv loads cols+2 values per channel and kernel row instead of 3·cols);
//  - backward-filter: the pixel loop is uniform across the workgroup and slides a KW-wide window
//    along each input row, so each step loads `stride` new values per kernel row.
// Bounds checks that do not depend on the channel are hoisted out of the channel loop.
// Tried and dropped: staging the workgroup's weights in workgroup memory as vec4s of 4 rows (a
// barrier pair per chunk of channels) ran at 0.5–1.1× this (3×3 forward 8.5 vs 7.6 GFLOP/s,
// backward-input 3.0 vs 6.7, 1×1 3.9 vs 6.0): with a barrier llvmpipe runs the shader as
// coroutines and every other load gets slower. vec4 storage loads save only ~20% per float.

// Operands are named by role (src, wt, dy, dst, scale, shift); binding.ts renames those read
// through another operand's binding.

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lines = (n: number, f: (i: number) => string) => range(n).map(f).join('\n');
/** Expands `f(i, j)` over a rows × cols tile, one statement per line. */
const grid = (rows: number, cols: number, f: (i: number, j: number) => string) =>
  range(rows).flatMap((i) => range(cols).map((j) => f(i, j))).join('\n');

/** The affine+ReLU input transform applied to a loaded value (scale/shift are WGSL expressions). */
function transformed(v: string, scale: string, shift: string, on: boolean): string {
  return on ? `max(fma(${v}, ${scale}, ${shift}), 0.0)` : v;
}

/** `for (; v < end; v++)` with `body(k)` (copy k of the iteration) repeated `unroll` times per iteration, plus a remainder loop. */
function unrolledLoop(v: string, end: string, unroll: number, body: (k: number) => string): string {
  if (unroll <= 1) return `  for (; ${v} < ${end}; ${v}++) {\n${body(0)}\n  }`;
  return `  for (; ${v} + ${unroll - 1}u < ${end}; ${v} += ${unroll}u) {\n${range(unroll).map((k) => body(k)).join('\n')}\n  }
  for (; ${v} < ${end}; ${v}++) {\n${body(0)}\n  }`;
}

/** A GEMM-like program's first lines: its block `g` (past the end: return) and first output row `m0`. */
const blockStart = (rows: number) => `  let g = group;\n  if (g >= u.blocks) { return; }\n  let m0 = (g % u.mBlocks) * ${rows}u;`;
/** Writes (or, accumulating, adds) `value` to dst[o]. */
const store = (accumulate: boolean, value: string) => `dst[o] = ${accumulate ? 'dst[o] + ' : ''}${value};`;

export interface RowConvProgram {
  /** forward: dst = y, src = x (M = Cout, C = Cin); backwardInput (stride 1 only): dst = dx, src = dy (M = Cin, C = Cout). */
  mode: 'forward' | 'backwardInput';
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  rows: number; cols: number; workgroupSize: number;
  /** Channels per iteration of the channel loop (loop overhead matters when KH·KW is small). */
  unroll: number;
  transform: boolean; accumulate: boolean;
}

export const ROW_CONV_UNIFORMS = [
  'M', 'C', 'Q', 'srcH', 'srcW', 'dstH', 'dstW', 'srcPlane', 'owBlocks', 'items', 'mBlocks', 'blocks', 'mStride', 'cStride',
  'srcOffset', 'wOffset', 'dstOffset', 'scaleOffset', 'shiftOffset',
] as const;

/**
 * Implicit GEMM dst[M, Q] = Σ_{c, kh, kw} weight(m, c, kh, kw) · src(c, tap-shifted pixel):
 * forward (y = w ⊛ x, any stride) and stride-1 backward-input (dx = w flipped ⊛ dy, i.e. the
 * transposed convolution). A thread holds `rows` output rows (the same for the whole workgroup,
 * so weight loads are uniform) × `cols` consecutive pixels of one output image row.
 */
export function rowConvMain(p: RowConvProgram): string {
  const { rows: TM, cols: TN, kh: KH, kw: KW } = p;
  const fwd = p.mode === 'forward';
  if (!fwd && (p.sh !== 1 || p.sw !== 1)) throw new Error('rowConvMain: backward-input needs stride 1');
  // Source elements under one kernel row of the thread's pixels, and which one (pixel j, tap kw) reads.
  const E = fwd ? (TN - 1) * p.sw + KW : TN + KW - 1;
  const element = (j: number, kw: number) => (fwd ? j * p.sw + kw : j - kw + KW - 1);
  const rowCheck = !fwd || p.ph > 0;
  const colCheck = !fwd || p.pw > 0;
  // Kernel rows run as a loop (only the KW taps of a row unroll): unrolling the 3 rows of a 3×3
  // conv ran no faster on lavapipe but doubled its LLVM compile, the bulk of a cold start (the
  // 8×14 tile of 3×3 forward: 15 s of CPU unrolled, 8 s looped; run time 8.1 vs 8.0 ms, measured
  // interleaved in one process; see README, "Time to the first step").
  const unrollRows = KH === 1;
  const kernelRow = (kh: string) => {
    const loads = lines(E, (e) => {
      const ok = [rowCheck ? 'rowOk' : '', colCheck ? `colOk${e}` : ''].filter(Boolean).join(' && ');
      const v = transformed(`src[u32(rb + ${e})]`, 'sc', 'sf', p.transform);
      return `      let x${e} = ${ok ? `select(0.0, ${v}, ${ok})` : v};`;
    });
    const taps = range(KW).map((kw) => `${lines(TM, (i) => `      let w${i}_${kw} = wt[wc${i} + ${kh} * ${KW}u + ${kw}u];`)}
${grid(TM, TN, (i, j) => `      a${i}_${j} = fma(w${i}_${kw}, x${element(j, kw)}, a${i}_${j});`)}`).join('\n');
    return `    {
      let r = r0 ${fwd ? '+' : '-'} i32(${kh});
${rowCheck ? '      let rowOk = u32(r) < u.srcH;' : ''}
      let rb = xc + base + r * W;
${loads}
${taps}
    }`;
  };
  const channel = (k: number) => `  {
${p.transform ? `    let sc = scale[u.scaleOffset + c + ${k}u];\n    let sf = shift[u.shiftOffset + c + ${k}u];` : ''}
${unrollRows ? range(KH).map((kh) => kernelRow(`${kh}u`)).join('\n') : `    for (var kh = 0u; kh < ${KH}u; kh++) {\n${kernelRow('kh')}\n    }`}
    xc += i32(u.srcPlane);
${lines(TM, (i) => `    wc${i} += u.cStride;`)}
  }`;
  const stores = grid(TM, TN, (i, j) => `  if (live && m0 + ${i}u < u.M && ow0 + ${j}u < u.dstW) {
    let o = u.dstOffset + (m0 + ${i}u) * u.Q + out + ${j}u;
    ${store(p.accumulate, `a${i}_${j}`)}
  }`);
  return /* wgsl */ `
${blockStart(TM)}
  let item = (g / u.mBlocks) * WG_X + lid;
  let live = item < u.items;
  let it = min(item, u.items - 1u);
  let row = it / u.owBlocks;
  let oh = row % u.dstH;
  let n = row / u.dstH;
  let ow0 = (it % u.owBlocks) * ${TN}u;
  let out = row * u.dstW + ow0;
  let W = i32(u.srcW);
  // Source row of kernel row 0 and source column of element 0.
  let r0 = ${fwd ? `i32(oh * ${p.sh}u) - ${p.ph}` : `i32(oh) + ${p.ph}`};
  let c0 = ${fwd ? `i32(ow0 * ${p.sw}u) - ${p.pw}` : `i32(ow0) + ${p.pw - (KW - 1)}`};
  let base = i32(n * u.srcH * u.srcW) + c0;
${colCheck ? lines(E, (e) => `  let colOk${e} = u32(c0 + ${e}) < u.srcW;`) : ''}
${lines(TM, (i) => `  var wc${i} = u.wOffset + min(m0 + ${i}u, u.M - 1u) * u.mStride;`)}
${grid(TM, TN, (i, j) => `  var a${i}_${j} = 0.0;`)}
  var xc = i32(u.srcOffset);
  var c = 0u;
${unrolledLoop('c', 'u.C', p.unroll, channel)}
${stores}
`;
}

export interface StridedBackwardInputProgram {
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  rows: number; cols: number; workgroupSize: number; accumulate: boolean;
}

export const STRIDED_BACKWARD_INPUT_UNIFORMS = [
  'M', 'Q', 'C', 'srcH', 'srcW', 'dstH', 'dstW', 'srcPlane', 'mBlocks', 'blocks', 'mStride', 'cStride',
  'srcOffset', 'wOffset', 'dstOffset',
] as const;

/**
 * Backward-input for stride > 1 (in DenseNet only the stem has a stride, and the stem's input, the
 * image, needs no gradient): dx[ci, ih, iw] gathers dy[co, (ih + p − kh)/s, (iw + p − kw)/s] where
 * the division is exact. Each thread holds `rows` input channels × `cols` pixels spaced by the
 * workgroup size; each tap checks divisibility per pixel.
 */
export function stridedBackwardInputMain(p: StridedBackwardInputProgram): string {
  const { rows: TM, cols: TN } = p;
  const setup = lines(TN, (j) => `
  let q${j} = min(qBase + ${j}u * WG_X, u.Q - 1u);
  let th${j} = i32((q${j} / u.dstW) % u.dstH) + ${p.ph};
  let tw${j} = i32(q${j} % u.dstW) + ${p.pw};
  let nb${j} = i32((q${j} / (u.dstW * u.dstH)) * u.srcH * u.srcW);`);
  const tap = (kh: string, kw: string, tapIndex: string) => `    {
${lines(TN, (j) => `      let h${j} = th${j} - ${kh};
      let v${j} = tw${j} - ${kw};
      let ok${j} = h${j} >= 0 && v${j} >= 0 && h${j} % ${p.sh} == 0 && v${j} % ${p.sw} == 0 && h${j} / ${p.sh} < i32(u.srcH) && v${j} / ${p.sw} < i32(u.srcW);
      let x${j} = select(0.0, src[u32(xc + nb${j} + (h${j} / ${p.sh}) * W + v${j} / ${p.sw})], ok${j});`)}
${lines(TM, (i) => `      let w${i} = wt[wc${i} + ${tapIndex}];`)}
${grid(TM, TN, (i, j) => `      a${i}_${j} = fma(w${i}, x${j}, a${i}_${j});`)}
    }`;
  const stores = grid(TM, TN, (i, j) => `  if (m0 + ${i}u < u.M && qBase + ${j}u * WG_X < u.Q) {
    let o = u.dstOffset + (m0 + ${i}u) * u.Q + q${j};
    ${store(p.accumulate, `a${i}_${j}`)}
  }`);
  return /* wgsl */ `
${blockStart(TM)}
  let qBase = (g / u.mBlocks) * (WG_X * ${TN}u) + lid;
  let W = i32(u.srcW);
${setup}
${lines(TM, (i) => `  var wc${i} = u.wOffset + min(m0 + ${i}u, u.M - 1u) * u.mStride;`)}
${grid(TM, TN, (i, j) => `  var a${i}_${j} = 0.0;`)}
  var xc = i32(u.srcOffset);
  for (var c = 0u; c < u.C; c++) {
    for (var kh = 0; kh < ${p.kh}; kh++) {
      for (var kw = 0; kw < ${p.kw}; kw++) {
${tap('kh', 'kw', `u32(kh * ${p.kw} + kw)`)}
      }
    }
    xc += i32(u.srcPlane);
${lines(TM, (i) => `    wc${i} += u.cStride;`)}
  }
${stores}
`;
}

export interface FilterGradProgram {
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  rows: number; cols: number; workgroupSize: number;
  /** Kernel rows per thread (≤ KH): large kernels (the 7×7 stem) spread their rows over workgroups to bound the accumulators. */
  kernelRows: number;
  /** Output pixels per iteration of the pixel loop. */
  unroll: number;
  transform: boolean;
}

export const FILTER_GRAD_UNIFORMS = [
  'Cout', 'Cin', 'dwCin', 'H', 'W', 'Ho', 'Wo', 'rows', 'plane', 'coBlocks', 'khBlocks', 'ciBlocks', 'blocks', 'rowsPerSplit', 'splitStride',
  'xOffset', 'dyOffset', 'dwOffset', 'scaleOffset', 'shiftOffset',
] as const;

/**
 * dw[co, ci, kh, kw] = Σ_{n, oh, ow} dy[co, n, oh, ow] · x'[ci, n, oh·s − p + kh, ow·s − p + kw].
 * A thread holds `rows` output channels (the same for the whole workgroup, so dy loads are
 * uniform) × `cols` input channels (one per lane block) × `kernelRows` kernel rows × KW taps. The
 * loop over output pixels is uniform: bounds checks are scalar, and a KW-wide window per kernel
 * row slides along the input row. Workgroups may split the N·Ho output rows (split-K); each split
 * then writes its partial sums `splitStride` elements after the previous one. dw's rows are `dwCin`
 * input channels long (Cin, or more where x is a channel chunk of a longer weight: conv2d_chunked.ts).
 */
export function filterGradMain(p: FilterGradProgram): string {
  const { rows: TM, cols: TC, kh: KH, kw: KW, sw: S, kernelRows: KR } = p;
  const KK = KH * KW;
  const fresh = Math.min(S, KW); // window entries loaded per step; the others shift along
  const win = (t: number, r: number, e: number) => `x${t}_${r}_${e}`;
  const acc = (i: number, t: number, r: number, kw: number) => `a${i}_${t}_${r}_${kw}`;
  const each = <T>(f: (i: number, t: number, r: number, kw: number) => T) =>
    range(TM).flatMap((i) => range(TC).flatMap((t) => range(KR).flatMap((r) => range(KW).map((kw) => f(i, t, r, kw)))));
  const windows = <T>(f: (t: number, r: number) => T) => range(TC).flatMap((t) => range(KR).map((r) => f(t, r)));
  // With no padding every tap of every output pixel lies inside the image: no checks.
  const load = (t: number, r: number, iw: string) => {
    const v = transformed(`src[u32(xb${t} + rb${r} + ${iw})]`, `sc${t}`, `sf${t}`, p.transform);
    const ok = [p.ph > 0 ? `rowOk${r}` : '', p.pw > 0 ? `u32(${iw}) < u.W` : ''].filter(Boolean).join(' && ');
    return ok ? `select(0.0, ${v}, ${ok})` : v;
  };
  const step = () => `  {
${lines(TM, (i) => `        let d${i} = dy[dc${i} + pix];`)}
${windows((t, r) => lines(KW, (e) => e < KW - fresh
    ? `        ${win(t, r, e)} = ${win(t, r, e + fresh)};`
    : `        ${win(t, r, e)} = ${load(t, r, `iw + ${e}`)};`)).join('\n')}
${each((i, t, r, kw) => `        ${acc(i, t, r, kw)} = fma(d${i}, ${win(t, r, kw)}, ${acc(i, t, r, kw)});`).join('\n')}
        iw += ${S};
        pix++;
  }`;
  const stores = range(TM).flatMap((i) => range(TC).flatMap((t) => range(KR).map((r) => `  if (co0 + ${i}u < u.Cout && ciBase + ${t}u < u.Cin && kh0 + ${r}u < ${KH}u) {
    let o${i}_${t}_${r} = u.dwOffset + split * u.splitStride + ((co0 + ${i}u) * u.dwCin + ciBase + ${t}u) * ${KK}u + (kh0 + ${r}u) * ${KW}u;
${lines(KW, (kw) => `    dst[o${i}_${t}_${r} + ${kw}u] = ${acc(i, t, r, kw)};`)}
  }`))).join('\n');
  return /* wgsl */ `
  let g = group;
  if (g >= u.blocks) { return; }
  let co0 = (g % u.coBlocks) * ${TM}u;
  let kh0 = ${KR === KH ? '0u' : `((g / u.coBlocks) % u.khBlocks) * ${KR}u`};
  let rest = g / (u.coBlocks * u.khBlocks);
  let split = rest / u.ciBlocks;
  let ciBase = ((rest % u.ciBlocks) * WG_X + lid) * ${TC}u;
  let W = i32(u.W);
${lines(TC, (t) => `  let ci${t} = min(ciBase + ${t}u, u.Cin - 1u);
  let xb${t} = i32(u.xOffset + ci${t} * u.plane);
${p.transform ? `  let sc${t} = scale[u.scaleOffset + ci${t}];\n  let sf${t} = shift[u.shiftOffset + ci${t}];` : ''}`)}
${lines(KR, (r) => `  let kr${r} = i32(min(kh0 + ${r}u, ${KH - 1}u)) - ${p.ph};`)}
${lines(TM, (i) => `  let dc${i} = u.dyOffset + min(co0 + ${i}u, u.Cout - 1u) * u.rows * u.Wo;`)}
${each((i, t, r, kw) => `  var ${acc(i, t, r, kw)} = 0.0;`).join('\n')}
${windows((t, r) => lines(KW, (e) => `  var ${win(t, r, e)} = 0.0;`)).join('\n')}
  let rowEnd = min((split + 1u) * u.rowsPerSplit, u.rows);
  for (var row = split * u.rowsPerSplit; row < rowEnd; row++) {
    let oh = row % u.Ho;
    let imageBase = i32((row / u.Ho) * u.H * u.W);
${lines(KR, (r) => `    let ih${r} = i32(oh * ${p.sh}u) + kr${r};
    let rowOk${r} = u32(ih${r}) < u.H;
    let rb${r} = imageBase + ih${r} * W;`)}
    // The window before the first step holds the columns left of the row (iw = −s − p + e).
    var iw = ${-S - p.pw};
${windows((t, r) => lines(KW - fresh, (e) => `    ${win(t, r, e + fresh)} = ${load(t, r, `iw + ${e + fresh}`)};`)).join('\n')}
    iw += ${S};
    var pix = row * u.Wo;
    var ow = 0u;
${unrolledLoop('ow', 'u.Wo', p.unroll, step)}
  }
${stores}
`;
}

export const SPLIT_SUM_UNIFORMS = ['count', 'splits', 'srcOffset', 'dstOffset'] as const;

/** dst[i] = Σ_s src[s·count + i]: sums backward-filter's split-K partial sums into dw. */
export function splitSumMain(): string {
  return /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.splits; k++) { s += src[u.srcOffset + k * u.count + i]; }
  dst[u.dstOffset + i] = s;
`;
}

export const NAIVE_UNIFORMS = [
  'count', 'Cin', 'N', 'H', 'W', 'Ho', 'Wo', 'KH', 'KW', 'strideH', 'strideW', 'padH', 'padW',
  'xOffset', 'wOffset', 'yOffset', 'scaleOffset', 'shiftOffset',
] as const;

/** Direct convolution, one output element per thread, everything a uniform: the debugging oracle. */
export function naiveConvMain(transform: boolean): string {
  return /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let ow = i % u.Wo;
  let oh = (i / u.Wo) % u.Ho;
  let n = (i / (u.Wo * u.Ho)) % u.N;
  let co = i / (u.Wo * u.Ho * u.N);
  var acc = 0.0;
  for (var ci = 0u; ci < u.Cin; ci++) {
    for (var kh = 0u; kh < u.KH; kh++) {
      let ih = i32(oh * u.strideH + kh) - i32(u.padH);
      if (ih < 0 || ih >= i32(u.H)) { continue; }
      for (var kw = 0u; kw < u.KW; kw++) {
        let iw = i32(ow * u.strideW + kw) - i32(u.padW);
        if (iw < 0 || iw >= i32(u.W)) { continue; }
        var v = src[u.xOffset + ((ci * u.N + n) * u.H + u32(ih)) * u.W + u32(iw)];
${transform ? `        v = max(v * scale[u.scaleOffset + ci] + shift[u.shiftOffset + ci], 0.0);` : ''}
        acc += wt[u.wOffset + ((co * u.Cin + ci) * u.KH + kh) * u.KW + kw] * v;
      }
    }
  }
  dst[u.yOffset + i] = acc;
`;
}
