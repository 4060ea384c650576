// The flat, exact layer description of a DenseNet that the graph executor walks, with torchvision's
// module and parameter names, and the parameter and multiply-add counts derived from it.
//
// Conventions every consumer may rely on:
// - Names are torchvision module paths (`features.denseblock2.denselayer5.conv1`); a module's
//   parameters are `${name}.weight` etc. Modules torchvision has no name for (dropout, the global
//   pool) get names here that own no parameters.
// - Every 'bn' is followed by a ReLU (DenseNet has no BN without one), so there is no 'relu' kind:
//   apply BN then ReLU. The cifar and strided stems' conv0 is NOT followed by BN-ReLU.
// - Convs and the pool layers have no bias; only the classifier has one. Shapes are per image: the
//   executor adds the batch (activations are [C, N, H, W]).
// - Dense layer l of a block (index from 1) reads the block's channels [0, inChannels) and writes
//   growthRate new channels at channel offset inChannels; block channel counts are exact integers.
// - Non-BC dense layers follow torchvision's naming with the 3×3 conv in the first slot:
//   norm1 → relu1 → conv1 (3×3 pad 1 → k); there is no norm2/conv2.
// - The final BN is always named `features.norm5` (torchvision hard-codes it for any number of blocks).

import { compressedChannels, stemOutputHW, transitionOutputHW, validateConfig, type DenseNetConfig } from './densenet_config.js';

export type HW = [number, number];

/** Convolution without bias. Weight `${name}.weight` has shape [outChannels, inChannels, kernel, kernel]. */
export interface ConvSpec { kind: 'conv'; name: string; inChannels: number; outChannels: number; kernel: number; stride: number; padding: number; inputHW: HW; outputHW: HW }
/** BatchNorm2d over `channels` (γ `.weight`, β `.bias`, `.running_mean`, `.running_var`), ALWAYS followed by ReLU. */
export interface BatchNormSpec { kind: 'bn'; name: string; channels: number; hw: HW; relu: true }
/** Max pool (padding counts as −∞). The imagenet stem's pool0: kernel 3, stride 2, padding 1. */
export interface MaxPoolSpec { kind: 'maxpool'; name: string; channels: number; kernel: number; stride: number; padding: number; inputHW: HW; outputHW: HW }
/** Average pool over kernel×kernel windows, no padding, floor output size. Transitions: kernel 2, stride 2. */
export interface AvgPoolSpec { kind: 'avgpool'; name: string; channels: number; kernel: number; stride: number; padding: number; inputHW: HW; outputHW: HW }
/** Mean over all of H×W per channel: [C, H, W] → [C] (torchvision's adaptive_avg_pool2d(1) + flatten). */
export interface GlobalPoolSpec { kind: 'globalpool'; name: string; channels: number; inputHW: HW }
/** Inverted dropout (kept values scaled by 1/(1 − rate)) in training, identity in evaluation. */
export interface DropoutSpec { kind: 'dropout'; name: string; channels: number; hw: HW; rate: number }
/** y = W·x + b, weight [outFeatures, inFeatures], bias [outFeatures]. */
export interface LinearSpec { kind: 'linear'; name: string; inFeatures: number; outFeatures: number }

export type LayerSpec = ConvSpec | BatchNormSpec | MaxPoolSpec | AvgPoolSpec | GlobalPoolSpec | DropoutSpec | LinearSpec;

/** One dense layer; `ops` is the same layers in execution order. */
export interface DenseLayerSpec {
  /** `features.denseblock{block}.denselayer{index}` */
  name: string;
  /** Block number, from 1. */
  block: number;
  /** Layer number within its block, from 1 (torchvision's denselayerN). */
  index: number;
  /** c_l = block inChannels + (index − 1)·k: the prefix [0, c_l) of the block buffer this layer reads;
   * its k new channels are written at channel offset c_l. */
  inChannels: number;
  /** k (growthRate). */
  outChannels: number;
  hw: HW;
  bn1: BatchNormSpec;
  /** BC: 1×1 → bottleneckWidth·k. Non-BC: 3×3 pad 1 → k (the layer's output). */
  conv1: ConvSpec;
  /** After conv1 when dropRate > 0. */
  dropout1?: DropoutSpec;
  /** BC only. */
  bn2?: BatchNormSpec;
  /** BC only: 3×3 pad 1, bottleneckWidth·k → k (the layer's output). */
  conv2?: ConvSpec;
  /** BC only, after conv2 when dropRate > 0. */
  dropout2?: DropoutSpec;
  ops: LayerSpec[];
}

/** `features.transition{b}` between block b and b + 1: BN-ReLU, 1×1 conv C → floor(θ·C), [dropout], 2×2 avg pool. */
export interface TransitionSpec {
  name: string;
  inChannels: number;
  outChannels: number;
  inputHW: HW;
  outputHW: HW;
  bn: BatchNormSpec;
  conv: ConvSpec;
  dropout?: DropoutSpec;
  pool: AvgPoolSpec;
  ops: LayerSpec[];
}

export interface BlockSpec {
  /** `features.denseblock{index}` */
  name: string;
  index: number;
  /** Channels entering the block (from the stem or the previous transition). */
  inChannels: number;
  /** inChannels + layers·k: rows of the block buffer. */
  outChannels: number;
  hw: HW;
  layers: DenseLayerSpec[];
  /** Absent after the last block. */
  transition?: TransitionSpec;
}

export type ParameterKind = 'conv' | 'bn-weight' | 'bn-bias' | 'bn-running-mean' | 'bn-running-var' | 'linear-weight' | 'linear-bias';

/** torchvision's initialisation: conv kaiming_normal_ (std = √(2/fanIn)); BN γ = 1, β = 0, mean 0,
 * var 1; Linear weight U(±1/√inFeatures) (nn.Linear's default), bias 0. */
export type ParameterInit = { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number } | { kind: 'constant'; value: number };

export interface ParameterSpec {
  /** torchvision state_dict key, e.g. `features.denseblock1.denselayer1.norm1.weight` (its
   * `num_batches_tracked` buffers are not listed). */
  name: string;
  shape: number[];
  kind: ParameterKind;
  /** false for BN running statistics (buffers, updated by BN in training mode, not by the optimizer). */
  trainable: boolean;
  init: ParameterInit;
}

export interface ArchitectureSpec {
  config: DenseNetConfig;
  /** cifar: [conv0]. imagenet: [conv0, norm0 (+relu0), pool0]. */
  stem: LayerSpec[];
  blocks: BlockSpec[];
  /** [norm5 (+ReLU), globalpool] and, when classes is not null, [classifier]. */
  head: LayerSpec[];
  /** In torchvision state_dict order. */
  parameters: ParameterSpec[];
  /** Channels into the global pool (= classifier inFeatures). */
  features: number;
  /** Per image: [classes] logits, or [features] for a feature extractor. */
  outputShape: number[];
}

/** Everything needed to build the network, in order. Validates the config first. */
export function describeDenseNet(c: DenseNetConfig): ArchitectureSpec {
  validateConfig(c);
  const k = c.growthRate;
  const [inC, inH, inW] = c.inputShape;
  const dropout = (name: string, channels: number, hw: HW): DropoutSpec | undefined =>
    c.dropRate > 0 ? { kind: 'dropout', name, channels, hw: copyHW(hw), rate: c.dropRate } : undefined;

  const stem: LayerSpec[] = [];
  let hw: HW = [inH, inW];
  if (c.stem === 'cifar' || c.stem === 'strided') {
    const conv0 = conv('features.conv0', inC, c.initialFeatures, 3, c.stem === 'strided' ? 2 : 1, 1, hw);
    stem.push(conv0);
    hw = copyHW(conv0.outputHW);
  } else {
    const conv0 = conv('features.conv0', inC, c.initialFeatures, 7, 2, 3, hw);
    const poolOut = stemOutputHW('imagenet', inH, inW);
    stem.push(conv0, bn('features.norm0', c.initialFeatures, conv0.outputHW),
      { kind: 'maxpool', name: 'features.pool0', channels: c.initialFeatures, kernel: 3, stride: 2, padding: 1, inputHW: copyHW(conv0.outputHW), outputHW: copyHW(poolOut) });
    hw = poolOut;
  }

  const blocks: BlockSpec[] = [];
  let channels = c.initialFeatures;
  c.blocks.forEach((layerCount, b) => {
    const blockName = `features.denseblock${b + 1}`;
    const layers: DenseLayerSpec[] = [];
    for (let l = 0; l < layerCount; l++) {
      const name = `${blockName}.denselayer${l + 1}`;
      const cl = channels + l * k;
      const bn1 = bn(`${name}.norm1`, cl, hw);
      let layer: DenseLayerSpec;
      if (c.bottleneck) {
        const width = c.bottleneckWidth * k;
        const conv1 = conv(`${name}.conv1`, cl, width, 1, 1, 0, hw);
        const dropout1 = dropout(`${name}.dropout1`, width, hw);
        const bn2 = bn(`${name}.norm2`, width, hw);
        const conv2 = conv(`${name}.conv2`, width, k, 3, 1, 1, hw);
        const dropout2 = dropout(`${name}.dropout2`, k, hw);
        layer = { name, block: b + 1, index: l + 1, inChannels: cl, outChannels: k, hw: copyHW(hw), bn1, conv1, dropout1, bn2, conv2, dropout2,
          ops: present([bn1, conv1, dropout1, bn2, conv2, dropout2]) };
      } else {
        const conv1 = conv(`${name}.conv1`, cl, k, 3, 1, 1, hw);
        const dropout1 = dropout(`${name}.dropout1`, k, hw);
        layer = { name, block: b + 1, index: l + 1, inChannels: cl, outChannels: k, hw: copyHW(hw), bn1, conv1, dropout1, ops: present([bn1, conv1, dropout1]) };
      }
      layers.push(dropUndefined(layer));
    }
    const outChannels = channels + layerCount * k;
    const block: BlockSpec = { name: blockName, index: b + 1, inChannels: channels, outChannels, hw: copyHW(hw), layers };
    channels = outChannels;
    if (b < c.blocks.length - 1) {
      const name = `features.transition${b + 1}`;
      const out = compressedChannels(channels, c.compression);
      const outHW = transitionOutputHW(hw[0], hw[1]);
      const tBn = bn(`${name}.norm`, channels, hw);
      const tConv = conv(`${name}.conv`, channels, out, 1, 1, 0, hw);
      const tDrop = dropout(`${name}.dropout`, out, hw);
      const pool: AvgPoolSpec = { kind: 'avgpool', name: `${name}.pool`, channels: out, kernel: 2, stride: 2, padding: 0, inputHW: copyHW(hw), outputHW: copyHW(outHW) };
      block.transition = dropUndefined({ name, inChannels: channels, outChannels: out, inputHW: copyHW(hw), outputHW: outHW, bn: tBn, conv: tConv, dropout: tDrop, pool,
        ops: present([tBn, tConv, tDrop, pool]) });
      channels = out;
      hw = outHW;
    }
    blocks.push(block);
  });

  const head: LayerSpec[] = [bn('features.norm5', channels, hw), { kind: 'globalpool', name: 'globalpool', channels, inputHW: copyHW(hw) }];
  if (c.classes !== null) head.push({ kind: 'linear', name: 'classifier', inFeatures: channels, outFeatures: c.classes });

  const config: DenseNetConfig = { ...c, blocks: [...c.blocks], inputShape: [...c.inputShape] };
  const spec: ArchitectureSpec = { config, stem, blocks, head, parameters: [], features: channels, outputShape: c.classes === null ? [channels] : [c.classes] };
  spec.parameters = flattenLayers(spec).flatMap(parametersOf);
  return spec;
}

/** Every layer in execution order (stem, each dense layer and transition, head). */
export function flattenLayers(spec: ArchitectureSpec): LayerSpec[] {
  return [...spec.stem, ...spec.blocks.flatMap((b) => [...b.layers.flatMap((l) => l.ops), ...(b.transition?.ops ?? [])]), ...spec.head];
}

/** Trainable parameters: conv weights, BN γ and β, classifier weight and bias (running statistics excluded). */
export function countParameters(c: DenseNetConfig): number {
  return describeDenseNet(c).parameters.reduce((sum, p) => sum + (p.trainable ? size(p.shape) : 0), 0);
}

/** What a layer kind contributes to everything derived from a spec (parameters, cost, the layer table). */
export interface LayerKind<L extends LayerSpec> {
  /** Its row label in the layer table (`summary`). */
  label(layer: L): string;
  /** Per-image output shape: [C, H, W], or [features] after the global pool and the classifier. */
  outputShape(layer: L): number[];
  /** Parameters and buffers it owns, in torchvision's state_dict order. */
  parameters(layer: L): ParameterSpec[];
  /** Multiply-adds per image: convs and the classifier only (BN, ReLU, pools and dropout count 0). */
  multiplyAdds(layer: L): number;
}

/** One entry per layer kind: a new kind adds its entry here (the compiler asks for it) and nowhere else in this file. */
export const LAYER_KINDS: { [K in LayerSpec['kind']]: LayerKind<Extract<LayerSpec, { kind: K }>> } = {
  conv: {
    label: (l) => `${l.name} (conv ${l.kernel}×${l.kernel}${l.stride > 1 ? `/${l.stride}` : ''})`,
    outputShape: (l) => [l.outChannels, ...l.outputHW],
    parameters: (l) => [{ name: `${l.name}.weight`, shape: [l.outChannels, l.inChannels, l.kernel, l.kernel], kind: 'conv', trainable: true,
      init: { kind: 'normal', std: Math.sqrt(2 / (l.inChannels * l.kernel * l.kernel)) } }],
    multiplyAdds: (l) => l.outChannels * l.inChannels * l.kernel * l.kernel * l.outputHW[0] * l.outputHW[1],
  },
  bn: {
    label: (l) => `${l.name} (BN-ReLU)`,
    outputShape: (l) => [l.channels, ...l.hw],
    parameters: (l) => [
      { name: `${l.name}.weight`, shape: [l.channels], kind: 'bn-weight', trainable: true, init: { kind: 'constant', value: 1 } },
      { name: `${l.name}.bias`, shape: [l.channels], kind: 'bn-bias', trainable: true, init: { kind: 'constant', value: 0 } },
      { name: `${l.name}.running_mean`, shape: [l.channels], kind: 'bn-running-mean', trainable: false, init: { kind: 'constant', value: 0 } },
      { name: `${l.name}.running_var`, shape: [l.channels], kind: 'bn-running-var', trainable: false, init: { kind: 'constant', value: 1 } },
    ],
    multiplyAdds: () => 0,
  },
  maxpool: {
    label: (l) => `${l.name} (max pool ${l.kernel}×${l.kernel}/${l.stride})`,
    outputShape: (l) => [l.channels, ...l.outputHW], parameters: () => [], multiplyAdds: () => 0,
  },
  avgpool: {
    label: (l) => `${l.name} (avg pool ${l.kernel}×${l.kernel}/${l.stride})`,
    outputShape: (l) => [l.channels, ...l.outputHW], parameters: () => [], multiplyAdds: () => 0,
  },
  globalpool: { label: (l) => `${l.name} (global avg pool)`, outputShape: (l) => [l.channels], parameters: () => [], multiplyAdds: () => 0 },
  dropout: { label: (l) => `${l.name} (dropout ${l.rate})`, outputShape: (l) => [l.channels, ...l.hw], parameters: () => [], multiplyAdds: () => 0 },
  linear: {
    label: (l) => `${l.name} (linear)`,
    outputShape: (l) => [l.outFeatures],
    parameters: (l) => [
      { name: `${l.name}.weight`, shape: [l.outFeatures, l.inFeatures], kind: 'linear-weight', trainable: true,
        init: { kind: 'uniform', bound: 1 / Math.sqrt(l.inFeatures) } },
      { name: `${l.name}.bias`, shape: [l.outFeatures], kind: 'linear-bias', trainable: true, init: { kind: 'constant', value: 0 } },
    ],
    multiplyAdds: (l) => l.inFeatures * l.outFeatures,
  },
};

/** The LAYER_KINDS entry of a layer. */
export function layerKind<L extends LayerSpec>(layer: L): LayerKind<L> {
  return LAYER_KINDS[layer.kind] as unknown as LayerKind<L>;
}

/** Multiply-adds of one layer for one image (LayerKind.multiplyAdds). */
export function layerMultiplyAdds(layer: LayerSpec): number {
  return layerKind(layer).multiplyAdds(layer);
}

/** Multiply-adds per image of all convs and the classifier. */
export function multiplyAdds(c: DenseNetConfig): number {
  return flattenLayers(describeDenseNet(c)).reduce((sum, layer) => sum + layerMultiplyAdds(layer), 0);
}

/** Parameters and buffers a layer owns, in torchvision's state_dict order. */
export function parametersOf(layer: LayerSpec): ParameterSpec[] {
  return layerKind(layer).parameters(layer);
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function convOutput(x: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((x + 2 * padding - kernel) / stride) + 1;
}

function conv(name: string, inChannels: number, outChannels: number, kernel: number, stride: number, padding: number, inputHW: HW): ConvSpec {
  const outputHW: HW = [convOutput(inputHW[0], kernel, stride, padding), convOutput(inputHW[1], kernel, stride, padding)];
  return { kind: 'conv', name, inChannels, outChannels, kernel, stride, padding, inputHW: copyHW(inputHW), outputHW };
}

function bn(name: string, channels: number, hw: HW): BatchNormSpec {
  return { kind: 'bn', name, channels, hw: copyHW(hw), relu: true };
}

function copyHW(hw: HW): HW {
  return [hw[0], hw[1]];
}

function present(layers: (LayerSpec | undefined)[]): LayerSpec[] {
  return layers.filter((l): l is LayerSpec => l !== undefined);
}

/** Leaves optional fields absent rather than present-and-undefined (cleaner JSON, `'dropout1' in layer`). */
function dropUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}
