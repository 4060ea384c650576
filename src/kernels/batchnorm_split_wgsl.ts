// WGSL of the split-reduction variant of batch-norm statistics and backward (launch code in
// batchnorm_split.ts): each channel's M = N·H·W values are cut into `chunks` chunks of
// `chunkLength` values, one workgroup per (channel, chunk), so that even 12 channels fill a large
// GPU; each writes two partials to a workspace, and a second, tiny pass (one workgroup per channel)
// combines them. Partials live at workspace[workspaceOffset + 2·(c·chunks + k) + {0, 1}].

import { maskedGradient } from './batchnorm_wgsl.js';
import { workgroupReduce } from './reduction_wgsl.js';

/** `fn name(v: T, lid: u32) -> T`: the sum of v over the workgroup, returned to every invocation (reduction_wgsl.ts). */
const workgroupTotal = (name: string, type: 'f32' | 'vec2<f32>', subgroups: boolean) => workgroupReduce(name, type, 'add', subgroups);

/** The chunk this workgroup reduces: channel c, chunk k, its first value `start` and its length n (≥ 1). */
const chunkHead = /* wgsl */ `
  let c = group / u.chunks;
  // c is uniform across the workgroup, so this return keeps the barriers below in uniform control flow.
  if (c >= u.channels) { return; }
  let k = group - c * u.chunks;
  let start = k * u.chunkLength;
  let n = min(u.chunkLength, u.count - start);
  let slot = u.workspaceOffset + 2u * group;`;

/**
 * Per chunk: its mean and M2 = Σ(x − chunk mean)², by the same compensated two-pass formula as the
 * per-channel kernel (batchnorm_wgsl.ts), so no chunk loses precision to a large mean. The mean is
 * stored relative to the channel's first value K (the shift): a float32 mean of ~1000 carries only
 * ~3e-5 absolute, which Chan's δ² term would turn into a variance error of ~1e-4 relative for
 * 3-value chunks of 1000 + noise (measured); mean − K is exact (Sterbenz) and small, so the
 * stored offset keeps the chunk mean's full precision.
 */
export function splitStatisticsPartialDecls(subgroups: boolean): string {
  return workgroupTotal('totalOf', 'f32', subgroups) + workgroupTotal('totalsOf', 'vec2<f32>', subgroups);
}
export const splitStatisticsPartialMain = /* wgsl */ `${chunkHead}
  let base = u.xOffset + c * u.count + start;
  var s = 0.0;
  for (var i = lid; i < n; i += WG_X) { s += x[base + i]; }
  let m = f32(n);
  let mu = totalOf(s, lid) / m;
  var squares = 0.0;
  var residual = 0.0;
  for (var i = lid; i < n; i += WG_X) {
    let d = x[base + i] - mu;
    squares += d * d;
    residual += d;
  }
  let deviations = totalsOf(vec2<f32>(squares, residual), lid);
  if (lid == 0u) {
    let r = deviations.y;
    workspace[slot] = (mu - x[u.xOffset + c * u.count]) + r / m;
    workspace[slot + 1u] = max(deviations.x - r * r / m, 0.0);
  }`;

/**
 * Chan et al.'s pairwise update of (count, mean, M2): the merged M2 adds δ²·na·nb/n, where δ is the
 * difference of the two means, never a difference of large sums, so merging loses no more than
 * the chunks' own rounding. An empty side (count 0) returns the other unchanged.
 */
const chanMerge = /* wgsl */ `
fn chanMerge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let wb = b.x / n;
  return vec3<f32>(n, a.y + d * wb, a.z + b.z + d * d * a.x * wb);
}`;

/** One workgroup per channel: each invocation merges a strided share of the chunks, then a tree merges the invocations; the mean adds back the shift K. */
export const splitStatisticsCombineDecls = /* wgsl */ `
var<workgroup> merged: array<vec3<f32>, WG_X>;
${chanMerge}`;
export const splitStatisticsCombineMain = /* wgsl */ `
  let c = group;
  if (c >= u.channels) { return; }
  var acc = vec3<f32>(0.0, 0.0, 0.0);
  for (var k = lid; k < u.chunks; k += WG_X) {
    let nb = f32(min(u.chunkLength, u.count - k * u.chunkLength));
    let slot = u.workspaceOffset + 2u * (c * u.chunks + k);
    acc = chanMerge(acc, vec3<f32>(nb, workspace[slot], workspace[slot + 1u]));
  }
  merged[lid] = acc;
  for (var stride = WG_X / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) { merged[lid] = chanMerge(merged[lid], merged[lid + stride]); }
  }
  if (lid == 0u) {
    let total = merged[0];
    mean[u.meanOffset + c] = x[u.xOffset + c * u.count] + total.y;
    variance[u.varianceOffset + c] = total.z / f32(u.count);
  }`;

/** Per chunk: Σdy' and Σdy'·(x − mean) over the chunk (dy' masked by the recomputed ReLU when RELU). */
export function splitBackwardPartialDecls(subgroups: boolean): string {
  return workgroupTotal('totalsOf', 'vec2<f32>', subgroups);
}
export const splitBackwardPartialMain = /* wgsl */ `${chunkHead}
  let mu = mean[u.meanOffset + c];
  let invstd = inverseSqrt(variance[u.varianceOffset + c] + u.eps);
  let scale = gamma[u.gammaOffset + c] * invstd;
  let shift = beta[u.betaOffset + c];
  let xBase = u.xOffset + c * u.count + start;
  let dyBase = u.dyOffset + c * u.count + start;
  var sumDy = 0.0;
  var sumDyX = 0.0;
  for (var i = lid; i < n; i += WG_X) {
    let xm = x[xBase + i] - mu;${maskedGradient}
    sumDy += gy;
    sumDyX += gy * xm;
  }
  let sums = totalsOf(vec2<f32>(sumDy, sumDyX), lid);
  if (lid == 0u) {
    workspace[slot] = sums.x;
    workspace[slot + 1u] = sums.y;
  }`;

/** One workgroup per channel: dbeta = Σ chunks' Σdy', dgamma = invstd·Σ chunks' Σdy'·(x − mean) (written, not accumulated). */
export function splitBackwardCombineDecls(subgroups: boolean): string {
  return workgroupTotal('totalsOf', 'vec2<f32>', subgroups);
}
export const splitBackwardCombineMain = /* wgsl */ `
  let c = group;
  if (c >= u.channels) { return; }
  var sumDy = 0.0;
  var sumDyX = 0.0;
  for (var k = lid; k < u.chunks; k += WG_X) {
    let slot = u.workspaceOffset + 2u * (c * u.chunks + k);
    sumDy += workspace[slot];
    sumDyX += workspace[slot + 1u];
  }
  let sums = totalsOf(vec2<f32>(sumDy, sumDyX), lid);
  if (lid == 0u) {
    dbeta[u.dbetaOffset + c] = sums.x;
    dgamma[u.dgammaOffset + c] = sums.y * inverseSqrt(variance[u.varianceOffset + c] + u.eps);
  }`;
