// The implementations `bench train` (and `bench memory --measure`) time: ours under one memory
// strategy, tfjs on tfjs-backend-webgpu on our Dawn device, and tfjs's cpu backend. Each is a
// StepRunner: build it, then step() runs one whole training step (forward, loss, backward, SGD
// update) and resolves when the GPU work is done and the loss is read back.

import type { Gpu } from '../src/gpu/device.js';
import type { OptimizerConfig } from '../src/graph/ops/optimizer.js';
import type { ArchitectureSpec } from '../src/models/architecture.js';
import type { DenseNetConfig } from '../src/models/densenet_config.js';
import type { MemoryStrategy } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { TrainingSession } from '../src/models/session.js';
import { openTfjsOnGpu, type Tf, type TfjsOnGpu } from './tfjs_webgpu.js';
import { createTfjsTrainer, guardKernels, initialParameters, nchwToNhwc, type TfjsTrainer, type TfjsTrainerOptions } from './train_tfjs.js';
import { ensureTfjsGradients } from './train_tfjs_gradients.js';

export interface StepRunner {
  /** One training step, finished on the device; resolves to its loss. */
  step(): Promise<number>;
  /** Peak device bytes this implementation has held since it was built (null where unknown). */
  peakBytes(): number | null;
  /** Bytes by memory category at the peak (ours only). */
  peakByCategory?(): Record<string, number>;
  /**
   * Where a step runs synchronously (tfjs cpu): a wall-clock time (performance.now() ms) after which a
   * running step stops with BudgetExceeded between two kernels; null disarms it.
   */
  setDeadline?(atMs: number | null): void;
  close(): Promise<void>;
}

export class BudgetExceeded extends Error {
  constructor() { super('time budget exceeded'); }
}

/** Thrown when tfjs-webgpu's buffer pool would pass the memory cap. */
export class MemoryCapExceeded extends Error {}

/** The benchmark's fixed training problem: the same parameters, batch and optimizer for every implementation. */
export interface TrainProblem {
  config: DenseNetConfig;
  arch: ArchitectureSpec;
  batch: number;
  seed: number;
  /** NCHW images and class labels of the one batch every step trains on. */
  images: Float32Array;
  labels: Uint32Array;
  lr: number;
  momentum: number;
  weightDecay: number;
}

export function sgdConfig(p: TrainProblem): OptimizerConfig {
  return { kind: 'sgd', lr: p.lr, momentum: p.momentum, nesterov: true, weightDecay: p.weightDecay };
}

function tfjsOptions(p: TrainProblem): TfjsTrainerOptions {
  return { lr: p.lr, momentum: p.momentum, nesterov: true, weightDecay: p.weightDecay };
}

/** Ours: a DenseNetModel and a TrainingSession under `strategy`; peak bytes from the arena. */
export async function oursRunner(gpu: Gpu, p: TrainProblem, strategy: MemoryStrategy): Promise<StepRunner> {
  const baseline = gpu.arena.liveBytes;
  const baselineByCategory = Object.fromEntries(Object.entries(gpu.arena.report().byCategory).map(([c, v]) => [c, v.liveBytes]));
  gpu.arena.resetPeak();
  const model = DenseNetModel.create(gpu, p.config, p.seed);
  let session: TrainingSession;
  try {
    session = await TrainingSession.create(model, { batch: p.batch, memory: strategy, optimizer: sgdConfig(p) });
  } catch (e) {
    model.close();
    throw e;
  }
  return {
    async step() { return (await session.step(p.images, p.labels, p.lr)).loss; },
    peakBytes: () => gpu.arena.peakBytes - baseline,
    peakByCategory: () => Object.fromEntries(Object.entries(gpu.arena.report().byCategory).map(([c, v]) => [c, v.peakBytes - (baselineByCategory[c] ?? 0)])),
    async close() { session.destroy(); model.close(); },
  };
}

interface BufferManagerInternals {
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
}

/**
 * tfjs-webgpu on our device (a fresh backend, so its buffer pool starts empty). The pool's peak is
 * tracked at every buffer it creates; with a cap, a buffer that would take the pool past it throws
 * MemoryCapExceeded instead (on a software adapter GPU memory is host memory shared with everyone).
 */
export async function tfjsWebgpuRunner(gpu: Gpu, p: TrainProblem, memoryCapBytes = Infinity): Promise<StepRunner & { tfjs: TfjsOnGpu }> {
  const t = await openTfjsOnGpu(gpu);
  let trainer: TfjsTrainer | undefined;
  try {
    await ensureTfjsGradients(t.tf);
    const pool = (t.tf.backend() as unknown as { bufferManager: BufferManagerInternals }).bufferManager;
    let peak = pool.numBytesAllocated;
    const acquire = pool.acquireBuffer.bind(pool);
    pool.acquireBuffer = (size, usage, mappedAtCreation, reuse) => {
      const before = pool.numBytesAllocated;
      const buffer = acquire(size, usage, mappedAtCreation, reuse);
      peak = Math.max(peak, pool.numBytesAllocated);
      if (pool.numBytesAllocated > memoryCapBytes && pool.numBytesAllocated > before) {
        throw new MemoryCapExceeded(`tfjs-webgpu's buffer pool passed the ${(memoryCapBytes / 1e9).toFixed(2)} GB memory cap ` +
          `(it held ${(pool.numBytesAllocated / 1e9).toFixed(2)} GB when stopped)`);
      }
      return buffer;
    };
    trainer = createTfjsTrainer(t.tf, p.arch, initialParameters(p.arch, p.seed), tfjsOptions(p));
    const [c, h, w] = p.config.inputShape;
    const images = nchwToNhwc(p.images, p.batch, c, h, w);
    const labels = Int32Array.from(p.labels);
    const tr = trainer;
    return {
      tfjs: t,
      async step() {
        // runAndWait submits what tfjs has batched and waits for the queue; the loss is then read back.
        const [loss] = await t.runAndWait(() => [tr.step(images, labels)]);
        try { return (await loss.data())[0]; } finally { loss.dispose(); }
      },
      peakBytes: () => peak,
      async close() { tr.dispose(); await t.close(); },
    };
  } catch (e) {
    trainer?.dispose();
    await t.close();
    throw e;
  }
}

/** tfjs's cpu backend in this process; its steps are synchronous, so a deadline stops them between kernels. */
export async function tfjsCpuRunner(p: TrainProblem): Promise<StepRunner> {
  const tf: Tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await ensureTfjsGradients(tf);
  const previous = tf.engine().backendName;
  if (!(await tf.setBackend('cpu'))) throw new Error('tfjs cpu backend did not start');
  let deadline: number | null = null;
  const unguard = guardKernels(tf, 'cpu', () => {
    if (deadline !== null && performance.now() > deadline) throw new BudgetExceeded();
  });
  const restore = async () => {
    unguard();
    if (previous && previous !== 'cpu' && tf.findBackendFactory(previous)) await tf.setBackend(previous);
  };
  let trainer: TfjsTrainer;
  try {
    trainer = createTfjsTrainer(tf, p.arch, initialParameters(p.arch, p.seed), tfjsOptions(p));
  } catch (e) {
    await restore();
    throw e;
  }
  const [c, h, w] = p.config.inputShape;
  const images = nchwToNhwc(p.images, p.batch, c, h, w);
  const labels = Int32Array.from(p.labels);
  return {
    async step() {
      const loss = trainer.step(images, labels);
      try { return (await loss.data())[0]; } finally { loss.dispose(); }
    },
    peakBytes: () => null,
    setDeadline(at) { deadline = at; },
    async close() { trainer.dispose(); await restore(); },
  };
}
