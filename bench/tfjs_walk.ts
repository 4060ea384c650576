// The one walk of a DenseNet for the three TensorFlow.js networks: the test oracle
// (tfjs_densenet.ts), the training benchmark's trainer (train_tfjs.ts) and the inference benchmark
// (tfjs_inference.ts). The architecture (stem; each dense layer's output concatenated onto its input
// on the channel axis, as Keras's DenseNet does; transitions; head) is written here once. Each
// network gives a table of per-op builders, one per LayerSpec kind, on NHWC tensors.

import type * as TfCore from '@tensorflow/tfjs-core';
import type { ArchitectureSpec, LayerSpec } from '../src/models/architecture.js';

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;

/** One builder per layer kind: the layer applied to an NHWC tensor (a [N, C] tensor after the global pool). */
export type OpBuilders = { [K in LayerSpec['kind']]: (layer: Extract<LayerSpec, { kind: K }>, x: Tensor) => Tensor };

/** The whole network on NHWC `input`: [N, classes] logits, or [N, features] for a feature extractor. */
export function walkDenseNet(tf: Tf, arch: ArchitectureSpec, input: Tensor, ops: OpBuilders): Tensor {
  const apply = (x: Tensor, layer: LayerSpec) => (ops[layer.kind] as (layer: LayerSpec, x: Tensor) => Tensor)(layer, x);
  const run = (layers: LayerSpec[], x: Tensor) => layers.reduce(apply, x);
  let x = run(arch.stem, input);
  for (const block of arch.blocks) {
    for (const layer of block.layers) x = tf.concat([x, run(layer.ops, x)], 3);
    if (block.transition) x = run(block.transition.ops, x);
  }
  return run(arch.head, x);
}

/**
 * The pools as torchvision computes them, with padding spelled out (max pool pads with −∞; padded
 * average pooling is not modelled, DenseNet has none), and the global pool. `who` names the network
 * in errors.
 */
export function poolBuilders(tf: Tf, who: string): Pick<OpBuilders, 'maxpool' | 'avgpool' | 'globalpool'> {
  return {
    maxpool(layer, x) {
      const q = layer.padding;
      const padded = q > 0 ? tf.pad(x as TfCore.Tensor4D, [[0, 0], [q, q], [q, q], [0, 0]], -Infinity) : x;
      return tf.maxPool(padded as TfCore.Tensor4D, layer.kernel, layer.stride, 'valid');
    },
    avgpool(layer, x) {
      if (layer.padding !== 0) throw new Error(`${who}: ${layer.name}: padded average pooling is not modelled`);
      return tf.avgPool(x as TfCore.Tensor4D, layer.kernel, layer.stride, 'valid');
    },
    globalpool: (_layer, x) => tf.mean(x, [1, 2]),
  };
}
