// Builds the static graph of a DenseNet from its architecture description, for one batch size and
// one memory strategy (DESIGN.md §3):
//   naive     each dense layer concatenates into a new buffer (as the Keras/TensorFlow DenseNets):
//             memory grows with depth squared. Each BN computes its own statistics.
//   shared    one channel-major buffer per block; layer l reads the prefix [0, c_l) and writes its k
//             channels at c_l; batch statistics computed once per channel; BN-ReLU outputs stored.
//   recompute as shared, with every BN-ReLU output in one buffer shared by all layers, recomputed in backward.
//   fused     as shared, with BN-ReLU applied while the following conv loads its input: never stored.
// Inference graphs use running statistics, skip dropout, and have no backward or optimizer.

import { buildBackward } from '../graph/autograd.js';
import { Graph, GraphError, type Value } from '../graph/graph.js';
import { bnRelu, conv, fusedBnReluConv, recomputedBnReluConv, type BatchNormOperands } from '../graph/ops/conv.js';
import { avgPool2x2, bnRunningUpdate, bnStatistics, copyInto, dropout, globalAvgPool, linear, maxPool3x3, softmaxCrossEntropyLoss } from '../graph/ops/layers.js';
import { optimizerStep, type OptimizerConfig } from '../graph/ops/optimizer.js';
import type { TuningTable } from '../gpu/tuning.js';
import type { TensorRef } from '../kernels/tensor.js';
import type { ArchitectureSpec, BatchNormSpec, ConvSpec, DropoutSpec } from './architecture.js';
import type { KernelClass } from '../gpu/profile.js';

export const MEMORY_STRATEGIES = ['naive', 'shared', 'recompute', 'fused'] as const;
export type MemoryStrategy = typeof MEMORY_STRATEGIES[number];

/**
 * What a training graph leaves untrained. `features`: every layer but the classifier runs as in
 * inference (running statistics, no dropout, no running-statistics update, as torchvision's
 * frozen features in eval() mode), with no gradients, no optimizer state and no activations kept
 * for backward: only the classifier's parameters get gradients and optimizer state.
 */
export const FREEZE_PARTS = ['none', 'features'] as const;
export type FreezePart = typeof FREEZE_PARTS[number];

export function checkFreeze(name: string): FreezePart {
  if (!(FREEZE_PARTS as readonly string[]).includes(name)) {
    throw new GraphError(`unknown --freeze part "${name}": use one of ${FREEZE_PARTS.join(', ')} (features: train only the classifier)`);
  }
  return name as FreezePart;
}

/**
 * The classifier's range of the flat trainable-parameter buffer: its tensors come last
 * (parameterOffsets places them in the architecture's order, the head last), so training only
 * the classifier updates one contiguous, 256-byte-aligned suffix.
 */
export function classifierRange(layout: ParameterLayout): { offset: number; elements: number } {
  const total = layout.trainable.shape[0];
  let start = total;
  let featuresEnd = 0;
  for (const [name, p] of layout.offsets) {
    if (p.store !== 'trainable') continue;
    const end = p.offset + p.shape.reduce((a, b) => a * b, 1);
    if (name.startsWith('classifier.')) start = Math.min(start, p.offset);
    else featuresEnd = Math.max(featuresEnd, end);
  }
  if (start === total) throw new GraphError('graph: the model has no classifier to train (a feature extractor cannot be fine-tuned with frozen features)');
  if (featuresEnd > start) throw new GraphError('graph: the classifier\'s parameters are not the last ones of the parameter buffer');
  return { offset: start, elements: total - start };
}

/** Where each named parameter lives in the model's flat buffers (element offsets). */
export interface ParameterLayout {
  trainable: TensorRef;
  running: TensorRef;
  offsets: Map<string, { store: 'trainable' | 'running'; offset: number; shape: number[] }>;
}

export interface GraphOptions {
  batch: number;
  strategy: MemoryStrategy;
  /** Training: batch statistics, running-statistics updates, dropout, backward and the optimizer. */
  training: boolean;
  optimizer?: OptimizerConfig;
  /** Kernel variants to build (default the software ones; sessions pass the adapter's, kernelClass()). */
  kernels?: KernelClass;
  /** Launch choices by kernel and shape (the autotuner's); absent: every kernel's default. */
  tuning?: TuningTable;
  /** Training: which part stays as it is (default none). */
  freeze?: FreezePart;
}

export interface DenseNetGraph {
  graph: Graph;
  /** Images, channel-major [C, N, H, W]. */
  input: Value;
  /** Logits [N, classes], or pooled features [features, N] for a feature extractor. */
  output: Value;
  labels?: Value;
  loss?: Value;
  correct?: Value;
  /**
   * Training: the flat gradient of the trained parameters: the model's whole trainable buffer, or
   * with frozen features the classifier's range of it, starting at `gradientsOffset`.
   */
  gradients?: Value;
  /** Element offset in the model's trainable buffer where `gradients` (and the optimizer state) start. */
  gradientsOffset?: number;
}

export function checkStrategy(name: string): MemoryStrategy {
  if (!(MEMORY_STRATEGIES as readonly string[]).includes(name)) {
    throw new GraphError(`unknown memory strategy "${name}": use one of ${MEMORY_STRATEGIES.join(', ')}`);
  }
  return name as MemoryStrategy;
}

export function buildDenseNetGraph(arch: ArchitectureSpec, layout: ParameterLayout, o: GraphOptions): DenseNetGraph {
  checkStrategy(o.strategy);
  checkFreeze(o.freeze ?? 'none');
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new GraphError(`batch must be a whole number >= 1, got ${o.batch}`);
  if (o.training && o.batch < 2) throw new GraphError('training needs batch >= 2: batch statistics of one image are degenerate');
  if (o.training && arch.config.classes === null) throw new GraphError('a feature extractor (classes: null) has no loss to train');
  return new Builder(arch, layout, o).build();
}

class Builder {
  private readonly g: Graph;
  private readonly N: number;
  private readonly trainableAll: Value;
  private readonly runningStore;
  private readonly trainableStore;
  /** Frozen features: the classifier's range of the trainable buffer, the only storage that gets gradients. */
  private readonly classifierStore;
  /** Whether the feature layers train (batch statistics, running updates, dropout, gradients), or run as in inference. */
  private readonly featuresTrain: boolean;
  private readonly trainedOffset: number;
  private dropoutSites = 0;
  /** Shared strategies in training: the statistics of the block built last (norm5 reads them). */
  private lastBlockStatistics?: { mean: Value; variance: Value };
  /** recompute: one buffer for every BN-ReLU output, sized for the largest. */
  private sharedBnOutput?: Value;

  constructor(private readonly arch: ArchitectureSpec, private readonly layout: ParameterLayout, private readonly o: GraphOptions) {
    this.N = o.batch;
    this.g = new Graph(o.kernels ?? 'software');
    this.g.tuning = o.tuning;
    this.trainableStore = this.g.externalStorage('parameters', layout.trainable, 'parameters');
    this.runningStore = this.g.externalStorage('running-statistics', layout.running, 'parameters');
    this.featuresTrain = o.training && (o.freeze ?? 'none') === 'none';
    if (o.training && !this.featuresTrain) {
      const range = classifierRange(layout);
      const ref = { buffer: layout.trainable.buffer, offset: layout.trainable.offset + range.offset, shape: [range.elements] };
      this.classifierStore = this.g.externalStorage('classifier-parameters', ref, 'parameters');
      this.trainableAll = this.g.view(this.classifierStore, 'classifier-parameters', ref.shape, 0, true);
      this.trainedOffset = range.offset;
    } else {
      this.trainableAll = this.g.view(this.trainableStore, 'parameters', layout.trainable.shape, 0, o.training);
      this.trainedOffset = 0;
    }
    if (o.strategy === 'recompute') {
      const largest = Math.max(...this.allBatchNorms().map((b) => b.channels * b.hw[0] * b.hw[1])) * this.N;
      this.sharedBnOutput = this.g.tensor('shared.bn-relu', [largest], 'activations');
    }
  }

  private allBatchNorms(): BatchNormSpec[] {
    const a = this.arch;
    return [...a.stem, ...a.blocks.flatMap((b) => [...b.layers.flatMap((l) => l.ops), ...(b.transition?.ops ?? [])]), ...a.head]
      .filter((l): l is BatchNormSpec => l.kind === 'bn');
  }

  private param(name: string): Value {
    const p = this.layout.offsets.get(name);
    if (!p) throw new GraphError(`graph: the model has no parameter "${name}"`);
    const trainable = p.store === 'trainable';
    if (this.classifierStore && name.startsWith('classifier.')) {
      return this.g.view(this.classifierStore, name, p.shape, p.offset - this.trainedOffset, true);
    }
    // Only parameters that train need gradients (with frozen features, none of these do).
    return this.g.view(trainable ? this.trainableStore : this.runningStore, name, p.shape, p.offset, trainable && this.featuresTrain);
  }

  private activation(name: string, c: number, hw: [number, number]): Value {
    return this.g.tensor(name, [c, this.N, hw[0], hw[1]], 'activations');
  }

  build(): DenseNetGraph {
    const { g, arch, o } = this;
    const [C, H, W] = arch.config.inputShape;
    const input = g.tensor('input', [C, this.N, H, W], 'io', { persistent: true });
    let x = this.stem(input);
    arch.blocks.forEach((block) => { x = this.block(block, x); });
    const out = this.head(x);
    if (!o.training) return { graph: g, input, output: out.features ?? out.logits! };
    const logits = out.logits!;
    const labels = g.tensor('labels', [this.N], 'io', { persistent: true });
    const loss = g.tensor('loss', [1], 'io', { persistent: true });
    const correct = g.tensor('correct', [1], 'io', { persistent: true });
    const dlogits = g.tensor('logits.grad', logits.shape, 'gradients');
    softmaxCrossEntropyLoss(g, 'loss', { logits, labels, loss, correct, dlogits });
    const gb = buildBackward(g, [[logits, dlogits]]);
    const grads = gb.grad(this.trainableAll);
    if (!grads) throw new GraphError('graph: no gradient reached the parameters');
    optimizerStep(g, o.optimizer ?? { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: arch.config.weightDecay }, this.trainableAll, grads);
    return { graph: g, input, output: logits, labels, loss, correct, gradients: grads, gradientsOffset: this.trainedOffset };
  }

  private stem(input: Value): Value {
    const first = this.arch.blocks[0];
    const target = this.blockInput(first.name, first.inChannels, first.outChannels, first.hw);
    const [conv0, norm0] = this.arch.stem as [ConvSpec, BatchNormSpec?];
    if (!norm0) { // cifar and strided stems: one conv
      this.conv(conv0, input, target);
      return target;
    }
    const c0 = this.activation(`${conv0.name}.out`, conv0.outChannels, conv0.outputHW);
    this.conv(conv0, input, c0);
    const stats = this.ownStatistics(norm0!, c0);
    const r0 = this.activation(`${norm0!.name}.out`, norm0!.channels, norm0!.hw);
    bnRelu(this.g, norm0!.name, { x: c0, y: r0, ...this.bnOperands(norm0!, stats) });
    maxPool3x3(this.g, 'features.pool0', r0, target);
    return target;
  }

  /** The storage a block's input channels are written to: the block buffer's prefix, or (naive) a tensor of its own. */
  private blockInput(name: string, inChannels: number, outChannels: number, hw: [number, number]): Value {
    if (this.o.strategy === 'naive') return this.activation(`${name}.input`, inChannels, hw);
    const buffer = this.activation(`${name}.features`, outChannels, hw);
    return this.g.channelSlice(buffer, 0, inChannels, `${name}.input`);
  }

  private block(block: ArchitectureSpec['blocks'][number], x: Value): Value {
    const { g } = this;
    const naive = this.o.strategy === 'naive';
    // Shared strategies: one statistics buffer per block, filled as channels are written.
    const blockBuffer = naive ? undefined : g.view(x.storage, `${block.name}.features`, [block.outChannels, this.N, block.hw[0], block.hw[1]]);
    const mean = naive ? undefined : g.tensor(`${block.name}.mean`, [block.outChannels], 'activations');
    const variance = naive ? undefined : g.tensor(`${block.name}.variance`, [block.outChannels], 'activations');
    const sliceStats = (c0: number, c: number) => ({ mean: g.view(mean!.storage, `${block.name}.mean[${c0}:${c0 + c}]`, [c], c0), variance: g.view(variance!.storage, `${block.name}.variance[${c0}:${c0 + c}]`, [c], c0) });
    if (this.featuresTrain && !naive) bnStatistics(g, `${block.name}.input.statistics`, { x, ...sliceStats(0, block.inChannels) });
    this.lastBlockStatistics = naive || !this.featuresTrain ? undefined : { mean: mean!, variance: variance! };

    let features = x;
    for (const layer of block.layers) {
      const cl = layer.inChannels;
      const prefix = naive ? features : g.channelSlice(blockBuffer!, 0, cl, `${layer.name}.input`);
      const stats = naive ? this.ownStatistics(layer.bn1, prefix) : this.sharedStatistics(layer.bn1, sliceStats(0, cl));
      const newChannels = naive ? this.activation(`${layer.name}.new`, layer.outChannels, layer.hw) : g.channelSlice(blockBuffer!, cl, layer.outChannels, `${layer.name}.new`);
      if (layer.conv2) {
        const bottleneck = this.activation(`${layer.conv1.name}.out`, layer.conv1.outChannels, layer.hw);
        this.bnReluConvDropout(layer.bn1, stats, layer.conv1, prefix, bottleneck, layer.dropout1);
        const stats2 = this.ownStatistics(layer.bn2!, bottleneck);
        this.bnReluConvDropout(layer.bn2!, stats2, layer.conv2, bottleneck, newChannels, layer.dropout2);
      } else {
        this.bnReluConvDropout(layer.bn1, stats, layer.conv1, prefix, newChannels, layer.dropout1);
      }
      if (naive) {
        const next = this.activation(`${layer.name}.concat`, cl + layer.outChannels, layer.hw);
        copyInto(g, `${layer.name}.concat.input`, features, g.channelSlice(next, 0, cl));
        copyInto(g, `${layer.name}.concat.new`, newChannels, g.channelSlice(next, cl, layer.outChannels));
        features = next;
      } else {
        if (this.featuresTrain) bnStatistics(g, `${layer.name}.statistics`, { x: newChannels, ...sliceStats(cl, layer.outChannels) });
        features = blockBuffer!;
      }
    }
    const t = block.transition;
    if (!t) return features;
    const stats = naive ? this.ownStatistics(t.bn, features) : this.sharedStatistics(t.bn, sliceStats(0, block.outChannels));
    const convOut = this.activation(`${t.conv.name}.out`, t.conv.outChannels, t.inputHW);
    this.bnReluConvDropout(t.bn, stats, t.conv, features, convOut, t.dropout);
    const next = this.arch.blocks[block.index];
    const target = this.blockInput(next.name, next.inChannels, next.outChannels, next.hw);
    avgPool2x2(g, t.pool.name, convOut, target);
    return target;
  }

  private head(x: Value): { logits?: Value; features?: Value } {
    const [norm5] = this.arch.head as [BatchNormSpec];
    // Shared strategies: norm5 reads the last block's statistics, computed as its channels were written.
    const stats = this.lastBlockStatistics ? this.sharedStatistics(norm5, this.lastBlockStatistics) : this.ownStatistics(norm5, x);
    const activated = this.activation(`${norm5.name}.out`, norm5.channels, norm5.hw);
    bnRelu(this.g, norm5.name, { x, y: activated, ...this.bnOperands(norm5, stats) });
    const pooled = this.g.tensor('features.pooled', [norm5.channels, this.N], 'activations');
    globalAvgPool(this.g, 'globalpool', activated, pooled);
    if (this.arch.config.classes === null) return { features: pooled };
    const logits = this.g.tensor('logits', [this.N, this.arch.config.classes], 'activations');
    linear(this.g, 'classifier', { x: pooled, weight: this.param('classifier.weight'), bias: this.param('classifier.bias'), y: logits });
    return { logits };
  }

  /** Statistics a BN computes for itself (naive strategy, and BN2 of a bottleneck under every strategy). */
  private ownStatistics(bn: BatchNormSpec, x: Value): { mean: Value; variance: Value } {
    if (!this.featuresTrain) return this.runningStatistics(bn);
    const mean = this.g.tensor(`${bn.name}.mean`, [bn.channels], 'activations');
    const variance = this.g.tensor(`${bn.name}.variance`, [bn.channels], 'activations');
    bnStatistics(this.g, `${bn.name}.statistics`, { x, mean, variance });
    this.updateRunning(bn, { mean, variance });
    return { mean, variance };
  }

  /** Statistics already computed for the block's channels; this BN only updates its running copy. */
  private sharedStatistics(bn: BatchNormSpec, stats: { mean: Value; variance: Value }): { mean: Value; variance: Value } {
    if (!this.featuresTrain) return this.runningStatistics(bn);
    this.updateRunning(bn, stats);
    return stats;
  }

  private runningStatistics(bn: BatchNormSpec): { mean: Value; variance: Value } {
    return { mean: this.param(`${bn.name}.running_mean`), variance: this.param(`${bn.name}.running_var`) };
  }

  private updateRunning(bn: BatchNormSpec, stats: { mean: Value; variance: Value }): void {
    const cfg = this.arch.config;
    bnRunningUpdate(this.g, `${bn.name}.running`, {
      ...stats, runningMean: this.param(`${bn.name}.running_mean`), runningVariance: this.param(`${bn.name}.running_var`),
      momentum: cfg.bnMomentum, count: this.N * bn.hw[0] * bn.hw[1],
    });
  }

  private bnOperands(bn: BatchNormSpec, stats: { mean: Value; variance: Value }): BatchNormOperands {
    return { ...stats, gamma: this.param(`${bn.name}.weight`), beta: this.param(`${bn.name}.bias`), eps: this.arch.config.bnEps };
  }

  /** BN → ReLU → conv from x into y, in the way the memory strategy prescribes. */
  private bnReluConv(bn: BatchNormSpec, stats: { mean: Value; variance: Value }, spec: ConvSpec, x: Value, y: Value): void {
    const t = { x, y, w: this.param(`${spec.name}.weight`), ...this.bnOperands(bn, stats), stride: spec.stride, padding: spec.padding };
    switch (this.o.strategy) {
      case 'fused':
        fusedBnReluConv(this.g, spec.name, t);
        return;
      case 'recompute': {
        const shared = this.g.view(this.sharedBnOutput!.storage, `${bn.name}.out`, x.shape, 0);
        if (this.featuresTrain) recomputedBnReluConv(this.g, spec.name, { ...t, shared });
        else { bnRelu(this.g, bn.name, { ...t, y: shared }); this.conv(spec, shared, y); }
        return;
      }
      default: {
        const activated = this.activation(`${bn.name}.out`, bn.channels, bn.hw);
        bnRelu(this.g, bn.name, { ...t, y: activated });
        this.conv(spec, activated, y);
      }
    }
  }

  private conv(spec: ConvSpec, x: Value, y: Value): void {
    conv(this.g, spec.name, { x, y, w: this.param(`${spec.name}.weight`), stride: spec.stride, padding: spec.padding });
  }

  /**
   * BN → ReLU → conv into `target`, followed by dropout when the layer has one and the graph
   * trains (dropout is the identity in inference, so the conv then writes `target` directly).
   */
  private bnReluConvDropout(bn: BatchNormSpec, stats: { mean: Value; variance: Value }, spec: ConvSpec, x: Value, target: Value, drop?: DropoutSpec): void {
    if (!drop || !this.featuresTrain) {
      // A fused non-BC conv may read the block prefix and write the next channels of one buffer
      // even where they share a 256-byte block: the binding rule reads the prefix through the
      // output's binding (src/kernels/binding.ts).
      this.bnReluConv(bn, stats, spec, x, target);
      return;
    }
    const raw = this.g.tensor(`${drop.name}.in`, target.shape, 'activations');
    this.bnReluConv(bn, stats, spec, x, raw);
    dropout(this.g, drop.name, { x: raw, y: target, rate: drop.rate, site: this.dropoutSites++ });
  }
}
