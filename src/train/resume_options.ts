// Which training options a resumed run may change from those its checkpoint recorded. Options
// that only steer what happens from now on (epochs, learning rate and schedule, optimizer
// hyper-parameters, memory strategy, augmentation on/off, where files go) may change, and the
// change is recorded; options the checkpoint's state depends on are refused by name with why.

import type { TrainOptions } from './options.js';
import { OptionsError } from './options.js';

/** The command-line flag of each option, for messages. */
export const FLAG_OF_OPTION: Record<keyof TrainOptions, string> = {
  model: 'model', dataset: 'dataset', dataDir: 'data-dir', epochs: 'epochs', batch: 'batch', optimizer: 'optimizer', lr: 'lr',
  momentum: 'momentum', nesterov: 'no-nesterov', weightDecay: 'weight-decay', schedule: 'schedule', dropout: 'dropout',
  augment: 'augment', seed: 'seed', memory: 'memory', outDir: 'out', resume: 'resume', limit: 'limit', overwrite: 'overwrite',
  weights: 'weights', keepClassifier: 'keep-classifier', freeze: 'freeze', svhnExtra: 'svhn-extra',
  valSplit: 'val-split', normalize: 'normalize',
};

/** Values of optional options that mean "not given" (checkpoints of earlier versions lack the field). */
const DEFAULTS: Partial<Record<keyof TrainOptions, unknown>> = { freeze: 'none', keepClassifier: false, svhnExtra: false };

/** Options that may change on resume: none of them is part of the state a checkpoint restores. */
const CHANGEABLE: readonly (keyof TrainOptions)[] = [
  'epochs', 'lr', 'schedule', 'momentum', 'nesterov', 'weightDecay', 'memory', 'augment', 'dataDir', 'outDir',
];

/** Why each other option cannot change: what in the checkpoint depends on it. */
const FIXED: Partial<Record<keyof TrainOptions, string>> = {
  dataset: 'the weights were trained on its classes and the data order recorded is over its images',
  batch: 'the checkpoint recorded the data order and position in the epoch for this batch size',
  limit: 'it changes the training set whose data order and position the checkpoint recorded',
  valSplit: 'it changes the training set whose data order and position the checkpoint recorded',
  normalize: 'the weights were trained on inputs normalized this way',
  seed: 'the seed fixes the data order, augmentation and dropout draws the checkpoint continues',
  optimizer: "the checkpoint holds this optimizer's state (momentum or Adam moments), which another optimizer cannot use",
  freeze: "the checkpoint's optimizer state covers only the parameters that train (with --freeze features, the classifier's), " +
    'and frozen layers kept their loaded values; to train more or fewer layers start a new run with --weights (export this checkpoint first)',
  weights: 'the run started from these weights and the checkpoint holds what was trained from them',
  keepClassifier: 'the checkpoint holds the classifier the run started with and trained',
  svhnExtra: 'it changes the training set whose data order and position the checkpoint recorded',
};

export interface OptionChange { from: unknown; to: unknown }

/**
 * The options that differ between `saved` (the checkpoint's) and `wanted`: the changes a resume
 * applies (keyed by option name), or an OptionsError naming each refused option and why.
 * `resume` itself is not compared; undefined and a missing field are the same.
 */
export function resumeOptionChanges(saved: TrainOptions, wanted: TrainOptions): Record<string, OptionChange> {
  const changed: Record<string, OptionChange> = {};
  const refused: string[] = [];
  for (const key of Object.keys(FLAG_OF_OPTION) as (keyof TrainOptions)[]) {
    // How this invocation starts is not part of the run; model and dropout are compared as the model config (trainer.ts).
    if (key === 'resume' || key === 'overwrite' || key === 'model' || key === 'dropout') continue;
    const from = saved[key] ?? DEFAULTS[key];
    const to = wanted[key] ?? DEFAULTS[key];
    if (JSON.stringify(from) === JSON.stringify(to)) continue;
    if (CHANGEABLE.includes(key)) {
      changed[key] = { from: from ?? null, to: to ?? null };
    } else {
      refused.push(`--${FLAG_OF_OPTION[key]} (${show(from)} in the checkpoint, ${show(to)} asked): ${FIXED[key] ?? 'the checkpoint depends on it'}`);
    }
  }
  if (refused.length > 0) {
    throw new OptionsError(`train: --resume cannot change ${refused.length === 1 ? 'this option' : 'these options'}: ${refused.join('; ')}. ` +
      'Drop them to continue the run, or start a new run without --resume. ' +
      `Options a resume may change: ${CHANGEABLE.map((k) => `--${FLAG_OF_OPTION[k]}`).join(', ')}`);
  }
  return changed;
}

/** "lr 0.1 → 0.01, epochs 6 → 8" for the console. */
export function describeChanges(changed: Record<string, OptionChange>): string {
  return Object.entries(changed).map(([k, c]) => `${FLAG_OF_OPTION[k as keyof TrainOptions] ?? k} ${show(c.from)} → ${show(c.to)}`).join(', ');
}

function show(v: unknown): string {
  return v === undefined || v === null ? 'none' : typeof v === 'string' ? v : JSON.stringify(v);
}
