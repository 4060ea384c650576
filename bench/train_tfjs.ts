// The DenseNet training step in TensorFlow.js, written the way a tfjs user would write it, for the
// training benchmark: one code path for every tfjs backend (webgpu, cpu). It is the network of
// bench/tfjs_densenet.ts (the test oracle, built from the same ArchitectureSpec and the same
// parameter map) but shaped for speed on tfjs's side: weights are stored once in tfjs's own layouts
// (HWIO, [in, out]) as tf.Variables, convolutions pad implicitly, nothing is read back during the
// step, and the SGD update runs on the tfjs backend (tf.train.momentum with Nesterov, weight decay
// added to each gradient as PyTorch does) with the BN running statistics assigned on the backend too.
// Batch norm is tfjs-layers' training formulation by default: tf.moments + tf.batchNorm ('fused');
// 'elementwise' spells the normalization out in elementwise ops as the oracle does.

import type * as TfCore from '@tensorflow/tfjs-core';
import type { ArchitectureSpec } from '../src/models/architecture.js';
import { size } from '../src/models/architecture.js';
import { initialValues, SeededRandom } from '../src/models/init.js';
import { poolBuilders, walkDenseNet, type OpBuilders } from './tfjs_walk.js';

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;
export type ParameterMap = Map<string, Float32Array>;

export interface TfjsTrainerOptions {
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** How batch norm is written in tfjs (default 'fused': tf.moments + tf.batchNorm, as tfjs-layers trains). */
  batchNorm?: 'fused' | 'elementwise';
}

export interface TfjsTrainer {
  /**
   * Records one training step (forward, loss, backward, SGD update, running statistics) on the
   * current tfjs backend and returns the loss tensor (the mean cross-entropy before the update),
   * which the caller reads and disposes. Images are NHWC, labels class indices.
   */
  step(imagesNhwc: Float32Array, labels: Int32Array): Tensor;
  dispose(): void;
}

/** The parameters DenseNetModel.create(gpu, config, seed) writes, computed on the CPU (same order, same generator). */
export function initialParameters(arch: ArchitectureSpec, seed: number): ParameterMap {
  const rng = new SeededRandom(seed);
  const out: ParameterMap = new Map();
  for (const p of arch.parameters) out.set(p.name, initialValues(p.init, size(p.shape), rng));
  return out;
}

/** NCHW → NHWC on the host (tfjs's image layout). */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) out[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
    }
  }
  return out;
}

let trainerCount = 0;

/** Builds the variables (from `params`, torchvision layouts) and the optimizer on the current tfjs backend. */
export function createTfjsTrainer(tf: Tf, arch: ArchitectureSpec, params: ParameterMap, o: TfjsTrainerOptions): TfjsTrainer {
  const c = arch.config;
  if (c.classes === null) throw new Error('tfjs trainer: a feature extractor has no loss');
  if (c.dropRate > 0) throw new Error('tfjs trainer: dropout is not modelled; benchmark a model without dropout');
  const classes = c.classes;
  const [inC, inH, inW] = c.inputShape;
  // Variable names are global in tfjs: a prefix keeps several trainers (or a rerun) apart.
  const prefix = `densenet-bench-${++trainerCount}/`;
  const vars = new Map<string, TfCore.Variable>();
  for (const p of arch.parameters) {
    const value = params.get(p.name);
    if (!value || value.length !== size(p.shape)) throw new Error(`tfjs trainer: parameter "${p.name}" is missing or has the wrong size`);
    let data = value;
    let shape = p.shape;
    if (p.kind === 'conv') {
      // OIHW → HWIO once, on the host.
      const [O, I, H, W] = p.shape;
      data = new Float32Array(value.length);
      for (let oc = 0; oc < O; oc++) for (let ic = 0; ic < I; ic++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        data[((y * W + x) * I + ic) * O + oc] = value[((oc * I + ic) * H + y) * W + x];
      }
      shape = [H, W, I, O];
    } else if (p.kind === 'linear-weight') {
      const [out, inp] = p.shape;
      data = new Float32Array(value.length);
      for (let r = 0; r < out; r++) for (let k = 0; k < inp; k++) data[k * out + r] = value[r * inp + k];
      shape = [inp, out];
    }
    vars.set(p.name, tf.variable(tf.tensor(data, shape), p.trainable, prefix + p.name));
  }
  const v = (name: string) => vars.get(name)!;
  const trainable = arch.parameters.filter((p) => p.trainable).map((p) => v(p.name));
  const optimizer = tf.train.momentum(o.lr, o.momentum, o.nesterov);
  const fusedBn = (o.batchNorm ?? 'fused') === 'fused';
  const m = c.bnMomentum;

  const ops: OpBuilders = {
    conv: (spec, x) => tf.conv2d(x as TfCore.Tensor4D, v(`${spec.name}.weight`) as TfCore.Tensor4D, spec.stride, spec.padding),
    bn(spec, x) {
      const gamma = v(`${spec.name}.weight`);
      const beta = v(`${spec.name}.bias`);
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      // Running statistics: (1 − m)·running + m·batch, with the unbiased variance (PyTorch).
      const count = x.shape[0]! * x.shape[1]! * x.shape[2]!;
      const runningMean = v(`${spec.name}.running_mean`);
      const runningVar = v(`${spec.name}.running_var`);
      runningMean.assign(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)));
      runningVar.assign(tf.add(tf.mul(runningVar, 1 - m), tf.mul(variance, (m * count) / (count - 1))));
      const normalized = fusedBn
        ? tf.batchNorm(x, mean, variance, beta, gamma, c.bnEps)
        : tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, c.bnEps))), gamma), beta);
      return tf.relu(normalized);
    },
    ...poolBuilders(tf, 'tfjs trainer'),
    dropout(spec) { throw new Error(`tfjs trainer: ${spec.name}: dropout is not modelled`); },
    linear: (spec, x) => tf.add(tf.matMul(x as TfCore.Tensor2D, v(`${spec.name}.weight`) as TfCore.Tensor2D), v(`${spec.name}.bias`)),
  };
  const logitsOf = (images: Tensor): Tensor => walkDenseNet(tf, arch, images, ops);

  let disposed = false;
  return {
    step(imagesNhwc, labels) {
      if (disposed) throw new Error('tfjs trainer: used after dispose()');
      const n = labels.length;
      if (imagesNhwc.length !== n * inC * inH * inW) throw new Error(`tfjs trainer: ${imagesNhwc.length} values are not ${n} images of [${inH}, ${inW}, ${inC}]`);
      return tf.tidy(() => {
        const images = tf.tensor4d(imagesNhwc, [n, inH, inW, inC]);
        const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
        const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(oneHot, logitsOf(images)) as TfCore.Scalar, trainable);
        optimizer.applyGradients(trainable.map((w) => ({
          name: w.name,
          tensor: o.weightDecay !== 0 ? tf.add(grads[w.name], tf.mul(w, o.weightDecay)) : grads[w.name],
        })));
        return value;
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      optimizer.dispose();
      for (const x of vars.values()) x.dispose();
    },
  };
}

/**
 * Makes every kernel of `backendName` call `check()` first (which throws to stop the step), so a
 * synchronous backend (tfjs cpu) can be stopped at a time budget between kernels. Returns the undo.
 */
export function guardKernels(tf: Tf, backendName: string, check: () => void): () => void {
  const restore: (() => void)[] = [];
  for (const config of tf.getKernelsForBackend(backendName)) {
    const original = config.kernelFunc;
    const guarded: TfCore.KernelFunc = (args) => { check(); return original(args); };
    (config as { kernelFunc: TfCore.KernelFunc }).kernelFunc = guarded;
    restore.push(() => { (config as { kernelFunc: TfCore.KernelFunc }).kernelFunc = original; });
  }
  return () => { for (const r of restore) r(); };
}
