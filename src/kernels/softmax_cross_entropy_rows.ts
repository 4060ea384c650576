// The GPU-class variant of softmax cross-entropy (issue 9; softmax_cross_entropy.ts checks shapes
// and calls here): one workgroup per sample row reduces its max, first argmax and Σexp in parallel
// over the classes and writes the row's dlogits, its loss and a flag (correct / bad label) to a
// caller-owned workspace; a second launch, one workgroup, sums the rows' losses and counts in
// parallel into loss and correct. The same math and the same bad-label rule as the default.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { bindOperands, offsetUniforms, refuseOverlaps, uniformsU32 } from './binding.js';
import { workgroupReduce } from './reduction_wgsl.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

const WG = 64;

/** Elements of workspace the row-parallel variant needs for N samples: a loss and a flag per row. */
export const softmaxRowsWorkspaceElements = (n: number) => 2 * n;

export interface SoftmaxRowsOptions {
  /** Caller-owned, at least softmaxRowsWorkspaceElements(N) elements; must not overlap the outputs. */
  workspace?: TensorRef;
  /** Reduce with subgroup operations (default: where the device has the `subgroups` feature). */
  subgroups?: boolean;
}

// Flags per row in the workspace (as f32): 0 wrong, 1 correct, 2 label out of range.
const rowsBody = (subgroups: boolean) => [
  workgroupReduce('rowMax', 'f32', 'max', subgroups),
  workgroupReduce('firstIndex', 'u32', 'min', subgroups),
  workgroupReduce('rowSum', 'f32', 'add', subgroups),
].join('\n');

const rowsMain = /* wgsl */ `
  let s = group;
  // s is uniform across the workgroup: the reductions below stay in uniform control flow.
  if (s >= u.n) { return; }
  let row = u.logitsOffset + s * u.k;
  let drow = u.dlogitsOffset + s * u.k;
  var m = logits[row];
  for (var j = lid; j < u.k; j += WG_X) { m = max(m, logits[row + j]); }
  let top = rowMax(m, lid);
  var first = u.k;
  for (var j = lid; j < u.k; j += WG_X) { if (logits[row + j] == top) { first = min(first, j); } }
  let argmax = firstIndex(first, lid);
  var z = 0.0;
  for (var j = lid; j < u.k; j += WG_X) { z += exp(logits[row + j] - top); }
  let total = rowSum(z, lid);
  let label = labels[u.labelsOffset + s];
  let bad = label >= u.k;
  let invZ = 1.0 / total;
  let invN = 1.0 / f32(u.n);
  for (var j = lid; j < u.k; j += WG_X) {
    let p = exp(logits[row + j] - top) * invZ;
    dlogits[drow + j] = select((p - select(0.0, 1.0, j == label)) * invN, 0.0, bad);
  }
  if (lid == 0u) {
    let safe = min(label, u.k - 1u);
    workspace[u.workspaceOffset + s] = select(log(total) - (logits[row + safe] - top), 0.0, bad);
    workspace[u.workspaceOffset + u.n + s] = select(select(0.0, 1.0, argmax == label), 2.0, bad);
  }`;

const totalBody = (subgroups: boolean) => [
  workgroupReduce('lossSum', 'f32', 'add', subgroups),
  workgroupReduce('countSum', 'u32', 'add', subgroups),
  workgroupReduce('badAny', 'u32', 'max', subgroups),
].join('\n');

const totalMain = (withCorrect: boolean) => /* wgsl */ `
  var l = 0.0;
  var count = 0u;
  var bad = 0u;
  for (var s = lid; s < u.n; s += WG_X) {
    l += workspace[u.workspaceOffset + s];
    let flag = workspace[u.workspaceOffset + u.n + s];
    count += select(0u, 1u, flag == 1.0);
    bad = max(bad, select(0u, 1u, flag == 2.0));
  }
  let lossTotal = lossSum(l, lid);
  let correctTotal = countSum(count, lid);
  let anyBad = badAny(bad, lid);
  if (lid == 0u) {
    // NaN from its bit pattern (a let, not a constant expression, which may not be NaN), not
    // computed: WGSL lets compilers assume float math makes no NaNs.
    let nanBits = 0x7fc00000u;
    loss[u.lossOffset] = select(lossTotal / f32(u.n), bitcast<f32>(nanBits), anyBad != 0u);
    ${withCorrect ? 'correct[u.correctOffset] = f32(correctTotal);' : ''}
  }`;

/** Loss, dlogits (and correct) for logits [n, k], already checked by the caller; two launches. */
export async function softmaxCrossEntropyRows(gpu: Gpu, op: string, n: number, k: number, t: {
  logits: TensorRef; labels: TensorRef; loss: TensorRef; dlogits: TensorRef; correct?: TensorRef;
} & SoftmaxRowsOptions): Promise<Launch[]> {
  const needed = softmaxRowsWorkspaceElements(n);
  if (!t.workspace) throw new ShapeError(`${op}: the row-parallel variant needs a workspace of ${needed} elements (softmaxRowsWorkspaceElements)`);
  if (t.workspace.shape.length !== 1 || t.workspace.shape[0] < needed) {
    throw new ShapeError(`${op}: "workspace" has shape ${fmt(t.workspace.shape)}, expected at least [${needed}]`);
  }
  expectShape(op, 'workspace', t.workspace, [-1]);
  const workspace = { buffer: t.workspace.buffer, offset: t.workspace.offset, shape: [needed] };
  const has = gpu.device.features.has('subgroups');
  if (t.subgroups && !has) throw new RangeError(`${op}: subgroups were asked for but the device has no 'subgroups' feature; leave the option out`);
  const subgroups = t.subgroups ?? has;
  const enables = subgroups ? ['subgroups'] : [];
  const withCorrect = t.correct !== undefined;
  // The workspace may overlap no operand of either launch (each launch checks only its own).
  refuseOverlaps(op, {
    logits: { ref: t.logits }, labels: { ref: t.labels }, dlogits: { ref: t.dlogits, written: true }, loss: { ref: t.loss, written: true },
    ...(t.correct ? { correct: { ref: t.correct, written: true } } : {}), workspace: { ref: workspace, written: true },
  });
  const rows = bindOperands(gpu.limits, op, {
    logits: { ref: t.logits }, labels: { ref: t.labels, type: 'u32' }, dlogits: { ref: t.dlogits, written: true }, workspace: { ref: workspace, written: true },
  });
  const total = bindOperands(gpu.limits, op, {
    workspace: { ref: workspace }, loss: { ref: t.loss, written: true }, ...(t.correct ? { correct: { ref: t.correct, written: true } } : {}),
  });
  const [rowsProgram, totalProgram] = await Promise.all([
    gpu.compile(rows.program({
      name: `${op}.rows`, key: `subgroups=${subgroups}`, workgroupSize: [WG], enables, body: rowsBody(subgroups), main: rowsMain,
      uniforms: [...uniformsU32('n', 'k'), ...offsetUniforms(['logits', 'labels', 'dlogits', 'workspace'])],
    })),
    gpu.compile(total.program({
      name: `${op}.total`, key: `subgroups=${subgroups},correct=${withCorrect}`, workgroupSize: [WG], enables, body: totalBody(subgroups),
      main: totalMain(withCorrect), uniforms: [...uniformsU32('n'), ...offsetUniforms(['workspace', 'loss', ...(withCorrect ? ['correct'] : [])])],
    })),
  ]);
  return [
    gpu.launch(rowsProgram, rows.buffers, { n, k, ...rows.offsets }, n),
    gpu.launch(totalProgram, total.buffers, { n, ...total.offsets }, 1),
  ];
}
