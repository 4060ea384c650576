// An independent DenseNet in TensorFlow.js (cpu backend, NHWC): the whole-network oracle for the
// engine's training graph. It is built from the same ArchitectureSpec and the same parameter Map
// (torchvision names and layouts: conv OIHW, linear [out, in]) and gives logits, the mean softmax
// cross-entropy, the gradient of every trainable parameter (tf.grads through tfjs's own kernels and
// gradient rules) and the running statistics after one training-mode forward pass. The SGD step is
// plain TypeScript in float64 (PyTorch semantics), rounded to float32 as the engine stores it.
//
// The network follows torchvision: BN-ReLU-conv everywhere, dense layers concatenate
// [input, new] on the channel axis, BN in training mode normalizes with the batch's biased
// variance and updates running_var with the unbiased one. Dropout is not reproduced (tfjs cannot
// draw our masks): training a model with dropRate > 0 is refused; in inference it is the identity.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; this path registers them into the shared registry (see batchnorm.test.ts).
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import type { ArchitectureSpec, BatchNormSpec } from '../src/models/architecture.js';
import { poolBuilders, walkDenseNet, type OpBuilders } from './tfjs_walk.js';

export type ParameterMap = Map<string, Float32Array>;

export interface TfjsTrainingResult {
  /** [N, classes] row-major. */
  logits: Float32Array;
  loss: number;
  /** d(loss)/d(p) for every trainable parameter, in the parameter's torchvision layout. */
  gradients: ParameterMap;
  /** Every `.running_mean` / `.running_var` after this step's update (m·batch + (1 − m)·running). */
  running: ParameterMap;
}

export interface SgdOptions { momentum: number; nesterov: boolean; weightDecay: number }

type Mode = { training: true; onBatchStatistics: (bn: BatchNormSpec, mean: Float32Array, variance: Float32Array) => void } | { training: false };

/** Trainable parameter names of the spec, in state_dict order. */
export function trainableNames(arch: ArchitectureSpec): string[] {
  return arch.parameters.filter((p) => p.trainable).map((p) => p.name);
}

/** The layers of the spec as tfjs ops on NHWC tensors; `p` gives a parameter as a tensor. */
function opBuilders(p: (name: string) => tf.Tensor, eps: number, mode: Mode): OpBuilders {
  return {
    conv(layer, x) {
      // OIHW → HWIO; explicit zero padding, then a 'valid' convolution.
      const w = tf.transpose(p(`${layer.name}.weight`), [2, 3, 1, 0]) as tf.Tensor4D;
      const q = layer.padding;
      const padded = q > 0 ? tf.pad(x as tf.Tensor4D, [[0, 0], [q, q], [q, q], [0, 0]]) : x;
      return tf.conv2d(padded as tf.Tensor4D, w, layer.stride, 'valid');
    },
    bn(layer, x) {
      const gamma = p(`${layer.name}.weight`);
      const beta = p(`${layer.name}.bias`);
      let mean: tf.Tensor;
      let variance: tf.Tensor;
      if (mode.training) {
        // tf.moments: mean and biased variance over N, H, W, differentiated through both.
        ({ mean, variance } = tf.moments(x, [0, 1, 2]));
        mode.onBatchStatistics(layer, mean.dataSync() as Float32Array, variance.dataSync() as Float32Array);
      } else {
        mean = p(`${layer.name}.running_mean`);
        variance = p(`${layer.name}.running_var`);
      }
      const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
      return tf.relu(tf.add(tf.mul(normalized, gamma), beta));
    },
    ...poolBuilders(tf, 'tfjs model'),
    dropout(layer, x) {
      if (mode.training) throw new Error(`tfjs model: ${layer.name}: dropout cannot be reproduced (the engine's masks are its own); train without dropout`);
      return x;
    },
    linear: (layer, x) => tf.add(tf.matMul(x as tf.Tensor2D, p(`${layer.name}.weight`) as tf.Tensor2D, false, true), p(`${layer.name}.bias`)),
  };
}

/** The whole network: NCHW images → [N, classes] logits (or [N, features] for a feature extractor). */
function network(arch: ArchitectureSpec, images: tf.Tensor4D, p: (name: string) => tf.Tensor, mode: Mode): tf.Tensor {
  return walkDenseNet(tf, arch, tf.transpose(images, [0, 2, 3, 1]), opBuilders(p, arch.config.bnEps, mode));
}

function meanCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const classes = logits.shape[1]!;
  const picked = tf.sum(tf.mul(tf.oneHot(labels as tf.Tensor1D, classes), tf.logSoftmax(logits as tf.Tensor2D)), 1);
  return tf.neg(tf.mean(picked)) as tf.Scalar;
}

function checkParameters(arch: ArchitectureSpec, params: ParameterMap): void {
  for (const spec of arch.parameters) {
    const v = params.get(spec.name);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (!v || v.length !== n) throw new Error(`tfjs model: parameter "${spec.name}" ${v ? `has ${v.length} values, shape needs ${n}` : 'is missing'}`);
  }
}

function imageTensor(arch: ArchitectureSpec, images: Float32Array): tf.Tensor4D {
  const [c, h, w] = arch.config.inputShape;
  const n = images.length / (c * h * w);
  if (!Number.isInteger(n) || n < 1) throw new Error(`tfjs model: ${images.length} values are not a whole batch of [${c}, ${h}, ${w}] images`);
  return tf.tensor4d(images, [n, c, h, w]);
}

/**
 * One training-mode forward and backward pass: logits, mean cross-entropy loss, every trainable
 * parameter's gradient, and the running statistics updated once with this batch's statistics.
 */
export function tfjsTrainingStep(arch: ArchitectureSpec, params: ParameterMap, images: Float32Array, labels: Uint32Array): TfjsTrainingResult {
  checkParameters(arch, params);
  if (arch.config.classes === null) throw new Error('tfjs model: a feature extractor has no loss');
  const names = trainableNames(arch);
  const batchStatistics = new Map<string, { mean: Float32Array; variance: Float32Array; count: number }>();
  let result: Omit<TfjsTrainingResult, 'running'> | undefined;
  tf.tidy(() => {
    const x = imageTensor(arch, images);
    const y = tf.tensor1d(Int32Array.from(labels), 'int32');
    const tensors = new Map(arch.parameters.map((s) => [s.name, tf.tensor(params.get(s.name)!, s.shape)]));
    const lookup = (name: string) => tensors.get(name)!;
    // Forward once outside the tape for logits, loss and the batch statistics.
    const record: Mode = { training: true, onBatchStatistics: (bn, mean, variance) => {
      if (batchStatistics.has(bn.name)) throw new Error(`tfjs model: ${bn.name} normalized twice`);
      batchStatistics.set(bn.name, { mean, variance, count: x.shape[0] * bn.hw[0] * bn.hw[1] });
    } };
    const logits = network(arch, x, lookup, record);
    const loss = meanCrossEntropy(logits, y);
    // Then the gradients with respect to every trainable parameter.
    const silent: Mode = { training: true, onBatchStatistics: () => {} };
    const lossOf = (...trainable: tf.Tensor[]) => {
      const byName = new Map(names.map((n, i) => [n, trainable[i]]));
      return meanCrossEntropy(network(arch, x, (n) => byName.get(n) ?? lookup(n), silent), y);
    };
    const grads = tf.grads(lossOf)(names.map(lookup));
    result = {
      logits: logits.dataSync() as Float32Array,
      loss: loss.dataSync()[0],
      gradients: new Map(names.map((n, i) => [n, grads[i].dataSync() as Float32Array])),
    };
  });
  const running: ParameterMap = new Map();
  const m = arch.config.bnMomentum;
  for (const [name, s] of batchStatistics) {
    const oldMean = params.get(`${name}.running_mean`)!;
    const oldVar = params.get(`${name}.running_var`)!;
    const unbias = s.count / (s.count - 1);
    running.set(`${name}.running_mean`, Float32Array.from(oldMean, (r, c) => (1 - m) * r + m * s.mean[c]));
    running.set(`${name}.running_var`, Float32Array.from(oldVar, (r, c) => (1 - m) * r + m * s.variance[c] * unbias));
  }
  for (const spec of arch.parameters) {
    if (!spec.trainable && !running.has(spec.name)) throw new Error(`tfjs model: no batch statistics reached "${spec.name}"`);
  }
  return { ...result!, running };
}

/** Evaluation-mode logits [N, classes] (BN with running statistics, dropout the identity). */
export function tfjsInference(arch: ArchitectureSpec, params: ParameterMap, images: Float32Array): Float32Array {
  checkParameters(arch, params);
  return tf.tidy(() => {
    const tensors = new Map(arch.parameters.map((s) => [s.name, tf.tensor(params.get(s.name)!, s.shape)]));
    return network(arch, imageTensor(arch, images), (n) => tensors.get(n)!, { training: false }).dataSync() as Float32Array;
  });
}

/**
 * One SGD step (PyTorch semantics, in float64, stored as float32):
 * g' = g + wd·p; v = m·v + g'; p −= lr·(nesterov ? g' + m·v : v). Returns the new parameters (running
 * statistics replaced by `running`) and updates `velocity` in place (missing entries start at zero).
 */
export function sgdStep(arch: ArchitectureSpec, params: ParameterMap, gradients: ParameterMap, running: ParameterMap,
  velocity: ParameterMap, lr: number, o: SgdOptions): ParameterMap {
  const next: ParameterMap = new Map();
  for (const spec of arch.parameters) {
    if (!spec.trainable) {
      next.set(spec.name, Float32Array.from(running.get(spec.name)!));
      continue;
    }
    const p = params.get(spec.name)!;
    const g = gradients.get(spec.name)!;
    const v = velocity.get(spec.name) ?? new Float32Array(p.length);
    const out = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + o.weightDecay * p[i];
      const vi = o.momentum * v[i] + gi;
      v[i] = vi;
      out[i] = p[i] - lr * (o.nesterov ? gi + o.momentum * vi : vi);
    }
    velocity.set(spec.name, v);
    next.set(spec.name, out);
  }
  return next;
}
