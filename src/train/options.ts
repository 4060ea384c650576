// Training options: defaults are the paper's CIFAR recipe (SGD lr 0.1, Nesterov momentum 0.9,
// weight decay 1e-4, batch 64, lr ÷10 at 50% and 75% of epochs). Everything is validated here,
// before any data is read or any GPU work is submitted.

import type { OptimizerConfig } from '../graph/ops/optimizer.js';
import { checkFreeze, checkStrategy, type FreezePart, type MemoryStrategy } from '../models/densenet_graph.js';
import type { LrSchedule } from './schedule.js';

export type DatasetName = 'mnist' | 'cifar10' | 'cifar100' | 'svhn' | 'folder';
export const DATASETS: readonly DatasetName[] = ['mnist', 'cifar10', 'cifar100', 'svhn', 'folder'];

/**
 * The learning rate when --lr is not given. Fine-tuning (--weights) starts from trained features
 * that a large step would wreck: 0.01 for SGD (a tenth of the paper's 0.1, as torchvision's
 * transfer-learning tutorial uses 0.001–0.01), 1e-4 for Adam/AdamW.
 */
export function defaultLearningRate(optimizer: TrainOptions['optimizer'], fineTuning: boolean): number {
  if (!fineTuning) return 0.1;
  return optimizer === 'sgd' ? 0.01 : 1e-4;
}

export interface TrainOptions {
  model: string;
  dataset: DatasetName;
  dataDir?: string;
  epochs: number;
  batch: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: 'step' | 'cosine' | 'constant';
  /** Dropout rate after each conv (overrides the preset's); undefined keeps the preset's. */
  dropout?: number;
  augment: boolean;
  seed: number;
  memory: MemoryStrategy;
  outDir: string;
  /** Checkpoint to continue from. */
  resume?: string;
  /** Delete the run files already in outDir before starting (otherwise such a run is refused). */
  overwrite?: boolean;
  /** Folder datasets: the fraction of each class of DIR/<class>/ held out for validation (DIR has no train/ and val/). */
  valSplit?: number;
  /** Folder datasets: ImageNet's mean/std (default for 3-channel models) or the training set's. */
  normalize?: 'imagenet' | 'dataset';
  /** Use only this many training images, and a proportional share of the test images: quick runs and tests. */
  limit?: number;
  /** Fine-tuning: torchvision-named safetensors whose features (every layer but the classifier) initialise the model. */
  weights?: string;
  /** Also load the file's classifier (its class count must match the dataset's); default: a new classifier, initialised as the engine does. */
  keepClassifier?: boolean;
  /** What does not train: none (default) or features (only the classifier trains; the features run in eval mode). */
  freeze?: FreezePart;
  /** SVHN: add extra_32x32.mat (531,131 images) to the training set. */
  svhnExtra?: boolean;
}

export class OptionsError extends Error {}

export function checkTrainOptions(o: TrainOptions): void {
  const fail = (msg: string) => { throw new OptionsError(`train: ${msg}`); };
  if (!DATASETS.includes(o.dataset)) fail(`--dataset must be mnist, cifar10, cifar100, svhn or folder, got "${o.dataset}"`);
  if (o.dataset === 'folder' && !o.dataDir) fail('--dataset folder needs --data-dir DIR holding DIR/train/<class>/ and DIR/val/<class>/ (or DIR/<class>/ with --val-split 0.1)');
  if (o.dataset !== 'mnist' && !o.dataDir) fail(`--dataset ${o.dataset} needs --data-dir DIR holding the dataset's ${o.dataset === 'svhn' ? '.mat' : 'binary'} files`);
  if (o.svhnExtra && o.dataset !== 'svhn') fail(`--svhn-extra adds SVHN's extra_32x32.mat; it needs --dataset svhn, not ${o.dataset}`);
  try {
    checkFreeze(o.freeze ?? 'none');
  } catch (e) {
    fail((e as Error).message);
  }
  if (o.keepClassifier && !o.weights) fail('--keep-classifier keeps the classifier of --weights FILE; give --weights too');
  if (o.weights !== undefined && !o.weights.endsWith('.safetensors')) {
    fail(`--weights ${o.weights}: expected a .safetensors file (torchvision names; \`export\` writes one from a checkpoint; to continue a training run use --resume CHECKPOINT)`);
  }
  if (o.valSplit !== undefined && o.dataset !== 'folder') fail('--val-split goes with --dataset folder');
  if (o.valSplit !== undefined && !(o.valSplit > 0 && o.valSplit < 1)) fail(`--val-split must be a fraction between 0 and 1 (e.g. 0.1), got ${o.valSplit}`);
  if (o.normalize !== undefined && o.dataset !== 'folder') fail(`--normalize goes with --dataset folder (${o.dataset} is normalized with its training set's mean and std)`);
  if (o.normalize !== undefined && !['imagenet', 'dataset'].includes(o.normalize)) fail(`--normalize must be imagenet or dataset, got "${o.normalize}"`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) fail(`--epochs must be a whole number >= 1, got ${o.epochs}`);
  if (!Number.isInteger(o.batch) || o.batch < 2) fail(`--batch must be a whole number >= 2, got ${o.batch}`);
  if (!['sgd', 'adam', 'adamw'].includes(o.optimizer)) fail(`--optimizer must be sgd, adam or adamw, got "${o.optimizer}"`);
  if (!(o.lr > 0 && Number.isFinite(o.lr))) fail(`--lr must be a positive number, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) fail(`--momentum must be in [0, 1), got ${o.momentum}`);
  if (o.nesterov && o.optimizer === 'sgd' && o.momentum === 0) fail('--nesterov needs --momentum > 0');
  if (!(o.weightDecay >= 0 && Number.isFinite(o.weightDecay))) fail(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (!['step', 'cosine', 'constant'].includes(o.schedule)) fail(`--schedule must be step, cosine or constant, got "${o.schedule}"`);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout < 1)) fail(`--dropout must be in [0, 1), got ${o.dropout}`);
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) fail(`--seed must be a whole number in [0, 2^32), got ${o.seed}`);
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < o.batch)) fail(`--limit must be a whole number >= the batch size (${o.batch}), got ${o.limit}`);
  checkStrategy(o.memory);
}

export function optimizerConfig(o: TrainOptions): OptimizerConfig {
  if (o.optimizer === 'sgd') return { kind: 'sgd', lr: o.lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay };
  return { kind: 'adam', lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, decoupled: o.optimizer === 'adamw' };
}

export function scheduleOf(o: TrainOptions): LrSchedule {
  if (o.schedule === 'step') return { kind: 'step', milestones: [0.5, 0.75], gamma: 0.1 };
  if (o.schedule === 'cosine') return { kind: 'cosine' };
  return { kind: 'constant' };
}
