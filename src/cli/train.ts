// `densenet-wgsl train` (eval and predict --checkpoint: eval.ts, checkpoint_model.ts).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_DIGITS_PRESET } from '../models/presets.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { findExistingRun } from '../train/run_dir.js';
import { defaultLearningRate, type DatasetName, type TrainOptions } from '../train/options.js';
import { CHECKPOINT_FORMAT, train, TrainingStopped } from '../train/trainer.js';
import { ADAPTER_FLAGS, UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { TUNE_FLAGS, tunedAdapterOptions, tuneTarget } from './tune.js';
import { fineTuneWeightsReader } from './finetune.js';

/** Epochs of the default run per dataset: MNIST is chosen to reach ≥ 98% in minutes on a CPU; CIFAR and SVHN follow the paper (300 and 40); folders: a start, say --epochs. */
export const DEFAULT_EPOCHS: Record<DatasetName, number> = { mnist: 6, cifar10: 300, cifar100: 300, svhn: 40, folder: 30 };

export const TRAIN_FLAGS: FlagSpec[] = [
  { name: 'model', type: 'string', help: `preset name or a JSON config file`, default: DEFAULT_DIGITS_PRESET },
  { name: 'dataset', type: 'string', help: 'mnist (built in), cifar10, cifar100 or svhn (from --data-dir), or folder (your images: --data-dir DIR)', default: 'mnist' },
  { name: 'data-dir', type: 'string', help: 'directory with the CIFAR binary files or the SVHN .mat files, or the image folder: DIR/train/<class>/ and DIR/val/<class>/ (or DIR/<class>/ with --val-split)' },
  { name: 'svhn-extra', type: 'boolean', help: "SVHN: also train on extra_32x32.mat (531,131 more images)" },
  { name: 'val-split', type: 'number', help: 'folder: hold out this fraction of each class of DIR/<class>/ for validation (seeded by --seed)' },
  { name: 'normalize', type: 'string', help: "folder: imagenet (ImageNet's mean/std, default for RGB models) or dataset (the training set's)" },
  { name: 'epochs', type: 'number', help: `epochs (default ${DEFAULT_EPOCHS.mnist} for mnist, 300 for CIFAR, 40 for SVHN, ${DEFAULT_EPOCHS.folder} for folder)` },
  { name: 'batch', type: 'number', help: 'batch size', default: 64 },
  { name: 'optimizer', type: 'string', help: 'sgd, adam or adamw', default: 'sgd' },
  { name: 'lr', type: 'number', help: 'learning rate (default 0.1; when fine-tuning with --weights 0.01 for sgd, 1e-4 for adam/adamw)' },
  { name: 'momentum', type: 'number', help: 'SGD momentum', default: 0.9 },
  { name: 'no-nesterov', type: 'boolean', help: 'plain momentum instead of Nesterov' },
  { name: 'weight-decay', type: 'number', help: 'L2 weight decay (decoupled for adamw)', default: 1e-4 },
  { name: 'schedule', type: 'string', help: 'step (÷10 at 50% and 75% of epochs), cosine or constant', default: 'step' },
  { name: 'dropout', type: 'number', help: "dropout rate after each conv (default: the preset's, 0)" },
  { name: 'augment', type: 'boolean', help: 'random crop (pad 4) and flip, or RandomResizedCrop and flip for ImageNet-stem models: on by default for CIFAR and folder' },
  { name: 'no-augment', type: 'boolean', help: 'no augmentation' },
  { name: 'seed', type: 'number', help: 'seed of weights, data order, augmentation and dropout', default: 0 },
  { name: 'memory', type: 'string', help: 'naive, shared, recompute or fused', default: 'fused' },
  { name: 'out', type: 'string', help: 'output directory (default runs/MODEL-DATASET; with --resume the checkpoint\'s directory); one holding a run is refused' },
  { name: 'overwrite', type: 'boolean', help: 'delete the run already in --out (metrics, checkpoints, summary, plot) and start afresh' },
  { name: 'resume', type: 'string', help: "checkpoint to continue from, with its options; may change --epochs --lr --schedule --momentum --no-nesterov --weight-decay --memory --augment/--no-augment --data-dir --out" },
  { name: 'weights', type: 'string', help: 'fine-tune: initialise the features (every layer but the classifier) from torchvision-named .safetensors (torchvision weights, or `export` of a checkpoint); the classifier is new, sized for the dataset' },
  { name: 'keep-classifier', type: 'boolean', help: "with --weights: load the file's classifier too (its class count must be the dataset's)" },
  { name: 'freeze', type: 'string', help: 'none, or features: train only the classifier (features in eval mode: running statistics, no dropout; no gradients, optimizer state or saved activations for them)', default: 'none' },
  { name: 'limit', type: 'number', help: 'use only this many training images, and a proportional share of the test images (quick runs)' },
  ...ADAPTER_FLAGS,
  ...TUNE_FLAGS,
];

export function trainOptionsFromFlags(flags: ParsedFlags): TrainOptions {
  const dataset = flags.dataset as DatasetName;
  if (flags.augment && flags['no-augment']) throw new UsageError('train: --augment and --no-augment contradict each other');
  const model = flags.model as string;
  return {
    model, dataset, dataDir: flags['data-dir'] as string | undefined,
    epochs: (flags.epochs as number | undefined) ?? DEFAULT_EPOCHS[dataset] ?? 1,
    batch: flags.batch as number, optimizer: flags.optimizer as TrainOptions['optimizer'],
    lr: (flags.lr as number | undefined) ?? defaultLearningRate(flags.optimizer as TrainOptions['optimizer'], flags.weights !== undefined),
    momentum: flags.momentum as number, nesterov: !flags['no-nesterov'], weightDecay: flags['weight-decay'] as number,
    schedule: flags.schedule as TrainOptions['schedule'], dropout: flags.dropout as number | undefined,
    // Digits are not augmented; SVHN neither, as in the paper.
    augment: flags['no-augment'] ? false : flags.augment ? true : dataset !== 'mnist' && dataset !== 'svhn',
    seed: flags.seed as number, memory: flags.memory as TrainOptions['memory'],
    outDir: (flags.out as string | undefined) ?? join('runs', `${model.replace(/\.json$/, '').replace(/[^\w.-]+/g, '_')}-${dataset}`),
    resume: flags.resume as string | undefined, limit: flags.limit as number | undefined, overwrite: flags.overwrite === true,
    weights: flags.weights as string | undefined, keepClassifier: flags['keep-classifier'] === true, freeze: flags.freeze as TrainOptions['freeze'],
    svhnExtra: flags['svhn-extra'] === true,
    ...(flags['val-split'] !== undefined ? { valSplit: flags['val-split'] as number } : {}),
    ...(flags.normalize !== undefined ? { normalize: flags.normalize as TrainOptions['normalize'] } : {}),
  };
}

/** The flags that set each option (both --augment and --no-augment set augment). */
const FLAGS_OF: Partial<Record<keyof TrainOptions, string[]>> = {
  model: ['model'], dataset: ['dataset'], dataDir: ['data-dir'], epochs: ['epochs'], batch: ['batch'], optimizer: ['optimizer'], lr: ['lr'],
  momentum: ['momentum'], nesterov: ['no-nesterov'], weightDecay: ['weight-decay'], schedule: ['schedule'], dropout: ['dropout'],
  augment: ['augment', 'no-augment'], seed: ['seed'], memory: ['memory'], outDir: ['out'], limit: ['limit'],
  weights: ['weights'], keepClassifier: ['keep-classifier'], freeze: ['freeze'], svhnExtra: ['svhn-extra'],
  valSplit: ['val-split'], normalize: ['normalize'],
};

/**
 * A resumed run's options: the checkpoint's, except those given on the command line (train()
 * applies the ones that may change and refuses the others by name). --out defaults to the
 * checkpoint's directory, so `--resume DIR/last.ckpt` continues the run in DIR.
 */
export function resumeOptions(saved: TrainOptions, wanted: TrainOptions, given: Set<string>): TrainOptions {
  const options: TrainOptions = { ...saved, resume: wanted.resume, overwrite: wanted.overwrite, outDir: dirname(wanted.resume!) };
  for (const [key, flags] of Object.entries(FLAGS_OF) as [keyof TrainOptions, string[]][]) {
    if (flags.some((f) => given.has(f))) (options as unknown as Record<string, unknown>)[key] = wanted[key];
  }
  return options;
}

/**
 * Without --out (and without --resume or --overwrite), a new run never lands on an earlier one:
 * runs/MODEL-DATASET, else the first of runs/MODEL-DATASET-2, -3, ... that holds no run. So a
 * second `npm start` trains again instead of being refused; an explicit --out is refused instead.
 */
export async function freeDefaultOutDir(outDir: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? outDir : `${outDir}-${n}`;
    if (!(await findExistingRun(candidate))) return candidate;
  }
}

export async function runTrain(flags: ParsedFlags, given: Set<string>): Promise<void> {
  let options = trainOptionsFromFlags(flags);
  if (options.resume) {
    const saved = (await readCheckpoint(options.resume)).header;
    if (saved.format !== CHECKPOINT_FORMAT) throw new UsageError(`train: ${options.resume} is not a densenet-wgsl training checkpoint`);
    const previous = saved.options as TrainOptions;
    if (given.has('model') && previous.model !== options.model) {
      throw new UsageError(`train: checkpoint ${options.resume} is for model "${previous.model}", not "${options.model}"; ` +
        'drop --model to continue it, or start a new run without --resume');
    }
    options = resumeOptions(previous, options, given);
  } else if (!given.has('out') && !options.overwrite) {
    const free = await freeDefaultOutDir(options.outDir);
    if (free !== options.outDir) {
      console.log(`${options.outDir} holds an earlier run (kept); this run writes to ${free} (--out chooses the directory, --overwrite replaces the earlier run)`);
      options = { ...options, outDir: free };
    }
  }
  if (options.weights && !options.resume && !given.has('lr')) {
    console.log(`fine-tuning: learning rate ${options.lr}, the fine-tuning default for ${options.optimizer} (--lr sets another)`);
  }
  try {
    const tuneFor = options;
    const readWeights = options.weights ? fineTuneWeightsReader(options.weights) : undefined;
    const summary = await train(options, tunedAdapterOptions(flags, () => [tuneTarget(tuneFor.model, tuneFor.batch, tuneFor.memory, true, tuneFor.freeze)]), console.log, { readWeights });
    const pct = (x: number | null) => (x === null ? 'none' : `${(100 * x).toFixed(2)}%`);
    const accuracy = summary.testAccuracy === null ? 'no epoch finished, nothing evaluated' : `test accuracy ${pct(summary.testAccuracy)} (best ${pct(summary.bestTestAccuracy)})`;
    // Name only the files that exist: an interrupted first epoch has no plot and no best checkpoint.
    const files = ['summary.json', 'metrics.jsonl', 'plot.svg', 'last.ckpt', 'best.ckpt'].filter((f) => existsSync(join(options.outDir, f)));
    console.log(`${summary.status === 'completed' ? 'done' : summary.status}: ${summary.epochs} of ${summary.epochsPlanned} epochs, ${accuracy}, ` +
      `${summary.imagesPerSec.toFixed(1)} images/s, ${summary.seconds.toFixed(0)} s, peak GPU memory ${(summary.peakGpuBytes / 2 ** 20).toFixed(1)} MiB; ` +
      `results in ${options.outDir} (${files.join(', ')})`);
    // 130 = 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C.
    if (summary.status === 'interrupted') process.exitCode = 130;
  } catch (e) {
    if (e instanceof TrainingStopped) { console.error(e.message); process.exitCode = e.exitCode; return; }
    throw e;
  }
}
