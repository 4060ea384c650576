// The object behind a Model handle, and the default preprocessing of a new one. Not exported from
// the package: its declarations would name engine types (the GPU's) that users need not see.

import { checkStrategy } from '../models/densenet_graph.js';
import type { MemoryStrategy } from './model.js';
import type { DenseNetConfig } from '../models/densenet_config.js';
import type { DenseNetModel } from '../models/model.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../train/preprocessing.js';
import type { Device } from './device.js';
import { attachModel, gpuOf, modelState, type ModelState } from './internal.js';
import type { Model, ModelOptions, Preprocessing } from './model.js';

/** The default preprocessing: ImageNet's for the ImageNet-stem models, none (mean 0, std 1) for the others until training sets it. */
export function defaultPreprocessing(config: DenseNetConfig): Preprocessing {
  const c = config.inputShape[0];
  if (config.stem === 'imagenet' && c === 3) return { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], resize: 'center-crop' };
  return { mean: new Array(c).fill(0), std: new Array(c).fill(1), resize: 'resize' };
}

class ModelHandle implements Model {
  classNames: string[] | undefined;
  preprocessing: Preprocessing;
  memory: MemoryStrategy;

  constructor(readonly device: Device, private readonly state: ModelState, options: ModelOptions) {
    this.classNames = options.classNames ? [...options.classNames] : undefined;
    this.preprocessing = options.preprocessing ?? defaultPreprocessing(state.inner.config);
    this.memory = checkStrategy(options.memory ?? 'fused');
  }

  get name(): string { return this.state.inner.config.name; }
  get config(): DenseNetConfig {
    const c = this.state.inner.config;
    return { ...c, blocks: [...c.blocks], inputShape: [...c.inputShape] };
  }
  get inputShape(): readonly [number, number, number] { return [...this.state.inner.config.inputShape]; }
  get classes(): number | null { return this.state.inner.config.classes; }
  get parameterCount(): number { return this.state.inner.trainableCount; }
  readWeights(): Promise<Map<string, Float32Array>> { return modelState(this).inner.readParameters(); }
  writeWeights(values: Map<string, Float32Array>): void { modelState(this).inner.writeParameters(values); }

  close(): void {
    if (this.state.closed) return;
    this.state.inference?.session.destroy();
    this.state.inference = undefined;
    this.state.inner.close();
    this.state.closed = true;
  }
}

/** A handle on an engine model (loadModel builds one from a file's config first). */
export function wrapModel(device: Device, inner: DenseNetModel, options: ModelOptions = {}): Model {
  const state: ModelState = { gpu: gpuOf(device), inner, closed: false };
  const handle = new ModelHandle(device, state, options);
  attachModel(handle, state);
  return handle;
}

