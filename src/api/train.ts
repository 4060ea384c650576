// train(): fits a Model to an ImageDataset with the engine's training step (forward, loss,
// backward and the optimizer update as one GPU submission), with callbacks per step and epoch and
// an AbortSignal. The next batch is read while the GPU runs the current step. Optimizer state lives
// only for the call: a second train() starts it afresh from the model's current weights.

import { UsageError } from '../base/usage_error.js';
import type { OptimizerConfig } from '../graph/ops/optimizer.js';
import { checkFreeze, checkStrategy } from '../models/densenet_graph.js';
import type { MemoryStrategy } from './model.js';
import { TrainingSession } from '../models/session.js';
import { mix32, permutation, Rng, STREAM } from '../train/data/rng.js';
import { learningRate, type LrSchedule } from '../train/schedule.js';
import { arrayDataset, type ImageArrays, type ImageDataset } from './data.js';
import { checkDatasetFits, evaluate, type Evaluation } from './infer.js';
import { modelState } from './internal.js';
import type { Model } from './model.js';

export interface StepInfo {
  /** 1-based epoch and batch within it, of `batches` per epoch. */
  epoch: number;
  batch: number;
  batches: number;
  /** Steps taken in this call, this one included. */
  step: number;
  /** Mean loss of the batch (before the update) and its accuracy. */
  loss: number;
  accuracy: number;
  lr: number;
  /** Training images per second over the epoch so far. */
  imagesPerSec: number;
}

export interface EpochInfo {
  epoch: number;
  epochs: number;
  trainLoss: number;
  trainAccuracy: number;
  /** On the `test` set, when one was given. */
  test?: Evaluation;
  seconds: number;
  imagesPerSec: number;
}

export interface TrainOptions {
  /** Held-out data evaluated after every epoch (arrays are normalized with the training set's statistics). */
  test?: ImageDataset | ImageArrays;
  /** Default 1. */
  epochs?: number;
  /** Images per step (default 64, at most the training set's size); the last partial batch of an epoch is dropped. */
  batch?: number;
  /** Default 'sgd' (Nesterov momentum 0.9, weight decay 1e-4, the paper's recipe). */
  optimizer?: 'sgd' | 'adam' | 'adamw';
  /** Default 0.1 for SGD, 0.001 for Adam and AdamW. */
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** 'step': lr ÷10 at 50% and 75% of the epochs (default); 'cosine' per step down to 0; 'constant'. */
  schedule?: 'step' | 'cosine' | 'constant';
  /** Memory strategy of the training step (default the model's). */
  memory?: MemoryStrategy;
  /** Seed of the data order, augmentation and dropout (default 0). */
  seed?: number;
  /**
   * 'features': train only the classifier (fine-tuning a new head): the features run in eval mode
   * (BN running statistics, no dropout) and get no gradients, optimizer state or saved activations.
   * Default 'none'.
   */
  freeze?: 'none' | 'features';
  /** Stops after the current step; train() then resolves with status 'aborted' (the weights keep every step taken). */
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (info: EpochInfo) => void;
}

export interface TrainResult {
  status: 'completed' | 'aborted';
  epochs: EpochInfo[];
  steps: number;
  seconds: number;
  /** Training images per second over the training steps (evaluation and the first compile excluded). */
  imagesPerSec: number;
  /** Peak GPU memory during this call (parameters, the training step's buffers and evaluation's). */
  peakGpuBytes: number;
}

/** The loss became NaN or infinite at `step`: training stopped, and that step's update has damaged the weights (reload them to retry). */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
  constructor(message: string, readonly step: number) { super(message); }
}

function whole(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`train: ${name} must be a whole number >= ${min}, got ${v}`);
  return v;
}

function optimizerOf(o: TrainOptions): OptimizerConfig {
  const kind = o.optimizer ?? 'sgd';
  if (!['sgd', 'adam', 'adamw'].includes(kind)) throw new UsageError(`train: optimizer must be sgd, adam or adamw, got "${kind}"`);
  const lr = o.lr ?? (kind === 'sgd' ? 0.1 : 1e-3);
  if (!(lr > 0 && Number.isFinite(lr))) throw new UsageError(`train: lr must be a positive number, got ${lr}`);
  const weightDecay = o.weightDecay ?? 1e-4;
  if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) throw new UsageError(`train: weightDecay must be >= 0, got ${weightDecay}`);
  if (kind === 'sgd') {
    const momentum = o.momentum ?? 0.9;
    if (!(momentum >= 0 && momentum < 1)) throw new UsageError(`train: momentum must be in [0, 1), got ${momentum}`);
    return { kind, lr, momentum, nesterov: (o.nesterov ?? true) && momentum > 0, weightDecay };
  }
  return { kind: 'adam', lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay, decoupled: kind === 'adamw' };
}

function scheduleOf(name: TrainOptions['schedule']): LrSchedule {
  if (name === undefined || name === 'step') return { kind: 'step', milestones: [0.5, 0.75], gamma: 0.1 };
  if (name === 'cosine') return { kind: 'cosine' };
  if (name === 'constant') return { kind: 'constant' };
  throw new UsageError(`train: schedule must be step, cosine or constant, got "${name}"`);
}

function freezeOf(part: unknown): 'none' | 'features' {
  if (part === undefined) return 'none';
  try { return checkFreeze(String(part)) as 'none' | 'features'; } catch (e) { throw new UsageError(`train: freeze: ${(e as Error).message.replace('--freeze part', 'part')}`); }
}

/** `data` as an ImageDataset: arrays are wrapped (normalized with their own statistics, or `like`'s). */
export function asDataset(data: ImageDataset | ImageArrays, like?: ImageDataset): ImageDataset {
  if (typeof (data as ImageDataset).read === 'function') return data as ImageDataset;
  return arrayDataset(data as ImageArrays, { normalization: like?.normalization });
}

/** Trains `model` on `data`. Checks everything (shapes, classes, options) before any GPU work. */
export async function train(model: Model, data: ImageDataset | ImageArrays, options: TrainOptions = {}): Promise<TrainResult> {
  const state = modelState(model, 'train');
  const config = state.inner.config;
  if (config.classes === null) throw new UsageError(`train: model "${config.name}" has no classifier (classes: null); create it with classes`);
  const trainSet = asDataset(data);
  const testSet = options.test === undefined ? undefined : asDataset(options.test, trainSet);
  checkDatasetFits(model, trainSet, 'train');
  if (testSet) checkDatasetFits(model, testSet, 'train: test');
  const epochs = whole('epochs', options.epochs ?? 1, 1);
  const batch = whole('batch', options.batch ?? Math.min(64, trainSet.size), 2);
  if (batch > trainSet.size) throw new UsageError(`train: batch ${batch} is larger than the training set (${trainSet.size} images); use batch ${Math.max(2, Math.min(64, trainSet.size))} or less`);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`train: seed must be a whole number in [0, 2^32), got ${seed}`);
  const memory = checkStrategy(options.memory ?? model.memory);
  const optimizer = optimizerOf(options);
  const schedule = scheduleOf(options.schedule);
  const freeze = freezeOf(options.freeze);
  const started = performance.now();
  state.gpu.arena.resetPeak();
  if (options.signal?.aborted) {
    return { status: 'aborted', epochs: [], steps: 0, seconds: 0, imagesPerSec: 0, peakGpuBytes: state.gpu.arena.peakBytes };
  }

  const session = await TrainingSession.create(state.inner, { batch, memory, optimizer, seed, freeze });
  const history: EpochInfo[] = [];
  let trainSeconds = 0;
  let trainImages = 0;
  let aborted = options.signal?.aborted ?? false;
  try {
    const batches = Math.floor(trainSet.size / batch);
    const size = config.inputShape[0] * config.inputShape[1] * config.inputShape[2];
    for (let epoch = 0; epoch < epochs && !aborted; epoch++) {
      const order = permutation(trainSet.size, new Rng(mix32(STREAM.epochOrder, seed, epoch)));
      const read = (b: number) => Promise.resolve(trainSet.read(order.subarray(b * batch, (b + 1) * batch), { epoch, batch: b, seed, train: true }));
      const epochStart = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let next = read(0);
      for (let b = 0; b < batches; b++) {
        const current = await next;
        if (current.images.length !== batch * size || current.labels.length !== batch) {
          throw new UsageError(`train: the data set's read() returned ${current.images.length} values and ${current.labels.length} labels for ${batch} images of [${config.inputShape.join(', ')}]`);
        }
        const lr = learningRate(schedule, optimizer.lr, epoch + b / batches, epochs);
        session.submit(current.images, current.labels, lr);
        if (b + 1 < batches) next = read(b + 1); // prepared while the GPU runs this step
        const result = await session.result();
        if (!Number.isFinite(result.loss)) {
          throw new TrainingDivergedError(`train: the loss became ${result.loss} at epoch ${epoch + 1}, batch ${b + 1} (step ${session.stepsTaken}); ` +
            `the model's weights are damaged: reload them and train with a lower lr (e.g. ${Number((optimizer.lr / 10).toPrecision(3))})`, session.stepsTaken);
        }
        lossSum += result.loss * batch;
        correct += result.correct;
        seen += batch;
        const elapsed = (performance.now() - epochStart) / 1000;
        options.onStep?.({ epoch: epoch + 1, batch: b + 1, batches, step: session.stepsTaken, loss: result.loss, accuracy: result.correct / batch, lr, imagesPerSec: seen / elapsed });
        if (options.signal?.aborted) { aborted = true; break; }
      }
      const seconds = (performance.now() - epochStart) / 1000;
      trainSeconds += seconds;
      trainImages += seen;
      if (aborted) break;
      const record: EpochInfo = { epoch: epoch + 1, epochs, trainLoss: lossSum / seen, trainAccuracy: correct / seen, seconds, imagesPerSec: seen / seconds };
      if (testSet) record.test = await evaluate(model, testSet, { batch, memory });
      history.push(record);
      options.onEpoch?.(record);
    }
  } finally {
    session.destroy();
  }
  model.classNames = [...trainSet.classNames];
  if (trainSet.normalization) model.preprocessing = { ...model.preprocessing, mean: [...trainSet.normalization.mean], std: [...trainSet.normalization.std] };
  if (trainSet.invertLight !== undefined) model.preprocessing = { ...model.preprocessing, invertLight: trainSet.invertLight };
  return {
    status: aborted ? 'aborted' : 'completed', epochs: history, steps: session.stepsTaken, seconds: (performance.now() - started) / 1000,
    imagesPerSec: trainSeconds > 0 ? trainImages / trainSeconds : 0, peakGpuBytes: state.gpu.arena.peakBytes,
  };
}
