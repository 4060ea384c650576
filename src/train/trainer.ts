// The training loop behind `densenet-wgsl train`. Data is loaded and every option checked before
// the GPU is touched; the next batch is prepared on the CPU while the GPU runs the current step;
// after each epoch the model is evaluated on the held-out set and a checkpoint is written
// atomically. A resumed run continues bit for bit: weights, running statistics, optimizer state,
// step count (dropout seeds), data order and augmentation RNG all come from the checkpoint.

import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { openDevice, type Gpu, type OpenDeviceOptions } from '../gpu/device.js';
import { denseNetConfig, describeDenseNet, preset, type DenseNetConfig } from '../models/index.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession, TrainingSession } from '../models/session.js';
import { BatchStream, type DatasetSplit } from './data/dataset.js';
import { loadDataset } from './data/load.js';
import { evaluate } from './evaluate.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { appendMetrics, readMetrics, writeSummary } from './metrics.js';
import { guardCompile } from './compile_guard.js';
import { checkTrainOptions, optimizerConfig, OptionsError, scheduleOf, type TrainOptions } from './options.js';
import { renderTrainingPlot } from './plot.js';
import { ProgressReporter } from './progress.js';
import { learningRate } from './schedule.js';
import { writeFile } from 'node:fs/promises';

export const CHECKPOINT_FORMAT = 'densenet-wgsl-training-v1';

export interface EpochRecord { epoch: number; trainLoss: number; trainAccuracy: number; testLoss: number; testAccuracy: number; seconds: number; imagesPerSec: number }

export interface TrainSummary {
  model: string;
  dataset: string;
  epochs: number;
  testAccuracy: number;
  bestTestAccuracy: number;
  seconds: number;
  imagesPerSec: number;
  peakGpuBytes: number;
  parameters: number;
  memory: string;
  adapter: string;
  stoppedEarly?: string;
}

export class TrainingStopped extends Error {
  constructor(message: string, readonly exitCode: number) { super(message); }
}

/** The model config for a preset and dataset: the dataset fixes the classes; the input shape must match. */
/**
 * A preset by name, or a JSON file of DenseNetConfig fields (any subset denseNetConfig accepts,
 * e.g. {"name": "my-bc", "depth": 40, "growthRate": 12, "bottleneck": true}).
 */
export function baseModelConfig(model: string): DenseNetConfig {
  if (!model.endsWith('.json')) return preset(model);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(model, 'utf8'));
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new OptionsError(`train: model config ${model}: ${reason}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OptionsError(`train: model config ${model} must hold a JSON object of DenseNet settings`);
  try {
    return denseNetConfig({ name: basename(model, '.json'), ...(parsed as Partial<DenseNetConfig>) });
  } catch (e) {
    throw new OptionsError(`train: model config ${model}: ${(e as Error).message}`);
  }
}

export function modelConfigFor(o: TrainOptions, data: DatasetSplit): DenseNetConfig {
  const config = baseModelConfig(o.model);
  const shape = data.train.shape;
  if (config.inputShape.join() !== shape.join()) {
    throw new OptionsError(`train: model "${o.model}" takes images of [${config.inputShape.join(', ')}] but ${o.dataset} images are ` +
      `[${shape.join(', ')}]; pick a preset made for ${o.dataset} (e.g. ${o.dataset === 'mnist' ? 'digits-small' : 'densenet-bc-100-12'})`);
  }
  config.classes = data.train.classes;
  if (o.dropout !== undefined) config.dropRate = o.dropout;
  describeDenseNet(config); // validates
  return config;
}

interface Progress { epoch: number; history: EpochRecord[]; bestTestAccuracy: number; stream: object | null }

export interface TrainHooks {
  /** Stops the run after the current step, saving a checkpoint to resume from (Ctrl-C does the same). */
  signal?: AbortSignal;
  /** Called after every step with the global step number and its loss. */
  onStep?: (step: number, loss: number) => void;
  /** Where progress bars go (default stdout). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function train(o: TrainOptions, device: OpenDeviceOptions = {}, log: (line: string) => void = console.log, hooks: TrainHooks = {}): Promise<TrainSummary> {
  checkTrainOptions(o);
  const started = performance.now();
  const resumed = o.resume ? await readCheckpoint(o.resume) : undefined;
  if (resumed && resumed.header.format !== CHECKPOINT_FORMAT) {
    throw new OptionsError(`train: ${o.resume} is not a training checkpoint of this version (format "${String(resumed.header.format)}")`);
  }
  const data = await loadDataset(o.dataset, { dataDir: o.dataDir, seed: o.seed, limit: o.limit });
  const config = modelConfigFor(o, data);
  if (resumed) checkSameModel(o.resume!, resumed.header.config as DenseNetConfig, config);
  await mkdir(o.outDir, { recursive: true });

  const gpu = await openDevice(device);
  let model: DenseNetModel | undefined;
  let session: TrainingSession | undefined;
  let inference: InferenceSession | undefined;
  let interrupted = hooks.signal?.aborted ?? false;
  const onInterrupt = () => { interrupted = true; };
  hooks.signal?.addEventListener('abort', onInterrupt);
  process.on('SIGINT', onInterrupt);
  try {
    log(`adapter: ${gpu.adapter.name}`);
    model = DenseNetModel.create(gpu, config, o.seed);
    const compiling = guardCompile({ signal: hooks.signal });
    try {
      session = await TrainingSession.create(model, { batch: o.batch, memory: o.memory, optimizer: optimizerConfig(o), seed: o.seed });
      inference = await InferenceSession.create(model, { batch: o.batch, memory: o.memory });
    } finally {
      compiling.end();
    }
    if (compiling.interrupted) throw new TrainingStopped('train: interrupted while compiling; stopped before the first step: nothing was trained or saved', 130);
    const streamOptions = { batch: o.batch, seed: o.seed, shuffle: true, augment: o.augment, dropLast: true, mean: data.mean, std: data.std };
    const state: Progress = { epoch: 0, history: [], bestTestAccuracy: 0, stream: null };
    let stream: BatchStream;
    if (resumed) {
      model.writeParameters(pick(resumed.tensors, (n) => !n.startsWith('optimizer.')));
      session.writeOptimizerState(pick(resumed.tensors, (n) => n.startsWith('optimizer.')));
      session.stepsTaken = resumed.header.stepsTaken as number;
      Object.assign(state, resumed.header.progress as Progress);
      stream = BatchStream.restore(data.train, streamOptions, state.stream!);
      log(`resumed from ${o.resume}: epoch ${state.epoch}, step ${session.stepsTaken}`);
    } else {
      stream = new BatchStream(data.train, streamOptions);
    }
    log(`model ${config.name}: ${model.trainableCount.toLocaleString('en-US')} parameters; ${o.dataset}: ${data.train.labels.length} train / ${data.test.labels.length} test images; ` +
      `batch ${o.batch}, ${o.optimizer} lr ${o.lr} (${o.schedule}), memory ${o.memory}; ${(gpu.arena.liveBytes / 2 ** 20).toFixed(1)} MiB of GPU memory allocated`);

    const perEpoch = stream.batchesPerEpoch();
    const schedule = scheduleOf(o);
    const metricsPath = join(o.outDir, 'metrics.jsonl');
    let trainSeconds = 0;
    let trainImages = 0;
    let stoppedEarly: string | undefined;
    let interruptedAt: object | undefined;
    const save = (file: string) => writeCheckpoint(join(o.outDir, file), {
      header: {
        format: CHECKPOINT_FORMAT, config, options: o, stepsTaken: session!.stepsTaken, progress: { ...state },
        mean: data.mean, std: data.std, classNames: data.train.classNames,
      },
      tensors: new Map([...awaitedParams!, ...awaitedOptimizer!]),
    });
    let awaitedParams: Map<string, Float32Array> | undefined;
    let awaitedOptimizer: Map<string, Float32Array> | undefined;
    const snapshot = async () => {
      awaitedParams = await model!.readParameters();
      awaitedOptimizer = await session!.readOptimizerState();
    };

    while (state.epoch < o.epochs && !stoppedEarly) {
      const epoch = state.epoch;
      const progress = new ProgressReporter({ epoch: epoch + 1, epochs: o.epochs, batches: perEpoch, ...(hooks.progressStream ? { out: hooks.progressStream } : {}) });
      const epochStart = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let next = stream.next();
      while (next) {
        const batch = next;
        const lr = learningRate(schedule, o.lr, epoch + batch.indexInEpoch / perEpoch, o.epochs);
        session.submit(batch.images, batch.labels, lr);
        // The position right after this batch: what an interrupted run saves (the prefetched
        // batch below is not trained yet, so a resume must draw it again).
        const afterThisBatch = stream.state();
        next = stream.next(); // prepared while the GPU runs this step
        const result = await session.result();
        if (!Number.isFinite(result.loss)) {
          progress.finish();
          throw new TrainingStopped(`train: the loss became ${result.loss} at epoch ${epoch + 1}, batch ${batch.indexInEpoch + 1} (step ${session.stepsTaken}); ` +
            `stopped without saving. The last good checkpoint is ${join(o.outDir, 'last.ckpt')} (if an epoch finished). Try a lower --lr.`, 1);
        }
        lossSum += result.loss * o.batch;
        correct += result.correct;
        seen += o.batch;
        await appendMetrics(metricsPath, { type: 'step', epoch: epoch + 1, batch: batch.indexInEpoch + 1, step: session.stepsTaken, loss: result.loss, accuracy: result.correct / o.batch, lr });
        hooks.onStep?.(session.stepsTaken, result.loss);
        const elapsed = (performance.now() - epochStart) / 1000;
        progress.update({ batch: batch.indexInEpoch + 1, imagesPerSec: seen / elapsed, loss: lossSum / seen, accuracy: correct / seen });
        if (interrupted) {
          stoppedEarly = `interrupted at epoch ${epoch + 1}, batch ${batch.indexInEpoch + 1}`;
          interruptedAt = afterThisBatch;
          break;
        }
        if (!next) break;
      }
      const epochSeconds = (performance.now() - epochStart) / 1000;
      trainSeconds += epochSeconds;
      trainImages += seen;
      progress.finish();
      if (stoppedEarly) {
        await snapshot();
        state.stream = interruptedAt!;
        await save('last.ckpt');
        log(`${stoppedEarly}: saved ${join(o.outDir, 'last.ckpt')}; continue with --resume ${join(o.outDir, 'last.ckpt')}`);
        break;
      }
      const test = await evaluate(inference, data.test, data.mean, data.std);
      state.epoch = epoch + 1;
      const record: EpochRecord = {
        epoch: epoch + 1, trainLoss: lossSum / seen, trainAccuracy: correct / seen, testLoss: test.loss, testAccuracy: test.accuracy,
        seconds: epochSeconds, imagesPerSec: seen / epochSeconds,
      };
      state.history.push(record);
      await appendMetrics(metricsPath, { type: 'epoch', ...record });
      log(`epoch ${epoch + 1}/${o.epochs}: train loss ${record.trainLoss.toFixed(4)}, train accuracy ${(100 * record.trainAccuracy).toFixed(2)}%, ` +
        `test loss ${test.loss.toFixed(4)}, test accuracy ${(100 * test.accuracy).toFixed(2)}%, ${record.imagesPerSec.toFixed(1)} images/s`);
      const best = test.accuracy > state.bestTestAccuracy;
      state.bestTestAccuracy = Math.max(state.bestTestAccuracy, test.accuracy);
      await snapshot();
      state.stream = stream.state();
      await save('last.ckpt');
      if (best) await save('best.ckpt');
      await writeFile(join(o.outDir, 'plot.svg'), renderTrainingPlot(await readMetrics(metricsPath), { title: `${config.name} on ${o.dataset}` }));
    }

    const last = state.history.at(-1);
    const summary: TrainSummary = {
      model: config.name, dataset: o.dataset, epochs: state.epoch,
      testAccuracy: last?.testAccuracy ?? 0, bestTestAccuracy: state.bestTestAccuracy,
      seconds: (performance.now() - started) / 1000, imagesPerSec: trainSeconds > 0 ? trainImages / trainSeconds : 0,
      peakGpuBytes: gpu.arena.peakBytes, parameters: model.trainableCount, memory: o.memory, adapter: gpu.adapter.name,
      ...(stoppedEarly ? { stoppedEarly } : {}),
    };
    await writeSummary(join(o.outDir, 'summary.json'), summary);
    return summary;
  } finally {
    process.off('SIGINT', onInterrupt);
    hooks.signal?.removeEventListener('abort', onInterrupt);
    inference?.destroy();
    session?.destroy();
    model?.close();
    gpu.close();
  }
}

function pick(tensors: Map<string, Float32Array>, keep: (name: string) => boolean): Map<string, Float32Array> {
  return new Map([...tensors].filter(([name]) => keep(name)));
}

function checkSameModel(path: string, saved: DenseNetConfig, wanted: DenseNetConfig): void {
  const a = JSON.stringify(saved);
  const b = JSON.stringify(wanted);
  if (a !== b) {
    const diff = Object.keys(wanted).filter((k) => JSON.stringify((saved as unknown as Record<string, unknown>)[k]) !== JSON.stringify((wanted as unknown as Record<string, unknown>)[k]));
    throw new OptionsError(`train: checkpoint ${path} is for model "${saved.name}", not the "${wanted.name}" asked for ` +
      `(differs in: ${diff.join(', ')}); pass the same --model/--dataset/--dropout, or start without --resume`);
  }
}

export type { Gpu };
