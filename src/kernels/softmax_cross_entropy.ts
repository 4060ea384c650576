// Softmax cross-entropy, mean over the batch: logits [N, K] (row-major per sample, from linear.ts),
// labels u32 [N] → loss [1] = mean_n (logsumexp(logits_n) − logits_n[label_n]),
// dlogits [N, K] = (softmax − onehot)/N, and optionally correct [1] = how many samples' argmax
// equals their label (first maximum wins ties, like tf.argMax), stored as an f32 count (exact up
// to 2^24) so that accuracy needs no readback of the logits. Stable: logits are shifted by their max.
//
// Labels: callers validate them on the CPU before upload (`checkLabels`). On the GPU a label ≥ K
// is never used as an index: that sample's dlogits row is written as 0, it is not counted as
// correct, and the loss is written as NaN so the batch is visibly wrong.
//
// One workgroup does everything: invocation l handles samples l, l + WG, l + 2·WG, … (correct for
// any N), then the workgroup sums their losses and counts in a fixed order (deterministic).
// `variant: 'row-parallel'` (the GPU class's) is softmax_cross_entropy_rows.ts: a workgroup per row.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, uniformsU32 } from './binding.js';
import { softmaxCrossEntropyRows, type SoftmaxRowsOptions } from './softmax_cross_entropy_rows.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

export { softmaxRowsWorkspaceElements } from './softmax_cross_entropy_rows.js';

/** 'single-workgroup' (default; fastest on lavapipe) or 'row-parallel' (a workgroup per sample, for GPUs). */
export type SoftmaxVariant = 'single-workgroup' | 'row-parallel';

const WG = 64;

/** Throws naming the first label that is not a class index in [0, classes). */
export function checkLabels(labels: Uint32Array, classes: number): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) {
      throw new RangeError(`softmaxCrossEntropy: label ${labels[i]} at index ${i} is not a class index in [0, ${classes}); ` +
        'check the data set\'s label range against the model\'s number of classes');
    }
  }
}

export function softmaxCrossEntropyReference(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number, k: number):
  { loss: number; dlogits: Float64Array; correct: number } {
  const dlogits = new Float64Array(n * k);
  let total = 0;
  let correct = 0;
  let bad = false;
  for (let s = 0; s < n; s++) {
    const row = s * k;
    let m = logits[row];
    let argmax = 0;
    for (let j = 1; j < k; j++) if (logits[row + j] > m) { m = logits[row + j]; argmax = j; }
    let z = 0;
    for (let j = 0; j < k; j++) z += Math.exp(logits[row + j] - m);
    const label = labels[s];
    if (!(label < k)) { bad = true; continue; }
    total += Math.log(z) - (logits[row + label] - m);
    if (argmax === label) correct++;
    for (let j = 0; j < k; j++) dlogits[row + j] = (Math.exp(logits[row + j] - m) / z - (j === label ? 1 : 0)) / n;
  }
  return { loss: bad ? NaN : total / n, dlogits, correct };
}

const decls = /* wgsl */ `
var<workgroup> lossPart: array<f32, WG_X>;
var<workgroup> countPart: array<u32, WG_X>;
var<workgroup> badPart: array<u32, WG_X>;`;

const main = (withCorrect: boolean) => /* wgsl */ `
  let invN = 1.0 / f32(u.n);
  var lossSum = 0.0;
  var count = 0u;
  var bad = 0u;
  for (var s = lid; s < u.n; s += WG_X) {
    let row = u.logitsOffset + s * u.k;
    let drow = u.dlogitsOffset + s * u.k;
    var m = logits[row];
    var argmax = 0u;
    for (var j = 1u; j < u.k; j++) {
      let v = logits[row + j];
      if (v > m) { m = v; argmax = j; }
    }
    let label = labels[u.labelsOffset + s];
    if (label >= u.k) {
      bad = 1u;
      for (var j = 0u; j < u.k; j++) { dlogits[drow + j] = 0.0; }
      continue;
    }
    var z = 0.0;
    for (var j = 0u; j < u.k; j++) { z += exp(logits[row + j] - m); }
    lossSum += log(z) - (logits[row + label] - m);
    count += select(0u, 1u, argmax == label);
    let invZ = 1.0 / z;
    for (var j = 0u; j < u.k; j++) {
      let p = exp(logits[row + j] - m) * invZ;
      dlogits[drow + j] = (p - select(0.0, 1.0, j == label)) * invN;
    }
  }
  lossPart[lid] = lossSum;
  countPart[lid] = count;
  badPart[lid] = bad;
  workgroupBarrier();
  for (var stride = WG_X / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      lossPart[lid] += lossPart[lid + stride];
      countPart[lid] += countPart[lid + stride];
      badPart[lid] |= badPart[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    // NaN is stored from its bit pattern, not computed (0/0): WGSL lets compilers assume float math makes no NaNs.
    let nanBits = 0x7fc00000u;
    loss[u.lossOffset] = select(lossPart[0] * invN, bitcast<f32>(nanBits), badPart[0] != 0u);
    ${withCorrect ? 'correct[u.correctOffset] = f32(countPart[0]);' : ''}
  }`;

export async function softmaxCrossEntropy(gpu: Gpu, t: {
  logits: TensorRef; labels: TensorRef; loss: TensorRef; dlogits: TensorRef; correct?: TensorRef; variant?: SoftmaxVariant;
} & SoftmaxRowsOptions): Promise<Launch[]> {
  const op = 'softmaxCrossEntropy';
  if (t.logits.shape.length !== 2 || t.logits.shape[0] < 1 || t.logits.shape[1] < 1) {
    throw new ShapeError(`${op}: "logits" has shape ${fmt(t.logits.shape)}, expected [N, K] with N ≥ 1 samples and K ≥ 1 classes`);
  }
  const [n, k] = t.logits.shape;
  expectShape(op, 'logits', t.logits, [n, k]);
  expectShape(op, 'labels', t.labels, [n]);
  expectShape(op, 'loss', t.loss, [1]);
  expectShape(op, 'dlogits', t.dlogits, [n, k]);
  if (t.correct) expectShape(op, 'correct', t.correct, [1]);
  const variant = t.variant ?? 'single-workgroup';
  if (variant === 'row-parallel') return softmaxCrossEntropyRows(gpu, op, n, k, t);
  if (variant !== 'single-workgroup') throw new ShapeError(`${op}: variant "${String(variant)}" is not one of single-workgroup, row-parallel`);
  const withCorrect = t.correct !== undefined;
  const b = bindOperands(gpu.limits, op, {
    logits: { ref: t.logits }, labels: { ref: t.labels, type: 'u32' }, loss: { ref: t.loss, written: true },
    dlogits: { ref: t.dlogits, written: true }, ...(t.correct ? { correct: { ref: t.correct, written: true } } : {}),
  });
  const program = await gpu.compile(b.program({
    name: 'softmaxCrossEntropy', key: `correct=${withCorrect}`, workgroupSize: [WG], body: decls, main: main(withCorrect),
    uniforms: [...uniformsU32('n', 'k'), ...offsetUniforms(['logits', 'labels', 'loss', 'dlogits', ...(withCorrect ? ['correct'] : [])])],
  }));
  return [gpu.launch(program, b.buffers, { n, k, ...b.offsets }, 1)];
}
