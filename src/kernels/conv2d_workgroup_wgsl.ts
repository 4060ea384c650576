// WGSL for the GPU-class conv2d variant: forward and backward-input as an implicit GEMM tiled
// through workgroup memory (the register-tiled programs in conv2d_wgsl.ts stay the default).
//
// dst[M × Q] = A[M × K] · B[K × Q], K = C·KH·KW. Each workgroup computes one TM × TN tile of dst.
// Per step of TK along K, its threads copy a TM × TK slice of A (the weights) and a TK × TN slice
// of B (gathered from the source activations: the tap-shifted pixel, zero outside the image, the
// fused BN→ReLU applied in forward) into workgroup memory, then each thread accumulates its
// rows × cols register tile from there. The global loads of the next step go to registers while
// the workgroup computes on this one. Lanes next to each other load B at consecutive pixels q
// (consecutive addresses along N·H·W within an image row) and A at consecutive k (consecutive
// addresses of a weight row in forward), and store dst at consecutive q: coalesced. A thread's
// cols are spaced TN / cols apart so that its stores and its workgroup-memory reads stay coalesced.
// On a GPU the barriers are cheap and the staged data is reused TM (B) or TN (A) times; on
// lavapipe barriers turn the shader into coroutines (conv2d_wgsl.ts), which is why this is not
// the software default.

/** A workgroup tile: TM × TN outputs per workgroup, K staged TK at a time, rows × cols outputs per thread. */
export interface WorkgroupTile { m: number; n: number; k: number; rows: number; cols: number }

/** Threads per workgroup of a tile. */
export const workgroupThreads = (t: WorkgroupTile) => (t.m / t.rows) * (t.n / t.cols);
/**
 * Row stride of the staged A slice (stored k-major): m + 1, so that the lanes storing one k each
 * (consecutive k, as they read the weights) hit different banks instead of all of them bank m·k mod 32.
 */
export const aStride = (t: WorkgroupTile) => t.m + 1;
/** Workgroup memory a tile stages, in bytes. */
export const workgroupBytes = (t: WorkgroupTile) => (aStride(t) + t.n) * t.k * 4;

export interface WorkgroupGemmProgram {
  /** forward: dst = y, src = x (M = Cout, C = Cin); backwardInput: dst = dx, src = dy (M = Cin, C = Cout), any stride. */
  mode: 'forward' | 'backwardInput';
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
  /** 1×1, stride 1, no padding: B is src itself, [C × Q]. */
  plain: boolean;
  tile: WorkgroupTile;
  transform: boolean; accumulate: boolean;
  /**
   * vec4 loads (conv2d_workgroup_vec4.ts decides where they are aligned): `vec4A` reads the weights
   * four consecutive k at a time (forward, where a weight row is contiguous in k), `vec4B` reads
   * the source four consecutive pixels at a time (plain GEMM); the operand is then bound as
   * array<vec4<f32>> and its offsets are in floats, multiples of 4.
   */
  vec4A?: boolean; vec4B?: boolean;
}

export const WORKGROUP_GEMM_UNIFORMS = [
  'M', 'K', 'Q', 'srcH', 'srcW', 'dstH', 'dstW', 'srcPlane', 'mBlocks', 'blocks', 'mStride', 'cStride',
  'srcOffset', 'wOffset', 'dstOffset', 'scaleOffset', 'shiftOffset',
] as const;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lines = (n: number, f: (i: number) => string) => range(n).map(f).join('\n');

/** Module-scope declarations: the two staging arrays. */
export function workgroupGemmBody(p: WorkgroupGemmProgram): string {
  const { n: TN, k: TK } = p.tile;
  return `var<workgroup> tileA: array<f32, ${TK * aStride(p.tile)}>;\nvar<workgroup> tileB: array<f32, ${TK * TN}>;`;
}

/**
 * The entry point's statements. A(m, k) = wt[wOffset + m·mStride + (k / KK)·cStride + k % KK];
 * B(k, q) is src at channel k / KK, tap k % KK of pixel q: forward reads x at (oh·s − p + kh,
 * ow·s − p + kw), backward-input reads dy at ((ih + p − kh) / s, (iw + p − kw) / s) where the
 * division is exact and in range (the transposed convolution, any stride).
 */
export function workgroupGemmMain(p: WorkgroupGemmProgram): string {
  const { m: TM, n: TN, k: TK, rows: R, cols: CC } = p.tile;
  const T = workgroupThreads(p.tile);
  const AS = aStride(p.tile);
  const TX = TN / CC;
  const KK = p.kh * p.kw;
  const fwd = p.mode === 'forward';
  const aLoads = (TM * TK) / T;
  const bLoads = (TK * TN) / T;
  // Pixel q's source coordinates, computed once per thread (its B column is fixed: T is a multiple of TN).
  const pixelSetup = p.plain ? '' : `
  let ow = qc % u.dstW;
  let oh = (qc / u.dstW) % u.dstH;
  let imageBase = i32((qc / (u.dstW * u.dstH)) * u.srcH * u.srcW);
  ${fwd ? `let h0 = i32(oh * ${p.sh}u) - ${p.ph};\n  let w0 = i32(ow * ${p.sw}u) - ${p.pw};` : `let h0 = i32(oh) + ${p.ph};\n  let w0 = i32(ow) + ${p.pw};`}`;
  const gather = (l: number) => {
    const k = `kn + bk + ${l * (T / TN)}u`;
    if (p.plain) {
      return `    {
      let k = ${k};
      let c = min(k, u.K - 1u);
      let v = src[u.srcOffset + c * u.srcPlane + qc];
      pb${l} = select(0.0, ${p.transform ? 'max(fma(v, scale[u.scaleOffset + c], shift[u.shiftOffset + c]), 0.0)' : 'v'}, qOk && k < u.K);
    }`;
    }
    const coords = fwd
      ? `      let ih = h0 + i32(kh);
      let iw = w0 + i32(kw);
      let ok = qOk && k < u.K && u32(ih) < u.srcH && u32(iw) < u.srcW;`
      : `      let th = h0 - i32(kh);
      let tw = w0 - i32(kw);
      let ih = th / ${p.sh};
      let iw = tw / ${p.sw};
      let ok = qOk && k < u.K && th >= 0 && tw >= 0${p.sh > 1 ? ` && th % ${p.sh} == 0` : ''}${p.sw > 1 ? ` && tw % ${p.sw} == 0` : ''} && u32(ih) < u.srcH && u32(iw) < u.srcW;`;
    const load = `src[u32(i32(u.srcOffset + c * u.srcPlane) + imageBase + ih * i32(u.srcW) + iw)]`;
    const value = p.transform ? `max(fma(${load}, scale[u.scaleOffset + c], shift[u.shiftOffset + c]), 0.0)` : load;
    return `    {
      let k = ${k};
      let c = min(k, u.K - 1u) / ${KK}u;
      let t = k % ${KK}u;
      let kh = t / ${p.kw}u;
      let kw = t % ${p.kw}u;
${coords}
      pb${l} = select(0.0, ${value}, ok);
    }`;
  };
  const stage = (l: number) => `    {
      let m = am + ${l * (T / TK)}u;
      let k = kn + ak;
      let v = wt[u.wOffset + min(m0 + m, u.M - 1u) * u.mStride + (min(k, u.K - 1u) / ${KK}u) * u.cStride + k % ${KK}u];
      pa${l} = select(0.0, v, m0 + m < u.M && k < u.K);
    }`;
  // vec4 staging: A by rows of TK/4 vec4s (thread role am4, ak4), B by rows of TN/4 (bk4, bq4); a
  // slice of fewer vec4s than threads is loaded by the first threads only.
  const a4 = (TM * TK) / 4;
  const b4 = (TK * TN) / 4;
  const aLoads4 = Math.max(1, a4 / T);
  const bLoads4 = Math.max(1, b4 / T);
  const stage4 = (l: number) => `    {
      let m = am4 + ${l * (T / (TK / 4))}u;
      let k = kn + ak4 * 4u;
      let v = wt[(u.wOffset + min(m0 + m, u.M - 1u) * u.mStride + min(k, u.K - 4u)) / 4u];
      pa${l} = select(vec4<f32>(0.0), v, ${a4 < T ? `lid < ${a4}u && ` : ''}m0 + m < u.M && k < u.K);
    }`;
  const gather4 = (l: number) => {
    const v = p.transform ? 'max(fma(v, vec4<f32>(scale[u.scaleOffset + c]), vec4<f32>(shift[u.shiftOffset + c])), vec4<f32>(0.0))' : 'v';
    return `    {
      let k = kn + bk4 + ${l * (T / (TN / 4))}u;
      let c = min(k, u.K - 1u);
      let v = src[(u.srcOffset + c * u.srcPlane + qc4) / 4u];
      pb${l} = select(vec4<f32>(0.0), ${v}, ${b4 < T ? `lid < ${b4}u && ` : ''}qOk4 && k < u.K);
    }`;
  };
  const loads = `${p.vec4A ? lines(aLoads4, stage4) : lines(aLoads, stage)}\n${p.vec4B ? lines(bLoads4, gather4) : lines(bLoads, gather)}`;
  const storeA = p.vec4A
    ? `    if (${a4 < T ? `lid < ${a4}u` : 'true'}) {
${lines(aLoads4, (l) => lines(4, (e) => `      tileA[(ak4 * 4u + ${e}u) * ${AS}u + am4 + ${l * (T / (TK / 4))}u] = pa${l}[${e}];`))}
    }`
    : lines(aLoads, (l) => `    tileA[ak * ${AS}u + am + ${l * (T / TK)}u] = pa${l};`);
  const storeB = p.vec4B
    ? `    if (${b4 < T ? `lid < ${b4}u` : 'true'}) {
${lines(bLoads4, (l) => lines(4, (e) => `      tileB[(bk4 + ${l * (T / (TN / 4))}u) * ${TN}u + bq4 * 4u + ${e}u] = pb${l}[${e}];`))}
    }`
    : lines(bLoads, (l) => `    tileB[(bk + ${l * (T / TN)}u) * ${TN}u + bq] = pb${l};`);
  const roles4 = `
  let ak4 = lid % ${TK / 4}u;
  let am4 = lid / ${TK / 4}u;
  let bq4 = lid % ${TN / 4}u;
  let bk4 = lid / ${TN / 4}u;
  let qOk4 = q0 + bq4 * 4u < u.Q;
  let qc4 = min(q0 + bq4 * 4u, u.Q - 4u);`;
  const acc = (i: number, j: number) => `a${i}_${j}`;
  const fmas = range(R).flatMap((i) => range(CC).map((j) => `      ${acc(i, j)} = fma(x${i}, y${j}, ${acc(i, j)});`)).join('\n');
  const stores = range(R).flatMap((i) => range(CC).map((j) => `  {
    let m = m0 + ty * ${R}u + ${i}u;
    let q = q0 + tx + ${j * TX}u;
    if (m < u.M && q < u.Q) {
      let o = u.dstOffset + m * u.Q + q;
      dst[o] = ${p.accumulate ? 'dst[o] + ' : ''}${acc(i, j)};
    }
  }`)).join('\n');
  return /* wgsl */ `
  let g = group;
  if (g >= u.blocks) { return; }
  let m0 = (g % u.mBlocks) * ${TM}u;
  let q0 = (g / u.mBlocks) * ${TN}u;
  // Staging roles: A at (row am + l·T/TK, column ak), B at (row bk + l·T/TN, column bq).
  let ak = lid % ${TK}u;
  let am = lid / ${TK}u;
  let bq = lid % ${TN}u;
  let bk = lid / ${TN}u;
  let qOk = q0 + bq < u.Q;
  let qc = min(q0 + bq, u.Q - 1u);${pixelSetup}${p.vec4A || p.vec4B ? roles4 : ''}
  // Compute role: rows ty·R + i, columns tx + j·TX of the tile.
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
${range(R).flatMap((i) => range(CC).map((j) => `  var ${acc(i, j)} = 0.0;`)).join('\n')}
  // Global loads go to registers one step ahead (pa, pb), so that on a GPU they are in flight
  // while the workgroup computes on the previous slice.
${p.vec4A ? lines(aLoads4, (l) => `  var pa${l} = vec4<f32>(0.0);`) : lines(aLoads, (l) => `  var pa${l} = 0.0;`)}
${p.vec4B ? lines(bLoads4, (l) => `  var pb${l} = vec4<f32>(0.0);`) : lines(bLoads, (l) => `  var pb${l} = 0.0;`)}
  var kn = 0u;
${loads}
  for (var k0 = 0u; k0 < u.K; k0 += ${TK}u) {
${storeA}
${storeB}
    workgroupBarrier();
    kn = k0 + ${TK}u;
    if (kn < u.K) {
${loads}
    }
    for (var kk = 0u; kk < ${TK}u; kk++) {
${lines(R, (i) => `      let x${i} = tileA[kk * ${AS}u + ty * ${R}u + ${i}u];`)}
${lines(CC, (j) => `      let y${j} = tileB[kk * ${TN}u + tx + ${j * TX}u];`)}
${fmas}
    }
    workgroupBarrier();
  }
${stores}
`;
}
