// SGD with momentum, Nesterov momentum and L2 weight decay, PyTorch semantics (no dampening), as
// one elementwise kernel over a flat range of parameters:
//   g' = g + weightDecay·p;  v = momentum·v + g';  p −= lr·(nesterov ? g' + momentum·v : v)
// (momentum 0: p −= lr·g', and no velocity is read or written). The velocity must start at zero;
// PyTorch's first step sets v = g', which is the same thing.
// TensorFlow.js's tf.train.momentum(lr, m, useNesterov) computes the same update (it has no weight
// decay); test/optimizer_sgd.test.ts checks that.
//
// Uniforms the caller may rewrite between steps, on every returned launch (one per binding-sized
// chunk of the range, none for an empty range):
//   launch.setUniforms(queue, { lr })    learning rate from a schedule (f32, keep it ≥ 0)
// `momentum` and `weightDecay` are uniforms too, but the kernel variant (velocity bound or not,
// Nesterov or not) is fixed when the launch is created.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import type { Operand } from './binding.js';
import { expectInRange, expectSameLength, flatLaunches } from './optimizer_flat.js';
import type { TensorRef } from './tensor.js';

const WORKGROUP = 256;

export interface SgdHyper {
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

export function checkSgdHyper(h: SgdHyper): void {
  expectInRange('sgd', 'lr', h.lr, 0, Infinity);
  expectInRange('sgd', 'momentum', h.momentum, 0, 1, { hiOpen: true });
  expectInRange('sgd', 'weightDecay', h.weightDecay, 0, Infinity);
  if (h.nesterov && !(h.momentum > 0)) {
    throw new RangeError(`sgd: nesterov needs momentum > 0, got momentum ${h.momentum}`);
  }
}

/**
 * One SGD step in float64, in place: `params` and (when momentum > 0) `velocity` are updated.
 */
export function sgdReference(params: Float64Array, grads: ArrayLike<number>, velocity: Float64Array | undefined, h: SgdHyper): void {
  checkSgdHyper(h);
  if (h.momentum > 0 && !velocity) throw new RangeError('sgd: momentum > 0 needs a velocity array');
  for (let i = 0; i < params.length; i++) {
    const g = grads[i] + h.weightDecay * params[i];
    let step = g;
    if (h.momentum > 0) {
      const v = h.momentum * velocity![i] + g;
      velocity![i] = v;
      step = h.nesterov ? g + h.momentum * v : v;
    }
    params[i] -= h.lr * step;
  }
}

// The momentum lines exist only in the momentum variant, which alone binds `velocity`.
function sgdMain(momentum: boolean, nesterov: boolean): string {
  const momentumLines = !momentum ? '' : `
  let v = u.momentum * velocity[u.velocityOffset + i] + g;
  velocity[u.velocityOffset + i] = v;
  step = ${nesterov ? 'g + u.momentum * v' : 'v'};`;
  return /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let p = params[u.paramsOffset + i];
  let g = grads[u.gradsOffset + i] + u.weightDecay * p;
  var step = g;${momentumLines}
  params[u.paramsOffset + i] = p - u.lr * step;`;
}

/**
 * One SGD step over `params` (updated in place) from `grads`; `velocity` is needed when
 * momentum > 0. The three may share a buffer if they do not overlap (binding.ts).
 * Rewrite `lr` per step with setUniforms on every returned launch. `chunkElements` is for tests.
 */
export async function sgdUpdate(gpu: Gpu, t: {
  params: TensorRef; grads: TensorRef; velocity?: TensorRef; lr: number; momentum: number; nesterov: boolean;
  weightDecay: number; chunkElements?: number;
}): Promise<Launch[]> {
  checkSgdHyper(t);
  const useMomentum = t.momentum > 0;
  if (useMomentum && !t.velocity) throw new RangeError(`sgd: momentum ${t.momentum} needs a velocity tensor`);
  const operands: Record<string, Operand> = { params: { ref: t.params, written: true }, grads: { ref: t.grads } };
  if (useMomentum) operands.velocity = { ref: t.velocity!, written: true };
  const count = expectSameLength('sgd', Object.fromEntries(Object.entries(operands).map(([n, o]) => [n, o.ref])), 'params');
  return flatLaunches(gpu, 'sgd', operands, count, {
    chunkElements: t.chunkElements, workgroupSize: WORKGROUP,
    program: {
      name: 'sgd.update', key: `momentum=${useMomentum},nesterov=${t.nesterov}`, body: '', main: sgdMain(useMomentum, t.nesterov),
      uniforms: [{ name: 'lr', type: 'f32' }, { name: 'momentum', type: 'f32' }, { name: 'weightDecay', type: 'f32' }],
    },
    uniforms: () => ({ lr: t.lr, momentum: t.momentum, weightDecay: t.weightDecay }),
  });
}

