// Training and inference sessions: a model's graph for one batch size and memory strategy,
// planned and compiled once. A training step writes the batch, records forward, loss, backward
// and the optimizer update as one command buffer, and reads back two numbers (loss, correct).

import type { PassTimer } from '../gpu/timing.js';
import { tuningOf } from '../gpu/tuning.js';
import type { CompileProgress } from '../gpu/warmup.js';
import { Executable } from '../graph/executor.js';
import type { OptimizerConfig } from '../graph/ops/optimizer.js';
import { checkLabels } from '../kernels/softmax_cross_entropy.js';
import { buildDenseNetGraph, type DenseNetGraph, type FreezePart, type MemoryStrategy } from './densenet_graph.js';
import type { DenseNetModel } from './model.js';
import { kernelClass, type KernelClass } from '../gpu/profile.js';

/** NCHW (how images arrive) → CNHW (how the engine stores activations). */
export function toChannelMajor(images: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(images.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      out.set(images.subarray((i * c + ch) * plane, (i * c + ch + 1) * plane), (ch * n + i) * plane);
    }
  }
  return out;
}

function checkImages(model: DenseNetModel, images: Float32Array, batch: number): void {
  const [c, h, w] = model.config.inputShape;
  if (images.length !== batch * c * h * w) {
    throw new RangeError(`model "${model.config.name}" takes batches of ${batch} images of [${c}, ${h}, ${w}] ` +
      `(${batch * c * h * w} values, NCHW); got ${images.length} values`);
  }
}

/** A per-step seed from the session seed and the step number (dropout masks differ every step). */
export function stepSeed(seed: number, step: number): number {
  let h = (seed ^ Math.imul(step, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 13)) >>> 0;
}

export interface TrainingSessionOptions {
  batch: number;
  memory: MemoryStrategy;
  optimizer: OptimizerConfig;
  /** Seed of the dropout masks. */
  seed?: number;
  /** `features`: train only the classifier; the features run as in inference and keep their values bit for bit. */
  freeze?: FreezePart;
  /** Kernel variants (default: the adapter's class, kernelClass()). */
  kernels?: KernelClass;
  /** Progress of the GPU compile (default: the device's reporter, if any). */
  onCompile?: CompileProgress;
  /** False: build only, the driver compiles at the first step (see ExecutableOptions.precompile). */
  precompile?: boolean;
}

export interface StepResult { loss: number; correct: number }

export class TrainingSession {
  /** Steps taken so far (Adam's bias correction and the dropout seed follow it; a checkpoint stores it). */
  stepsTaken = 0;

  private constructor(readonly model: DenseNetModel, readonly built: DenseNetGraph, readonly executable: Executable, readonly options: TrainingSessionOptions) {}

  static async create(model: DenseNetModel, options: TrainingSessionOptions): Promise<TrainingSession> {
    const built = buildDenseNetGraph(model.arch, model.layout, {
      batch: options.batch, strategy: options.memory, training: true, optimizer: options.optimizer, freeze: options.freeze,
      kernels: options.kernels ?? kernelClass(model.gpu), tuning: tuningOf(model.gpu),
    });
    const executable = await Executable.create(model.gpu, built.graph, `train.${options.memory}`, { onCompile: options.onCompile, precompile: options.precompile });
    return new TrainingSession(model, built, executable, options);
  }

  get batch(): number { return this.options.batch; }

  /** Parameters this session trains: all of the model's, or with frozen features the classifier's. */
  get trainedCount(): number {
    const base = this.built.gradientsOffset ?? 0;
    let n = 0;
    for (const p of this.model.layout.offsets.values()) if (p.store === 'trainable' && p.offset >= base) n += p.shape.reduce((a, b) => a * b, 1);
    return n;
  }

  /**
   * Writes the batch (images NCHW) and records forward, loss, backward and update, without waiting.
   * A `timer` timestamps the step's passes (see Executable.encode); its times are read after result().
   */
  submit(images: Float32Array, labels: Uint32Array, lr: number, timer?: PassTimer): void {
    const [c, h, w] = this.model.config.inputShape;
    checkImages(this.model, images, this.batch);
    if (labels.length !== this.batch) throw new RangeError(`a batch of ${this.batch} images needs ${this.batch} labels, got ${labels.length}`);
    checkLabels(labels, this.model.config.classes!);
    if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`learning rate must be a finite number >= 0, got ${lr}`);
    this.executable.write(this.built.input, toChannelMajor(images, this.batch, c, h, w));
    this.executable.write(this.built.labels!, labels);
    this.stepsTaken++;
    const gpu = this.model.gpu;
    const encoder = gpu.device.createCommandEncoder();
    this.executable.encode(encoder, { queue: gpu.queue, step: this.stepsTaken, lr, seed: stepSeed(this.options.seed ?? 0, this.stepsTaken) }, timer);
    gpu.queue.submit([encoder.finish()]);
  }

  /** Waits for the step submitted last and returns its mean loss (before the update) and correct count. */
  async result(): Promise<StepResult> {
    const [loss] = await this.executable.read(this.built.loss!);
    const [correct] = await this.executable.read(this.built.correct!);
    return { loss, correct };
  }

  /** One training step: submit, then wait for its loss and number of correct predictions. */
  async step(images: Float32Array, labels: Uint32Array, lr: number): Promise<StepResult> {
    this.submit(images, labels, lr);
    return this.result();
  }

  /** The optimizer's state tensors (SGD velocity, or Adam's m and v), by name, for checkpoints. */
  private optimizerValues() {
    return this.built.graph.values.filter((v) => v.storage.category === 'optimizer' && v.offset === 0 && v.name === v.storage.name);
  }

  async readOptimizerState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const v of this.optimizerValues()) out.set(v.name, await this.executable.read(v));
    return out;
  }

  /** Restores optimizer state saved by readOptimizerState; every tensor must be present with its size. */
  writeOptimizerState(state: Map<string, Float32Array>): void {
    const values = this.optimizerValues();
    for (const v of values) {
      const data = state.get(v.name);
      if (!data) throw new Error(`optimizer state "${v.name}" is missing (was the checkpoint written with another optimizer?)`);
      if (data.length !== v.storage.elements) throw new Error(`optimizer state "${v.name}" has ${data.length} values, expected ${v.storage.elements}`);
    }
    for (const v of values) this.executable.write(v, state.get(v.name)!);
  }

  /** The parameter gradients of the last step, by torchvision name (for tests and debugging); only the trained parameters have any. */
  async readGradients(): Promise<Map<string, Float32Array>> {
    const flat = await this.executable.read(this.built.gradients!);
    const base = this.built.gradientsOffset ?? 0;
    const out = new Map<string, Float32Array>();
    for (const [name, p] of this.model.layout.offsets) {
      if (p.store === 'trainable' && p.offset >= base) out.set(name, flat.slice(p.offset - base, p.offset - base + p.shape.reduce((a, b) => a * b, 1)));
    }
    return out;
  }

  destroy(): void { this.executable.destroy(); }
}

export class InferenceSession {
  private constructor(readonly model: DenseNetModel, readonly built: DenseNetGraph, readonly executable: Executable, readonly batch: number) {}

  static async create(model: DenseNetModel, options: { batch: number; memory?: MemoryStrategy; onCompile?: CompileProgress; precompile?: boolean; kernels?: KernelClass }): Promise<InferenceSession> {
    const built = buildDenseNetGraph(model.arch, model.layout, {
      batch: options.batch, strategy: options.memory ?? 'fused', training: false, kernels: options.kernels ?? kernelClass(model.gpu), tuning: tuningOf(model.gpu),
    });
    const executable = await Executable.create(model.gpu, built.graph, 'inference', { onCompile: options.onCompile, precompile: options.precompile });
    return new InferenceSession(model, built, executable, options.batch);
  }

  /** Logits [N, classes] row-major (or pooled features [features, N] channel-major for a feature extractor). */
  async run(images: Float32Array, timer?: PassTimer): Promise<Float32Array> {
    const [c, h, w] = this.model.config.inputShape;
    checkImages(this.model, images, this.batch);
    this.executable.write(this.built.input, toChannelMajor(images, this.batch, c, h, w));
    await this.executable.run(undefined, timer);
    return this.executable.read(this.built.output);
  }

  destroy(): void { this.executable.destroy(); }
}
