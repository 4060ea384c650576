// The training loop behind `densenet-wgsl train`. Data is loaded and every option checked before
// the GPU is touched; the next batch is prepared on the CPU while the GPU runs the current step;
// after each epoch the model is evaluated on the held-out set and a checkpoint is written
// atomically. A resumed run continues bit for bit: weights, running statistics, optimizer state,
// step count (dropout seeds), data order and augmentation RNG all come from the checkpoint.

import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openDevice, type Gpu, type OpenDeviceOptions } from '../gpu/device.js';
import { denseNetConfig, preset, type DenseNetConfig } from '../models/index.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession, TrainingSession } from '../models/session.js';
import { evaluateSplit } from './evaluate_split.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { batchSource, loadTrainingData, type BatchSource, type TrainingData } from './training_data.js';
import { appendMetrics, readMetrics, writeSummary } from './metrics.js';
import { guardCompile } from './compile_guard.js';
import { checkTrainOptions, optimizerConfig, OptionsError, scheduleOf, type TrainOptions } from './options.js';
import { renderTrainingPlot } from './plot.js';
import { ProgressReporter } from './progress.js';
import { describeChanges, resumeOptionChanges } from './resume_options.js';
import { prepareRunDir } from './run_dir.js';
import { learningRate } from './schedule.js';
import { writeFile } from 'node:fs/promises';

export const CHECKPOINT_FORMAT = 'densenet-wgsl-training-v1';

export interface EpochRecord { epoch: number; trainLoss: number; trainAccuracy: number; testLoss: number; testAccuracy: number; seconds: number; imagesPerSec: number }

/** summary.json. Every field covers the whole run, across interrupts and resumes. */
export interface TrainSummary {
  model: string;
  dataset: string;
  /** completed: every epoch asked for ran; interrupted: Ctrl-C (or hooks.signal), resumable; diverged: the loss became NaN/Infinity. */
  status: 'completed' | 'interrupted' | 'diverged';
  /** Epochs finished (trained and evaluated), and asked for. */
  epochs: number;
  epochsPlanned: number;
  /** Training steps taken. */
  steps: number;
  /** After the last finished epoch, and the best over finished epochs; null when no epoch finished (nothing was evaluated). */
  testAccuracy: number | null;
  bestTestAccuracy: number | null;
  /** Wall-clock seconds of the whole run (every part of it, not the time lost to a kill after the last checkpoint). */
  seconds: number;
  /** Training images per second of training time over the whole run (0 when no step ran). */
  imagesPerSec: number;
  /** Peak GPU memory of this part of the run (after the last resume). */
  peakGpuBytes: number;
  parameters: number;
  memory: string;
  adapter: string;
  stoppedEarly?: string;
}

export class TrainingStopped extends Error {
  constructor(message: string, readonly exitCode: number) { super(message); }
}

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

/** Sums over the steps of an epoch so far: a checkpoint taken mid-epoch (an interrupt) carries them so the epoch's record covers all its steps. */
interface EpochSums { lossSum: number; correct: number; seen: number; seconds: number }
/** Totals of the whole run up to a checkpoint, so a resumed run's summary covers every part. */
interface RunTotals { seconds: number; trainSeconds: number; trainImages: number }

interface Progress {
  epoch: number; history: EpochRecord[]; bestTestAccuracy: number; stream: object | null;
  /** Absent in checkpoints of earlier versions (then a resumed epoch's record covers only its steps after the resume). */
  epochSums?: EpochSums | null;
  totals?: RunTotals;
}

/** --weights: the tensors to write over a new model (every layer but the classifier, unless it is kept), and a line saying so. */
export interface FineTuneWeights { values: Map<string, Float32Array>; summary: string }

export interface TrainHooks {
  /**
   * Reads the --weights file for the run's model config and checks it (throwing a message that
   * names every missing or mis-shaped tensor), before any GPU work. src/train does not read weight
   * files (src/io does): the CLI passes src/cli/finetune.ts's reader.
   */
  readWeights?: (config: DenseNetConfig, keepClassifier: boolean) => Promise<FineTuneWeights>;
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
  // Options the checkpoint's state depends on are refused here, by name; the others are applied and recorded.
  const changed = resumed ? resumeOptionChanges(resumed.header.options as TrainOptions, o) : {};
  const loaded = await loadTrainingData(o, baseModelConfig(o.model), log);
  const data = loaded.split;
  const config = loaded.config;
  checkBatchFits(o, data);
  if (resumed) checkSameModel(o.resume!, resumed.header.config as DenseNetConfig, config);
  // A resumed run's checkpoint already holds what was trained from the weights.
  let fineTune: FineTuneWeights | undefined;
  if (o.weights && !resumed) {
    if (!hooks.readWeights) throw new OptionsError('train: --weights needs a weights reader (hooks.readWeights); the CLI passes one');
    fineTune = await hooks.readWeights(config, o.keepClassifier === true);
  }
  const savedAt = resumed ? { step: resumed.header.stepsTaken as number, epochs: (resumed.header.progress as Progress).epoch } : undefined;
  const rewound = await prepareRunDir(o, savedAt, log);
  const metricsPath = join(o.outDir, 'metrics.jsonl');

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
    if (fineTune) {
      model.writeParameters(fineTune.values);
      log(fineTune.summary);
    }
    const compiling = guardCompile({ signal: hooks.signal });
    try {
      session = await TrainingSession.create(model, { batch: o.batch, memory: o.memory, optimizer: optimizerConfig(o), seed: o.seed, freeze: o.freeze ?? 'none' });
      inference = await InferenceSession.create(model, { batch: o.batch, memory: o.memory });
    } finally {
      compiling.end();
    }
    if (compiling.interrupted) throw new TrainingStopped('train: interrupted while compiling; stopped before the first step: nothing was trained or saved', 130);
    const state: Progress = { epoch: 0, history: [], bestTestAccuracy: 0, stream: null };
    let stream: BatchSource;
    if (resumed) {
      model.writeParameters(pick(resumed.tensors, (n) => !n.startsWith('optimizer.')));
      session.writeOptimizerState(pick(resumed.tensors, (n) => n.startsWith('optimizer.')));
      session.stepsTaken = resumed.header.stepsTaken as number;
      Object.assign(state, resumed.header.progress as Progress);
      stream = batchSource(loaded, o, state.stream!);
      await appendMetrics(metricsPath, { type: 'resume', step: session.stepsTaken, epoch: state.epoch, from: o.resume, changed });
      log(`resumed from ${o.resume}: epoch ${state.epoch}, step ${session.stepsTaken}` +
        (Object.keys(changed).length ? `; changed: ${describeChanges(changed)} (recorded in metrics.jsonl)` : '') +
        (rewound > 0 ? `; metrics.jsonl rewound to the checkpoint (dropped ${rewound} lines logged after it)` : ''));
    } else {
      stream = batchSource(loaded, o);
    }
    if (loaded.description) log(loaded.description);
    const limited = o.limit !== undefined ? ` (--limit ${o.limit} cuts the test set in proportion)` : '';
    log(`model ${config.name}: ${model.trainableCount.toLocaleString('en-US')} parameters; ${o.dataset}: ${data.train.labels.length} train / ${data.test.labels.length} test images${limited}; ` +
      `batch ${o.batch}, ${o.optimizer} lr ${o.lr} (${o.schedule}), memory ${o.memory}` +
      `${o.freeze === 'features' ? `, features frozen (eval mode; ${session.trainedCount.toLocaleString('en-US')} classifier parameters train)` : ''}; ` +
      `${(gpu.arena.liveBytes / 2 ** 20).toFixed(1)} MiB of GPU memory allocated`);

    const perEpoch = stream.batchesPerEpoch();
    const schedule = scheduleOf(o);
    const before: RunTotals = state.totals ?? { seconds: 0, trainSeconds: 0, trainImages: 0 };
    let trainSeconds = 0;
    let trainImages = 0;
    let savedHere = false;
    const totalsNow = (): RunTotals => ({
      seconds: before.seconds + (performance.now() - started) / 1000,
      trainSeconds: before.trainSeconds + trainSeconds, trainImages: before.trainImages + trainImages,
    });
    const summarize = (status: TrainSummary['status'], stoppedEarly?: string): TrainSummary => {
      const totals = totalsNow();
      const last = state.history.at(-1);
      return {
        model: config.name, dataset: o.dataset, status, epochs: state.epoch, epochsPlanned: o.epochs, steps: session!.stepsTaken,
        testAccuracy: last?.testAccuracy ?? null, bestTestAccuracy: state.history.length > 0 ? state.bestTestAccuracy : null,
        seconds: totals.seconds, imagesPerSec: totals.trainSeconds > 0 ? totals.trainImages / totals.trainSeconds : 0,
        peakGpuBytes: gpu.arena.peakBytes, parameters: model!.trainableCount, memory: o.memory, adapter: gpu.adapter.name,
        ...(stoppedEarly ? { stoppedEarly } : {}),
      };
    };
    let stoppedEarly: string | undefined;
    let interruptedAt: object | undefined;
    const save = (file: string) => writeCheckpoint(join(o.outDir, file), {
      header: {
        format: CHECKPOINT_FORMAT, config, options: savedOptions(o), stepsTaken: session!.stepsTaken, progress: { ...state, totals: totalsNow() },
        mean: data.mean, std: data.std, classNames: data.train.classNames, preprocessing: loaded.preprocessing,
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
      // A run resumed mid-epoch starts from the sums of the epoch's steps before the interrupt.
      const carried: EpochSums = state.epochSums ?? { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
      state.epochSums = null;
      let lossSum = carried.lossSum;
      let correct = carried.correct;
      let seen = carried.seen;
      let seenHere = 0;
      let next = await stream.next();
      while (next) {
        const batch = next;
        const lr = learningRate(schedule, o.lr, epoch + batch.indexInEpoch / perEpoch, o.epochs);
        session.submit(batch.images, batch.labels, lr);
        // The position right after this batch: what an interrupted run saves (the prefetched
        // batch below is not trained yet, so a resume must draw it again).
        const afterThisBatch = stream.state();
        const following = stream.next(); // prepared while the GPU runs this step
        const result = await session.result();
        next = await following;
        if (!Number.isFinite(result.loss)) {
          progress.finish();
          await writeSummary(join(o.outDir, 'summary.json'), summarize('diverged', `the loss became ${result.loss} at step ${session.stepsTaken}`));
          const good = savedHere ? join(o.outDir, 'last.ckpt') : o.resume;
          const lower = Number((o.lr / 10).toPrecision(3));
          const way = good
            ? `Continue from the last good checkpoint with a lower learning rate: --resume ${good} --lr ${lower}`
            : `No epoch finished, so there is no checkpoint: start again with a lower --lr (e.g. ${lower}) and --overwrite`;
          throw new TrainingStopped(`train: the loss became ${result.loss} at epoch ${epoch + 1}, batch ${batch.indexInEpoch + 1} (step ${session.stepsTaken}); ` +
            `stopped without saving a checkpoint. ${way}.`, 1);
        }
        lossSum += result.loss * o.batch;
        correct += result.correct;
        seen += o.batch;
        seenHere += o.batch;
        await appendMetrics(metricsPath, { type: 'step', epoch: epoch + 1, batch: batch.indexInEpoch + 1, step: session.stepsTaken, loss: result.loss, accuracy: result.correct / o.batch, lr });
        hooks.onStep?.(session.stepsTaken, result.loss);
        const elapsed = (performance.now() - epochStart) / 1000;
        progress.update({ batch: batch.indexInEpoch + 1, imagesPerSec: seenHere / elapsed, loss: lossSum / seen, accuracy: correct / seen });
        if (interrupted) {
          stoppedEarly = `interrupted at epoch ${epoch + 1}, batch ${batch.indexInEpoch + 1}`;
          interruptedAt = afterThisBatch;
          break;
        }
        if (!next) break;
      }
      const epochSeconds = (performance.now() - epochStart) / 1000;
      trainSeconds += epochSeconds;
      trainImages += seenHere;
      progress.finish();
      if (stoppedEarly) {
        await snapshot();
        state.stream = interruptedAt!;
        state.epochSums = { lossSum, correct, seen, seconds: carried.seconds + epochSeconds };
        await save('last.ckpt');
        state.epochSums = null;
        log(`${stoppedEarly}: saved ${join(o.outDir, 'last.ckpt')}; continue with --resume ${join(o.outDir, 'last.ckpt')}`);
        break;
      }
      const test = await evaluateSplit(inference, data.test, data.mean, data.std, loaded.preprocessing);
      state.epoch = epoch + 1;
      const seconds = carried.seconds + epochSeconds;
      const record: EpochRecord = {
        epoch: epoch + 1, trainLoss: lossSum / seen, trainAccuracy: correct / seen, testLoss: test.loss, testAccuracy: test.accuracy,
        seconds, imagesPerSec: seen / seconds,
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
      savedHere = true;
      if (best) await save('best.ckpt');
      await writeFile(join(o.outDir, 'plot.svg'), renderTrainingPlot(await readMetrics(metricsPath), { title: `${config.name} on ${o.dataset}` }));
    }

    const summary = summarize(stoppedEarly ? 'interrupted' : 'completed', stoppedEarly);
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

/** A batch must fit the training set: dropLast would otherwise leave no batch at all. */
function checkBatchFits(o: TrainOptions, data: TrainingData['split']): void {
  const images = data.train.labels.length;
  if (o.batch > images) {
    throw new OptionsError(`train: --batch ${o.batch} is larger than the training set (${images} ${o.dataset} images${o.limit !== undefined ? ` with --limit ${o.limit}` : ''}); ` +
      `use --batch ${Math.min(64, images)} or less`);
  }
}

/** The options a checkpoint records: what the run is, not how this invocation was asked to start. */
function savedOptions(o: TrainOptions): TrainOptions {
  const { resume: _resume, overwrite: _overwrite, ...rest } = o;
  return rest;
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
