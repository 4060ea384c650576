// A DenseNet as an ONNX inference graph, built by walking the model's own layer description
// (src/models/architecture.ts) so every preset and config the engine builds is covered: Conv,
// BatchNormalization → Relu, MaxPool (imagenet stem), Concat (each dense layer appends its k
// channels to the block's running tensor, as torchvision's forward does), AveragePool
// (transitions), GlobalAveragePool → Flatten, Gemm, and an optional Softmax output.
//
// Batch norm stays a BatchNormalization node, not folded into a conv: DenseNet is pre-activation
// (BN → ReLU → conv), so a BN's affine map cannot move past the ReLU into the conv that follows,
// and it cannot fold backwards either, since within a block each layer's BN normalizes channels
// written by many earlier convs, each read by several BNs with their own γ, β. The one conv → BN
// pair (the imagenet stem's conv0 → norm0) is left to the runtime: ONNX Runtime fuses it when it
// optimizes the graph. Dropout is the identity in inference and gets no node.
//
// Values and initializers carry torchvision's module and state_dict names, so a graph node says
// which layer it is (`features.denseblock2.denselayer5.conv1`).

import { describeDenseNet, size, type LayerSpec } from '../../models/architecture.js';
import type { DenseNetConfig } from '../../models/densenet_config.js';
import {
  ATTRIBUTE_FLOAT, ATTRIBUTE_INT, ATTRIBUTE_INTS, encodeOnnxModel, float32RawData, ONNX_FLOAT,
  type OnnxAttribute, type OnnxDim, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo,
} from './onnx_proto.js';

/** IR version 8 with opset 17: read by ONNX Runtime ≥ 1.12, TensorRT 8.5+, OpenVINO 2022.3+ (every op used here exists unchanged there). */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
export const ONNX_INPUT_NAME = 'input';
/** The batch dimension's symbolic name (dim_param) on the input and every output. */
export const ONNX_BATCH_DIM = 'batch';
/**
 * The input's height and width are symbolic too: every layer is a convolution or a pool with its
 * own kernel, and the head a GlobalAveragePool, so the graph takes any size the downsamplings
 * leave at least 1×1 (as torchvision's module does); metadata input_size says what it was trained at.
 */
export const ONNX_HEIGHT_DIM = 'height';
export const ONNX_WIDTH_DIM = 'width';

/** A model the exporter cannot write as ONNX; the message names the option or layer. */
export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

/**
 * How the exporter treats every DenseNetConfig field. A field not listed here (one added to the
 * config later) is refused by name: the exporter must learn what it means before it may write a
 * graph for it, instead of silently writing a network that computes something else.
 */
const CONFIG_FIELDS: Record<string, string> = {
  name: 'graph name',
  blocks: 'dense blocks', growthRate: 'dense layers', initialFeatures: 'stem', bottleneck: 'dense layers',
  bottleneckWidth: 'dense layers', compression: 'transitions', stem: 'stem (cifar, strided and imagenet are all expressible)',
  inputShape: 'input shape', classes: 'classifier (null: the pooled features are the output)',
  bnEps: 'BatchNormalization epsilon',
  dropRate: 'dropout is the identity in inference: no node',
  weightDecay: 'training only', bnMomentum: 'training only',
};

/** Preprocessing a user must apply before the graph, recorded in metadata_props. */
export interface OnnxPreprocessing {
  /** Per-channel normalization x' = (x − mean[c]) / std[c] of pixel values scaled to [0, 1]. */
  mean: readonly number[];
  std: readonly number[];
  /** Class names in output order, where known. */
  classNames?: readonly string[];
  /** How images become the input, in words (resize, crop, ...). */
  description?: string;
}

export interface DenseNetOnnxOptions {
  /** Add a second output `probabilities` = Softmax(logits) (needs a classifier). */
  softmax?: boolean;
  preprocessing?: OnnxPreprocessing;
  /** More metadata_props entries. */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

/** The names of the graph's outputs for a config and options: logits (+ probabilities), or features. */
export function onnxOutputNames(config: DenseNetConfig, softmax = false): string[] {
  return config.classes === null ? ['features'] : softmax ? ['logits', 'probabilities'] : ['logits'];
}

/** Refuses, by name, config fields the exporter does not know and layers it cannot express. */
export function checkOnnxExportable(config: DenseNetConfig): void {
  const unknown = Object.keys(config).filter((key) => !Object.hasOwn(CONFIG_FIELDS, key));
  if (unknown.length > 0) {
    const shown = unknown.map((k) => `"${k}" (${JSON.stringify((config as unknown as Record<string, unknown>)[k])})`).join(', ');
    throw new OnnxExportError(`ONNX export of "${config.name}": model option${unknown.length > 1 ? 's' : ''} ${shown} cannot be expressed by this exporter ` +
      `(it writes ${Object.keys(CONFIG_FIELDS).join(', ')}); export to .safetensors instead`);
  }
}

const ints = (name: string, values: number[]): OnnxAttribute => ({ name, type: ATTRIBUTE_INTS, ints: values });
const int = (name: string, value: number): OnnxAttribute => ({ name, type: ATTRIBUTE_INT, i: value });
const float = (name: string, value: number): OnnxAttribute => ({ name, type: ATTRIBUTE_FLOAT, f: value });

/** The ONNX model (a plain object; encodeOnnxModel writes it) of `config` with `params` (torchvision names, float32). */
export function denseNetOnnxModel(config: DenseNetConfig, params: Map<string, Float32Array>, options: DenseNetOnnxOptions = {}): OnnxModel {
  checkOnnxExportable(config);
  const arch = describeDenseNet(config);
  if (options.softmax && config.classes === null) throw new OnnxExportError(`ONNX export of "${config.name}": a softmax output needs a classifier; this config has classes: null`);
  const expected = new Set(arch.parameters.map((p) => p.name));
  const extra = [...params.keys()].filter((n) => !expected.has(n));
  if (extra.length > 0) throw new OnnxExportError(`ONNX export: tensors ${extra.slice(0, 5).map((n) => `"${n}"`).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''} are not parameters of model "${config.name}"`);

  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  const shapes = new Map(arch.parameters.map((p) => [p.name, p.shape]));
  const weight = (name: string): string => {
    const shape = shapes.get(name)!;
    const data = params.get(name);
    if (!data) throw new OnnxExportError(`ONNX export: parameter "${name}" [${shape.join(', ')}] is missing`);
    if (data.length !== size(shape)) throw new OnnxExportError(`ONNX export: parameter "${name}" has ${data.length} values, shape [${shape.join(', ')}] needs ${size(shape)}`);
    initializers.push({ name, dims: [...shape], data_type: ONNX_FLOAT, raw_data: float32RawData(data) });
    return name;
  };
  const node = (name: string, opType: string, inputs: string[], attribute: OnnxAttribute[] = [], output = name): string => {
    nodes.push({ name, op_type: opType, input: inputs, output: [output], attribute });
    return output;
  };

  /** One layer of the spec applied to value `x`; returns the value it produces. */
  const apply = (layer: LayerSpec, x: string, lastOutput?: string): string => {
    switch (layer.kind) {
      case 'conv':
        return node(layer.name, 'Conv', [x, weight(`${layer.name}.weight`)], [
          ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride]),
          ints('pads', [layer.padding, layer.padding, layer.padding, layer.padding]), ints('dilations', [1, 1]), int('group', 1)]);
      case 'bn': {
        const normalized = node(layer.name, 'BatchNormalization', [x, weight(`${layer.name}.weight`), weight(`${layer.name}.bias`),
          weight(`${layer.name}.running_mean`), weight(`${layer.name}.running_var`)], [float('epsilon', config.bnEps)]);
        return node(`${layer.name}.relu`, 'Relu', [normalized]);
      }
      case 'maxpool':
        return node(layer.name, 'MaxPool', [x], [ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride]),
          ints('pads', [layer.padding, layer.padding, layer.padding, layer.padding])]);
      case 'avgpool':
        // The engine's average pool has no padding; one with padding would need its divisor rule spelled out.
        if (layer.padding !== 0) throw new OnnxExportError(`ONNX export: average pool "${layer.name}" has padding ${layer.padding}, which the exporter does not express`);
        return node(layer.name, 'AveragePool', [x], [ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride])]);
      case 'globalpool':
        return node(`${layer.name}.flatten`, 'Flatten', [node(layer.name, 'GlobalAveragePool', [x])], [int('axis', 1)], lastOutput ?? `${layer.name}.flatten`);
      case 'dropout':
        return x;
      case 'linear':
        return node(layer.name, 'Gemm', [x, weight(`${layer.name}.weight`), weight(`${layer.name}.bias`)],
          [float('alpha', 1), float('beta', 1), int('transB', 1)], lastOutput ?? layer.name);
      default: {
        const unknown: never = layer;
        throw new OnnxExportError(`ONNX export: layer kind "${(unknown as LayerSpec).kind}" cannot be expressed`);
      }
    }
  };

  const outputs = onnxOutputNames(config, options.softmax);
  let x = ONNX_INPUT_NAME;
  for (const layer of arch.stem) x = apply(layer, x);
  for (const block of arch.blocks) {
    for (const layer of block.layers) {
      let y = x; // bn1 reads all of the block's channels so far: exactly the running tensor
      for (const op of layer.ops) y = apply(op, y);
      x = node(`${layer.name}.concat`, 'Concat', [x, y], [int('axis', 1)]);
    }
    for (const op of block.transition?.ops ?? []) x = apply(op, x);
  }
  arch.head.forEach((layer, i) => { x = apply(layer, x, i === arch.head.length - 1 ? outputs[0] : undefined); });
  if (options.softmax) node('softmax', 'Softmax', [x], [int('axis', 1)], outputs[1]);

  const [c, h, w] = config.inputShape;
  const batch: OnnxDim = { dim_param: ONNX_BATCH_DIM };
  const tensorInfo = (name: string, dims: OnnxDim[], doc: string): OnnxValueInfo =>
    ({ name, type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: dims } } }, doc_string: doc });
  const width = config.classes ?? arch.features;
  const outputDocs: Record<string, string> = {
    logits: `[batch, ${width}] class scores before softmax`,
    probabilities: `[batch, ${width}] softmax of the logits`,
    features: `[batch, ${width}] pooled features (norm5 → ReLU → global average pool)`,
  };

  return {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'densenet-wgsl',
    producer_version: options.producerVersion ?? '',
    doc_string: `${config.name}: DenseNet${config.bottleneck ? '-BC' : ''} inference graph (batch norm with running statistics, no dropout)`,
    graph: {
      name: config.name,
      node: nodes,
      initializer: initializers,
      input: [tensorInfo(ONNX_INPUT_NAME, [batch, { dim_value: c }, { dim_param: ONNX_HEIGHT_DIM }, { dim_param: ONNX_WIDTH_DIM }],
        `[batch, ${c}, height, width] float32 NCHW, normalized (see metadata mean, std); trained at ${h}×${w} (metadata input_size)`)],
      output: outputs.map((name) => tensorInfo(name, [batch, { dim_value: width }], outputDocs[name])),
    },
    metadata_props: Object.entries(metadataOf(config, options)).map(([key, value]) => ({ key, value })),
  };
}

/** metadata_props: preprocessing (mean, std, input size, class names) and the engine's config. */
function metadataOf(config: DenseNetConfig, options: DenseNetOnnxOptions): Record<string, string> {
  const p = options.preprocessing;
  const [c] = config.inputShape;
  if (p && (p.mean.length !== c || p.std.length !== c)) {
    throw new OnnxExportError(`ONNX export of "${config.name}": ${p.mean.length} means and ${p.std.length} stds for ${c}-channel input`);
  }
  if (p?.classNames && config.classes !== null && p.classNames.length !== config.classes) {
    throw new OnnxExportError(`ONNX export of "${config.name}": ${p.classNames.length} class names for ${config.classes} classes`);
  }
  const out: Record<string, string> = {
    model_name: config.name,
    input_size: JSON.stringify(config.inputShape),
    input_layout: 'NCHW float32',
  };
  if (p) {
    out.mean = JSON.stringify(p.mean);
    out.std = JSON.stringify(p.std);
    if (p.classNames && config.classes !== null) out.class_names = JSON.stringify(p.classNames);
    if (p.description) out.preprocessing = p.description;
  }
  out['densenet_wgsl.config'] = JSON.stringify(config);
  return { ...out, ...options.metadata };
}

/** The serialized ONNX file of `config` with `params`. */
export function encodeDenseNetOnnx(config: DenseNetConfig, params: Map<string, Float32Array>, options: DenseNetOnnxOptions = {}): Uint8Array {
  return encodeOnnxModel(denseNetOnnxModel(config, params, options));
}
