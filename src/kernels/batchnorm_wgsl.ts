// WGSL for batch normalization (launch code in batchnorm.ts). Per-channel reductions run one
// workgroup per channel: each invocation sums a strided share of the channel's M = N·H·W values in
// registers, then a tree in workgroup memory combines WG_X partial sums (log2(WG_X) barriers, the
// only barriers in these kernels: they are costly on lavapipe, DESIGN.md §5). Elementwise kernels
// run C × chunks workgroups, so the channel is known per workgroup and no per-element division
// is needed; each invocation handles ITEMS values strided by WG_X (coalesced).

/**
 * Values per invocation in the elementwise kernels (forward and backward dx). Lavapipe pays a
 * fixed cost per workgroup: with 4 the forward on [120, 16, 32, 32] took ~3× longer than with 64
 * (measured with timeLaunches, 2 cores); 64·WG_X values per workgroup still leaves C × M/4096
 * workgroups for a real GPU.
 */
export const ELEMENTWISE_ITEMS = 64;

/** Tree sum of the workgroup arrays `names` (each array<f32, WG_X>); the totals are at [0] afterwards, for every invocation. */
function treeReduction(fnName: string, names: string[]): string {
  return `
fn ${fnName}(lid: u32) {
  for (var stride = WG_X / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) {
${names.map((n) => `      ${n}[lid] += ${n}[lid + stride];`).join('\n')}
    }
  }
  workgroupBarrier();
}`;
}

/**
 * Mean and biased variance per channel, two-pass: the mean first, then Σ(x − mean)² corrected by
 * (Σ(x − mean))²/M (the compensated two-pass formula), so that a channel whose mean is large
 * against its spread loses no precision to cancellation, unlike E[x²] − E[x]².
 */
export const statisticsDecls = /* wgsl */ `
var<workgroup> partialSum: array<f32, WG_X>;
var<workgroup> partialSquares: array<f32, WG_X>;
var<workgroup> partialResidual: array<f32, WG_X>;
${treeReduction('reduceSum', ['partialSum'])}
${treeReduction('reduceDeviations', ['partialSquares', 'partialResidual'])}`;
export const statisticsMain = /* wgsl */ `
  let c = group;
  // c is uniform across the workgroup, so this return keeps the barriers below in uniform control flow.
  if (c >= u.channels) { return; }
  let base = u.xOffset + c * u.count;
  var s = 0.0;
  for (var i = lid; i < u.count; i += WG_X) { s += x[base + i]; }
  partialSum[lid] = s;
  reduceSum(lid);
  let mu = partialSum[0] / f32(u.count);
  var squares = 0.0;
  var residual = 0.0;
  for (var i = lid; i < u.count; i += WG_X) {
    let d = x[base + i] - mu;
    squares += d * d;
    residual += d;
  }
  partialSquares[lid] = squares;
  partialResidual[lid] = residual;
  reduceDeviations(lid);
  if (lid == 0u) {
    let m = f32(u.count);
    let r = partialResidual[0];
    mean[u.meanOffset + c] = mu + r / m;
    variance[u.varianceOffset + c] = max((partialSquares[0] - r * r / m) / m, 0.0);
  }`;

/** Shared head of the elementwise kernels: the channel, the chunk's first index, and the channel's affine. */
const elementwiseHead = /* wgsl */ `
  let g = group;
  let c = g / u.chunks;
  if (c >= u.channels) { return; }
  let start = (g - c * u.chunks) * (WG_X * ITEMS) + lid;
  let mu = mean[u.meanOffset + c];
  let invstd = inverseSqrt(variance[u.varianceOffset + c] + u.eps);
  let scale = gamma[u.gammaOffset + c] * invstd;
  let shift = beta[u.betaOffset + c];
  let xBase = u.xOffset + c * u.count;`;

/** y = (x − mean)·scale + beta (then ReLU). The backward recomputes the pre-ReLU value with the same expression. */
export const forwardMain = /* wgsl */ `${elementwiseHead}
  let yBase = u.yOffset + c * u.count;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG_X;
    if (i < u.count) {
      var v = (x[xBase + i] - mu) * scale + shift;
      if (RELU) { v = max(v, 0.0); }
      y[yBase + i] = v;
    }
  }`;

/** dy' (dy masked by the recomputed ReLU when RELU). */
export const maskedGradient = /* wgsl */ `
      var gy = dy[dyBase + i];
      if (RELU) { gy = select(0.0, gy, xm * scale + shift > 0.0); }`;

/** Per channel: dbeta = Σdy', dgamma = Σdy'·x̂ (written, not accumulated: parameter gradients). */
export const backwardReduceDecls = /* wgsl */ `
var<workgroup> partialDy: array<f32, WG_X>;
var<workgroup> partialDyX: array<f32, WG_X>;
${treeReduction('reduceGradients', ['partialDy', 'partialDyX'])}`;
export const backwardReduceMain = /* wgsl */ `
  let c = group;
  if (c >= u.channels) { return; }
  let mu = mean[u.meanOffset + c];
  let invstd = inverseSqrt(variance[u.varianceOffset + c] + u.eps);
  let scale = gamma[u.gammaOffset + c] * invstd;
  let shift = beta[u.betaOffset + c];
  let xBase = u.xOffset + c * u.count;
  let dyBase = u.dyOffset + c * u.count;
  var sumDy = 0.0;
  var sumDyX = 0.0;
  for (var i = lid; i < u.count; i += WG_X) {
    let xm = x[xBase + i] - mu;${maskedGradient}
    sumDy += gy;
    sumDyX += gy * xm;
  }
  partialDy[lid] = sumDy;
  partialDyX[lid] = sumDyX;
  reduceGradients(lid);
  if (lid == 0u) {
    dbeta[u.dbetaOffset + c] = partialDy[0];
    dgamma[u.dgammaOffset + c] = partialDyX[0] * invstd;
  }`;

/**
 * dx = gamma·invstd/M·(M·dy' − Σdy' − x̂·Σdy'x̂), rearranged per channel as
 * scale·dy' − k0 − k1·(x − mean) so that each element costs two multiply-adds.
 */
export const backwardDataMain = /* wgsl */ `${elementwiseHead}
  let dyBase = u.dyOffset + c * u.count;
  let dxBase = u.dxOffset + c * u.count;
  let perValue = scale / f32(u.count);
  let k0 = perValue * dbeta[u.dbetaOffset + c];
  let k1 = perValue * invstd * dgamma[u.dgammaOffset + c];
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG_X;
    if (i < u.count) {
      let xm = x[xBase + i] - mu;${maskedGradient}
      var d = scale * gy - k0 - k1 * xm;
      if (ACCUMULATE) { d += dx[dxBase + i]; }
      dx[dxBase + i] = d;
    }
  }`;

/** One invocation per channel. */
export const updateRunningMain = /* wgsl */ `
  let c = index;
  if (c >= u.channels) { return; }
  let m = u.momentum;
  let rm = runningMean[u.runningMeanOffset + c];
  let rv = runningVariance[u.runningVarianceOffset + c];
  runningMean[u.runningMeanOffset + c] = (1.0 - m) * rm + m * mean[u.meanOffset + c];
  runningVariance[u.runningVarianceOffset + c] = (1.0 - m) * rv + m * (variance[u.varianceOffset + c] * u.unbias);`;

/** One invocation per channel. */
export const affineMain = /* wgsl */ `
  let c = index;
  if (c >= u.channels) { return; }
  let s = gamma[u.gammaOffset + c] * inverseSqrt(variance[u.varianceOffset + c] + u.eps);
  scale[u.scaleOffset + c] = s;
  shift[u.shiftOffset + c] = beta[u.betaOffset + c] - mean[u.meanOffset + c] * s;`;
