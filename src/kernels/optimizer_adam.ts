// Adam and AdamW as one elementwise kernel over a flat range of parameters, PyTorch semantics:
//   Adam  (coupled L2):       g ← g + weightDecay·p
//   AdamW (decoupled):        p ← p·(1 − lr·weightDecay)
//   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + eps),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
// m and v must start at zero. TensorFlow.js's tf.train.adam computes the same update without
// weight decay (test/optimizer_adam.test.ts checks that).
//
// Uniforms the caller rewrites between steps, on every returned launch (one per binding-sized chunk
// of the range, none for an empty range):
//   launch.setUniforms(queue, { lr, step })   lr: learning rate (f32, ≥ 0); step: t, 1-based (u32, ≥ 1)
// The bias corrections 1 − βᵗ are computed in the kernel from `step` as −expm1(t·ln β) (series for
// small |t·ln β|), because 1 − pow(β₂, t) in f32 loses most digits at β₂ = 0.999 and small t.
// ln β and 1 − β are computed in float64 when the launch is created (uniforms `logBeta1/2`,
// `oneMinusBeta1/2`): 1 − f32(0.999) is off by 1.3e-5 relative, which would skew v̂ at every step.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { expectInRange, expectSameLength, flatLaunches } from './optimizer_flat.js';
import type { TensorRef } from './tensor.js';

const WORKGROUP = 256;

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** false: Adam with L2 in the gradient; true: AdamW's decoupled decay. */
  decoupled: boolean;
  /** Step count t, 1-based. */
  step: number;
}

export function checkAdamHyper(h: AdamHyper): void {
  const op = h.decoupled ? 'adamw' : 'adam';
  expectInRange(op, 'lr', h.lr, 0, Infinity);
  expectInRange(op, 'beta1', h.beta1, 0, 1, { hiOpen: true });
  expectInRange(op, 'beta2', h.beta2, 0, 1, { hiOpen: true });
  expectInRange(op, 'eps', h.eps, 0, Infinity, { loOpen: true });
  expectInRange(op, 'weightDecay', h.weightDecay, 0, Infinity);
  if (!Number.isInteger(h.step) || h.step < 1 || h.step > 0xffffffff) {
    throw new RangeError(`${op}: step must be an integer ≥ 1 (the step count t, 1-based), got ${h.step}`);
  }
}

/** One Adam/AdamW step in float64, in place on `params`, `m` and `v`. */
export function adamReference(params: Float64Array, grads: ArrayLike<number>, m: Float64Array, v: Float64Array, h: AdamHyper): void {
  checkAdamHyper(h);
  const bc1 = 1 - Math.pow(h.beta1, h.step);
  const bc2 = 1 - Math.pow(h.beta2, h.step);
  for (let i = 0; i < params.length; i++) {
    let g = grads[i];
    if (h.decoupled) params[i] *= 1 - h.lr * h.weightDecay;
    else g += h.weightDecay * params[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    params[i] -= (h.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + h.eps);
  }
}

const decls = /* wgsl */ `
// 1 − βᵗ = −expm1(t·ln β): a Taylor series where t·ln β is small (no cancellation), else 1 − exp.
fn oneMinusPow(logBeta: f32, t: f32) -> f32 {
  let x = t * logBeta;
  if (x < -0.5) { return 1.0 - exp(x); }
  var s = 1.0;
  for (var k = 10.0; k >= 2.0; k -= 1.0) { s = 1.0 + s * x / k; }
  return -x * s;
}`;

const main = /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let t = f32(u.step);
  let stepSize = u.lr / oneMinusPow(u.logBeta1, t);
  let sqrtBc2 = sqrt(oneMinusPow(u.logBeta2, t));
  var p = params[u.paramsOffset + i];
  var g = grads[u.gradsOffset + i];
  if (DECOUPLED) { p *= 1.0 - u.lr * u.weightDecay; } else { g += u.weightDecay * p; }
  let m1 = u.beta1 * m[u.mOffset + i] + u.oneMinusBeta1 * g;
  let v1 = u.beta2 * v[u.vOffset + i] + u.oneMinusBeta2 * g * g;
  m[u.mOffset + i] = m1;
  v[u.vOffset + i] = v1;
  params[u.paramsOffset + i] = p - stepSize * m1 / (sqrt(v1) / sqrtBc2 + u.eps);`;

/** ln β for the kernel, clamped so that β = 0 (a valid β₁) stays finite: 1 − exp(−80·t) is 1 in f32. */
function logBeta(beta: number): number {
  return Math.max(Math.log(beta), -80);
}

/**
 * One Adam (decoupled false) or AdamW (decoupled true) step over `params` (updated in place) with
 * state `m`, `v`; the four may share a buffer if they do not overlap (binding.ts).
 * Rewrite `lr` and `step` per step with setUniforms on every returned launch. `chunkElements` is
 * for tests.
 */
export async function adamUpdate(gpu: Gpu, t: {
  params: TensorRef; grads: TensorRef; m: TensorRef; v: TensorRef; lr: number; beta1: number; beta2: number; eps: number;
  weightDecay: number; decoupled: boolean; step: number; chunkElements?: number;
}): Promise<Launch[]> {
  checkAdamHyper(t);
  const op = t.decoupled ? 'adamw' : 'adam';
  const refs = { params: t.params, grads: t.grads, m: t.m, v: t.v };
  const count = expectSameLength(op, refs, 'params');
  const operands = Object.fromEntries(Object.entries(refs).map(([name, ref]) => [name, { ref, written: name !== 'grads' }]));
  return flatLaunches(gpu, op, operands, count, {
    chunkElements: t.chunkElements, workgroupSize: WORKGROUP,
    program: {
      name: `${op}.update`, key: `decoupled=${t.decoupled}`, body: `const DECOUPLED = ${t.decoupled};\n${decls}`, main,
      uniforms: [
        { name: 'step', type: 'u32' }, { name: 'lr', type: 'f32' }, { name: 'beta1', type: 'f32' }, { name: 'beta2', type: 'f32' },
        { name: 'oneMinusBeta1', type: 'f32' }, { name: 'oneMinusBeta2', type: 'f32' },
        { name: 'logBeta1', type: 'f32' }, { name: 'logBeta2', type: 'f32' }, { name: 'eps', type: 'f32' },
        { name: 'weightDecay', type: 'f32' },
      ],
    },
    uniforms: () => ({
      step: t.step, lr: t.lr, beta1: t.beta1, beta2: t.beta2, oneMinusBeta1: 1 - t.beta1, oneMinusBeta2: 1 - t.beta2,
      logBeta1: logBeta(t.beta1), logBeta2: logBeta(t.beta2), eps: t.eps, weightDecay: t.weightDecay,
    }),
  });
}
