// The tfjs side of `bench ops`: each op and pass as tfjs-webgpu runs it in training, in its
// preferred NHWC / HWIO layout, on the same inputs as ours (transposed), returning the outputs for
// the cross-check in our layout.
//
// tfjs-core's Node bundle registers no gradient functions (tf.grads fails on Conv2D), so the
// backward passes call the kernels tfjs's own gradient configs run:
//   conv: Conv2D, then Conv2DBackpropInput (tf.conv2dTranspose) and Conv2DBackpropFilter;
//   pool: AvgPool, then AvgPoolGrad;
//   BN:   tf.moments + tf.batchNorm forward, and the closed-form training-mode gradient written
//         with tfjs ops (xhat, two channel sums, one elementwise chain). That is fewer kernels than
//         tfjs's autodiff through moments + batchNorm would run, so it can only flatter tfjs.

import { convOutputSize, hwioToOihw, nhwcToCnhw, cnhwToNhwc, oihwToHwio, type OpCase, type PassName } from './ops_spec.js';
import type { Tensor, TfjsOnGpu } from './tfjs_webgpu.js';

export interface TfjsPass {
  /** Runs the pass; returns its outputs (named by `names`), which the caller disposes. */
  fn: () => Tensor[];
  names: string[];
  /** Converts output `name`'s data to our layout. */
  toOurs(name: string, data: Float32Array): Float32Array;
  dispose(): void;
}

export function prepareTfjs(t: TfjsOnGpu, c: OpCase, inputs: Record<string, Float32Array>, pass: PassName): TfjsPass {
  const tf = t.tf;
  const kept: Tensor[] = [];
  const keep = <T extends Tensor>(x: T): T => { kept.push(x); return x; };
  const dispose = () => tf.dispose(kept);

  if (c.kind === 'conv') {
    const { Ho, Wo } = convOutputSize(c);
    const x = keep(tf.tensor4d(cnhwToNhwc(inputs.x, c.cin, c.N, c.H, c.W), [c.N, c.H, c.W, c.cin]));
    const w = keep(tf.tensor4d(oihwToHwio(inputs.w, c.cout, c.cin, c.k), [c.k, c.k, c.cin, c.cout]));
    const dy = keep(tf.tensor4d(cnhwToNhwc(inputs.dy, c.cout, c.N, Ho, Wo), [c.N, Ho, Wo, c.cout]));
    const strides: [number, number] = [1, 1];
    const forward = () => tf.conv2d(x, w, strides, c.pad);
    const toOurs = (name: string, data: Float32Array) => {
      if (name === 'y') return nhwcToCnhw(data, c.cout, c.N, Ho, Wo);
      if (name === 'dx') return nhwcToCnhw(data, c.cin, c.N, c.H, c.W);
      return hwioToOihw(data, c.cout, c.cin, c.k);
    };
    if (pass === 'forward') return { fn: () => [forward()], names: ['y'], toOurs, dispose };
    return {
      fn: () => {
        const y = forward();
        const dx = tf.conv2dTranspose(dy, w, [c.N, c.H, c.W, c.cin], strides, c.pad);
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
          { strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [c.k, c.k, c.cin, c.cout] } as never) as Tensor;
        return [y, dx, dw];
      },
      names: ['y', 'dx', 'dw'], toOurs, dispose,
    };
  }

  if (c.kind === 'batchnorm') {
    const shape: [number, number, number, number] = [c.N, c.H, c.W, c.C];
    const x = keep(tf.tensor4d(cnhwToNhwc(inputs.x, c.C, c.N, c.H, c.W), shape));
    const dy = keep(tf.tensor4d(cnhwToNhwc(inputs.dy, c.C, c.N, c.H, c.W), shape));
    const gamma = keep(tf.tensor1d(inputs.gamma));
    const beta = keep(tf.tensor1d(inputs.beta));
    const M = c.N * c.H * c.W;
    const toOurs = (name: string, data: Float32Array) => (name === 'y' || name === 'dx' ? nhwcToCnhw(data, c.C, c.N, c.H, c.W) : data);
    const forward = () => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return { mean, variance, y: tf.batchNorm(x, mean, variance, beta, gamma, c.eps) };
    };
    if (pass === 'forward') return { fn: () => [forward().y], names: ['y'], toOurs, dispose };
    return {
      fn: () => {
        const { mean, variance, y } = forward();
        const xhat = tf.batchNorm(x, mean, variance, undefined, undefined, c.eps);
        const dbeta = tf.sum(dy, [0, 1, 2]);
        const dgamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
        // dx = γ·(var+eps)^-½ · (dy − dβ/M − x̂·dγ/M)
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, c.eps)));
        const centred = tf.sub(tf.sub(dy, tf.mul(xhat, tf.div(dgamma, M))), tf.div(dbeta, M));
        const dx = tf.mul(centred, scale);
        return [y, dx, dgamma, dbeta];
      },
      names: ['y', 'dx', 'dgamma', 'dbeta'], toOurs, dispose,
    };
  }

  const Ho = Math.floor(c.H / 2);
  const Wo = Math.floor(c.W / 2);
  const x = keep(tf.tensor4d(cnhwToNhwc(inputs.x, c.C, c.N, c.H, c.W), [c.N, c.H, c.W, c.C]));
  const dy = keep(tf.tensor4d(cnhwToNhwc(inputs.dy, c.C, c.N, Ho, Wo), [c.N, Ho, Wo, c.C]));
  const toOurs = (name: string, data: Float32Array) => (name === 'y' ? nhwcToCnhw(data, c.C, c.N, Ho, Wo) : nhwcToCnhw(data, c.C, c.N, c.H, c.W));
  const forward = () => tf.avgPool(x, 2, 2, 'valid');
  if (pass === 'forward') return { fn: () => [forward()], names: ['y'], toOurs, dispose };
  return {
    fn: () => {
      const y = forward();
      const dx = tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, { filterSize: 2, strides: 2, pad: 'valid' } as never) as Tensor;
      return [y, dx];
    },
    names: ['y', 'dx'], toOurs, dispose,
  };
}
