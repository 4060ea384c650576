// Models: createModel() from a preset name or a config, describeModel() and planMemory() without a
// GPU. A Model holds its parameters on one Device; close() frees them (closing the device does too).

import { kernelClass, type KernelClass } from '../gpu/profile.js';
import { MEMORY_STRATEGIES, checkStrategy } from '../models/densenet_graph.js';
import type { DenseNetConfig } from '../models/densenet_config.js';
import { countParameters, denseNetConfig, describeDenseNet, multiplyAdds, preset, PRESETS, validateConfig } from '../models/index.js';
import { planDenseNetMemory } from '../models/memory_plan.js';
import { DenseNetModel } from '../models/model.js';
import { UsageError } from '../base/usage_error.js';
import type { Device } from './device.js';
import { gpuOf } from './internal.js';
import { wrapModel } from './model_handle.js';

export type { DenseNetConfig };

/**
 * Where a training step keeps its activations: 'naive' (a new concatenated buffer per layer),
 * 'shared' (one buffer per dense block, BN outputs stored), 'recompute' (BN outputs recomputed in
 * backward), 'fused' (BN-ReLU fused into the convolutions, nothing stored). Same numbers, less memory.
 */
export type MemoryStrategy = 'naive' | 'shared' | 'recompute' | 'fused';

/** A preset name (listPresets()) or DenseNet settings: any subset of DenseNetConfig, or a paper-style `depth`. */
export type ModelSpec = string | (Partial<DenseNetConfig> & { depth?: number; blocksCount?: number });

/** How images are turned into model input. Raw pixel values x are in [0, 1]. */
export interface Preprocessing {
  /** Per channel: input = (x − mean) / std. */
  mean: number[];
  std: number[];
  /**
   * How an image file is fitted to the input size: 'center-crop' is torchvision's evaluation
   * transform (shorter side to 256/224 of the input side, then the centre crop); 'resize' scales
   * straight to the input's height × width.
   */
  resize: 'center-crop' | 'resize';
  /**
   * A gray (1-channel) model inverts an image file whose mean is light: set where the model learned
   * light strokes on a dark background (MNIST digits) and is shown dark drawings on paper.
   */
  invertLight?: boolean;
}

export interface ModelOptions {
  /** Number of classes (overrides the preset's; null: a feature extractor without classifier). */
  classes?: number | null;
  /** Names of the classes, index = label (sets `classes` when that is not given). */
  classNames?: string[];
  inputShape?: [number, number, number];
  /** Dropout after each conv, in [0, 1). */
  dropRate?: number;
  /** Seed of the initial weights (torchvision's initialization); default 0. */
  seed?: number;
  /** Default memory strategy of this model's training and inference (default 'fused'). */
  memory?: MemoryStrategy;
  preprocessing?: Preprocessing;
}

export interface Model {
  readonly device: Device;
  readonly name: string;
  /** A copy of the full configuration. */
  readonly config: DenseNetConfig;
  readonly inputShape: readonly [number, number, number];
  /** null for a feature extractor. */
  readonly classes: number | null;
  /** Trainable parameters (torchvision's count for its presets: densenet121 has 7,978,856). */
  readonly parameterCount: number;
  /** Class names (index = label); set by train() from its data set, and by loadModel() where the file records them. */
  classNames: string[] | undefined;
  preprocessing: Preprocessing;
  /** The memory strategy train(), evaluate() and predict() use unless told otherwise. */
  memory: MemoryStrategy;
  /** Every parameter and BN running statistic by its torchvision state_dict name. */
  readWeights(): Promise<Map<string, Float32Array>>;
  /** Overwrites parameters by name; every name must exist and every size fit (checked before anything is written). */
  writeWeights(values: Map<string, Float32Array>): void;
  /** Frees the model's GPU memory. Safe to call twice. */
  close(): void;
}

/** The names of the built-in presets (the paper's CIFAR models, torchvision's ImageNet ones, small ones for digits and tests). */
export function listPresets(): string[] { return Object.keys(PRESETS); }

/** A full, validated config from a spec and overrides. Throws DenseNetConfigError naming what to change. */
export function resolveConfig(spec: ModelSpec, o: Pick<ModelOptions, 'classes' | 'classNames' | 'inputShape' | 'dropRate'> = {}): DenseNetConfig {
  const base = typeof spec === 'string' ? preset(spec) : denseNetConfig({ name: 'custom-densenet', ...spec });
  const config: DenseNetConfig = { ...base, blocks: [...base.blocks], inputShape: [...base.inputShape] };
  if (o.inputShape) config.inputShape = [...o.inputShape];
  if (o.classes !== undefined) config.classes = o.classes;
  else if (o.classNames) config.classes = o.classNames.length;
  if (o.dropRate !== undefined) config.dropRate = o.dropRate;
  validateConfig(config);
  if (o.classNames && o.classNames.length !== config.classes) {
    throw new UsageError(`createModel: ${o.classNames.length} class names for a model of ${config.classes ?? 'no'} classes`);
  }
  return config;
}

export interface ModelDescription {
  config: DenseNetConfig;
  parameters: number;
  /** Multiply-adds of one image's forward pass. */
  multiplyAdds: number;
  /** Width of the pooled feature vector (what features() returns per image). */
  features: number;
}

/** A model's size without a GPU. */
export function describeModel(spec: ModelSpec, options: Pick<ModelOptions, 'classes' | 'inputShape'> = {}): ModelDescription {
  const config = resolveConfig(spec, options);
  return { config, parameters: countParameters(config), multiplyAdds: multiplyAdds(config), features: describeDenseNet(config).features };
}

/** A new model on `device` with freshly initialized weights (torchvision's initialization, seeded). */
export function createModel(device: Device, spec: ModelSpec, options: ModelOptions = {}): Model {
  const gpu = gpuOf(device, 'createModel');
  const config = resolveConfig(spec, options);
  const inner = DenseNetModel.create(gpu, config, options.seed ?? 0);
  return wrapModel(device, inner, options);
}

export interface MemoryPlanOptions {
  /** Images per step. */
  batch: number;
  /** A training step (default) or inference. */
  training?: boolean;
  /** Strategies to plan (default all four: naive, shared, recompute, fused). */
  strategies?: MemoryStrategy[];
  /** The optimizer's state is planned too: SGD with momentum (default) keeps one tensor per parameter, Adam two. */
  optimizer?: 'sgd' | 'adam';
  /** Plan the kernel variants this device would run (they differ in workspace); default the software ones. */
  device?: Device;
}

export interface MemoryPlanRow {
  strategy: MemoryStrategy;
  /** Peak bytes of the step, parameters included. */
  totalBytes: number;
  byCategory: Record<string, number>;
  /** The largest single tensor: it must fit the adapter's maxStorageBufferBindingSize. */
  largestTensorBytes: number;
}

/** Planned peak GPU memory of a model's training step (or inference) per memory strategy, computed on the CPU. */
export function planMemory(spec: ModelSpec | Model, options: MemoryPlanOptions): MemoryPlanRow[] {
  const config = typeof spec === 'object' && 'parameterCount' in spec ? spec.config : resolveConfig(spec as ModelSpec);
  const training = options.training ?? true;
  if (!Number.isInteger(options.batch) || options.batch < (training ? 2 : 1)) {
    throw new UsageError(`planMemory: batch must be a whole number >= ${training ? 2 : 1}, got ${options.batch}`);
  }
  if (training && config.classes === null) throw new UsageError(`planMemory: model "${config.name}" has no classifier (classes: null), so it cannot train; plan with training: false`);
  const strategies = (options.strategies ?? [...MEMORY_STRATEGIES]).map(checkStrategy);
  const kernels: KernelClass = options.device ? kernelClass(gpuOf(options.device, 'planMemory')) : 'software';
  const optimizer = options.optimizer === 'adam'
    ? { kind: 'adam' as const, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false }
    : { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };
  return strategies.map((strategy) => {
    const plan = planDenseNetMemory(config, { batch: options.batch, strategy, training, optimizer: training ? optimizer : undefined, kernels });
    return { strategy, totalBytes: plan.totalBytes, byCategory: { ...plan.byCategory }, largestTensorBytes: plan.largestTensorBytes };
  });
}
