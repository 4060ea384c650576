// DenseNet inference in TensorFlow.js, written the way a tfjs user would write it, for the
// inference benchmark: the network of bench/tfjs_densenet.ts (same ArchitectureSpec, same
// torchvision-named parameters) shaped for speed on tfjs's side: weights uploaded once in tfjs's
// layouts (HWIO, [in, out]), batch norm as tf.batchNorm with the running statistics (what
// tfjs-layers' BatchNormalization does in inference), padding given to the conv / pool ops, and
// nothing read back but the output. Runs on whatever backend is current (webgpu in the benchmark).

import type * as TfCore from '@tensorflow/tfjs-core';
import type { ArchitectureSpec } from '../src/models/architecture.js';
import { walkDenseNet, type OpBuilders } from './tfjs_walk.js';

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;

export interface TfjsInferenceModel {
  /** NCHW images (host) → output tensor [N, classes] (or [N, features]); the caller reads and disposes it. */
  run(imagesNchw: Float32Array, batch: number): Tensor;
  dispose(): void;
}

export function createTfjsInference(tf: Tf, arch: ArchitectureSpec, params: Map<string, Float32Array>): TfjsInferenceModel {
  const weights = new Map<string, Tensor>();
  const get = (name: string): Float32Array => {
    const v = params.get(name);
    if (!v) throw new Error(`tfjs inference: parameter "${name}" is missing`);
    return v;
  };
  tf.tidy(() => {
    for (const p of arch.parameters) {
      let t: Tensor = tf.tensor(get(p.name), p.shape);
      if (p.kind === 'conv') t = tf.transpose(t, [2, 3, 1, 0]); // OIHW → HWIO
      if (p.kind === 'linear-weight') t = tf.transpose(t); // [out, in] → [in, out]
      weights.set(p.name, tf.keep(t));
    }
  });
  const w = (name: string) => weights.get(name)!;
  const eps = arch.config.bnEps;

  const ops: OpBuilders = {
    conv(l, x) {
      // 'same' where it equals the symmetric padding (stride 1, odd kernel); explicit otherwise (the 7×7/2 stem).
      const pad = l.padding === 0 ? 'valid' : l.stride === 1 && 2 * l.padding + 1 === l.kernel ? 'same' : l.padding;
      return tf.conv2d(x as TfCore.Tensor4D, w(`${l.name}.weight`) as TfCore.Tensor4D, l.stride, pad);
    },
    bn: (l, x) => tf.relu(tf.batchNorm(x, w(`${l.name}.running_mean`) as TfCore.Tensor1D, w(`${l.name}.running_var`) as TfCore.Tensor1D,
      w(`${l.name}.bias`) as TfCore.Tensor1D, w(`${l.name}.weight`) as TfCore.Tensor1D, eps)),
    // Padding given to the pool ops (implicit), as a tfjs user writes them.
    maxpool: (l, x) => tf.maxPool(x as TfCore.Tensor4D, l.kernel, l.stride, l.padding),
    avgpool: (l, x) => tf.avgPool(x as TfCore.Tensor4D, l.kernel, l.stride, l.padding === 0 ? 'valid' : l.padding),
    globalpool: (_l, x) => tf.mean(x, [1, 2]),
    dropout: (_l, x) => x,
    linear: (l, x) => tf.add(tf.matMul(x as TfCore.Tensor2D, w(`${l.name}.weight`) as TfCore.Tensor2D), w(`${l.name}.bias`)),
  };

  return {
    run(images, batch) {
      const [c, h, wd] = arch.config.inputShape;
      if (images.length !== batch * c * h * wd) throw new Error(`tfjs inference: ${images.length} values are not ${batch} images of [${c}, ${h}, ${wd}]`);
      return tf.tidy(() => {
        return walkDenseNet(tf, arch, tf.transpose(tf.tensor4d(images, [batch, c, h, wd]), [0, 2, 3, 1]), ops);
      });
    },
    dispose() {
      for (const t of weights.values()) t.dispose();
      weights.clear();
    },
  };
}
