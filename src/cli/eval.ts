// `densenet-wgsl eval`, as mmpretrain's tools/test.py reports a model: top-1 and top-5 accuracy,
// loss, per-class accuracy and the confusion matrix, on
// - a checkpoint's own held-out set (MNIST/CIFAR test set, or a folder run's val split),
// - a folder given with --data-dir (DIR/val/<class>/ or DIR/<class>/; classes matched by name), or
// - torchvision ImageNet weights (--weights) on an ImageNet-style validation folder, whose class
//   folders are wnids (n01440764) or torchvision's class names, mapped to the 1,000 outputs.
// --json FILE writes it all; an existing file is replaced only with --overwrite.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../base/atomic_file.js';
import { formatAdapter, openDevice } from '../gpu/device.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession } from '../models/session.js';
import { IMAGENET_CLASSES } from '../io/imagenet_classes.js';
import { IMAGENET_WNIDS } from '../io/imagenet_wnids.js';
import { loadTorchvisionWeights } from '../io/torchvision.js';
import { scanFolderDataset, scanImageFolder, type FolderFile } from '../train/data/folder.js';
import { loadEvalFiles, reportSkipped, take, type StreamedSet } from '../train/data/folder_load.js';
import { loadDataset } from '../train/data/load.js';
import type { Dataset } from '../train/data/dataset.js';
import { formatConfusion, formatPerClass, type Evaluation } from '../train/evaluate.js';
import { evaluateSplit } from '../train/evaluate_split.js';
import type { TrainOptions } from '../train/options.js';
import { IMAGENET_MEAN, IMAGENET_STD, preprocessingFor, type Preprocessing } from '../train/preprocessing.js';
import { ADAPTER_FLAGS, UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { modelFromCheckpoint } from './checkpoint_model.js';
import { checkOutFile, refuseWrongKind } from './files.js';
import { asUsage, modelAndWeights } from './imagenet.js';
import { TUNE_FLAGS, tunedAdapterOptions } from './tune.js';

export const EVAL_FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'checkpoint written by train (last.ckpt or best.ckpt)' },
  { name: 'weights', type: 'string', help: 'torchvision-named .safetensors ImageNet weights (with --data-dir: an ImageNet-style val folder)' },
  { name: 'model', type: 'string', help: 'with --weights: preset (densenet121/169/201/161) or JSON config (default: from the weights)' },
  { name: 'data-dir', type: 'string', help: "default: the checkpoint's test set or folder val split; a folder: DIR/val/<class>/ or DIR/<class>/ (CIFAR: its binary files)" },
  { name: 'batch', type: 'number', help: 'batch size', default: 64 },
  { name: 'json', type: 'string', help: 'also write the results (accuracies, per-class, confusion matrix) to this .json file' },
  { name: 'overwrite', type: 'boolean', help: 'replace an existing --json file' },
  ...ADAPTER_FLAGS,
  ...TUNE_FLAGS,
];

/** Classes with more than this many rows print no confusion matrix (it is in --json). */
const PRINTED_CLASSES = 30;

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** The folder to evaluate under DIR: DIR/val if it exists, else DIR itself (its sub-folders are classes). */
async function evalRoot(dir: string): Promise<string> {
  return (await isDirectory(join(dir, 'val'))) ? join(dir, 'val') : dir;
}

/** Files of an evaluation folder with labels from `indexOf(folder name)`; unknown folders are an error naming them. */
async function labelledFiles(root: string, indexOf: (name: string) => number | undefined, known: string, log: (line: string) => void): Promise<FolderFile[]> {
  const folder = await scanImageFolder(root);
  const unknown = folder.classNames.filter((n) => indexOf(n) === undefined);
  if (unknown.length) {
    throw new UsageError(`eval: ${unknown.length} class folder${unknown.length === 1 ? '' : 's'} of ${root} ${unknown.length === 1 ? 'is' : 'are'} not ${known}: ` +
      `${unknown.slice(0, 5).map((n) => join(root, n)).join(', ')}${unknown.length > 5 ? ', …' : ''}; rename or remove ${unknown.length === 1 ? 'it' : 'them'}`);
  }
  reportSkipped(folder.skipped, log);
  return folder.files.map((f) => ({ path: f.path, label: indexOf(folder.classNames[f.label])! }));
}

/** torchvision's index of an ImageNet class folder: its wnid, or its class name (spaces may be underscores). */
export function imagenetIndexOf(name: string): number | undefined {
  const byWnid = IMAGENET_WNIDS.indexOf(name);
  if (byWnid >= 0) return byWnid;
  const byName = IMAGENET_CLASSES.indexOf(name);
  if (byName >= 0) return byName;
  const spaced = IMAGENET_CLASSES.indexOf(name.replace(/_/g, ' '));
  return spaced >= 0 ? spaced : undefined;
}

export async function runEval(flags: ParsedFlags, given: Set<string>, log: (line: string) => void = console.log): Promise<void> {
  const checkpoint = flags.checkpoint as string | undefined;
  const weights = flags.weights as string | undefined;
  const dataDir = flags['data-dir'] as string | undefined;
  const json = flags.json as string | undefined;
  const batch = flags.batch as number;
  if (checkpoint && weights) throw new UsageError('eval: give --checkpoint or --weights, not both');
  if (!checkpoint && !weights) throw new UsageError('eval: give --checkpoint FILE (a model trained here) or --weights FILE.safetensors --data-dir VALDIR (torchvision ImageNet weights)');
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`eval: --batch must be a whole number >= 1, got ${batch}`);
  if (checkpoint && given.has('model')) throw new UsageError('eval: --model goes with --weights, not --checkpoint (a checkpoint knows its model)');
  if (weights && !dataDir) throw new UsageError('eval: --weights needs --data-dir VALDIR, an ImageNet-style folder of class folders (VALDIR/<wnid or class name>/*.JPEG)');
  if (json) await checkOutFile('eval', json, { extensions: ['.json'], format: 'JSON', overwrite: flags.overwrite === true, flag: 'json' });
  if (checkpoint) await refuseWrongKind('eval', 'checkpoint', checkpoint, { safetensors: '--weights (torchvision-named weights) and --data-dir' });
  if (weights) return evalWeights(flags, weights, dataDir!, json, log);

  const { gpu, model, header, config, preprocessing, classNames } = await modelFromCheckpoint(checkpoint!, flags, batch);
  try {
    const options = header.options as TrainOptions;
    let data: Dataset | StreamedSet;
    let mean = preprocessing.mean;
    let std = preprocessing.std;
    let what: string;
    if (options.dataset === 'folder' || (dataDir !== undefined && (await isDirectory(dataDir)) && !(await looksLikeCifar(dataDir)))) {
      let files: FolderFile[];
      if (dataDir !== undefined) {
        const root = await evalRoot(dataDir);
        files = await labelledFiles(root, (n) => { const i = classNames.indexOf(n); return i >= 0 ? i : undefined; }, `one of the checkpoint's classes (${classNames.join(', ')})`, log);
        what = `folder ${root}`;
      } else {
        // The run's own validation split, drawn again from the recorded seed and fraction.
        const split = await scanFolderDataset(options.dataDir!, { valSplit: options.valSplit, seed: options.seed });
        files = options.limit !== undefined ? take(split.val, Math.max(1, Math.round((options.limit * split.val.length) / split.train.length)), options.seed, 1) : split.val;
        what = `validation images of ${split.layout}`;
      }
      data = await loadEvalFiles(files, config.inputShape, classNames, log);
    } else {
      const split = await loadDataset(options.dataset as Exclude<TrainOptions['dataset'], 'folder'>, { dataDir: dataDir ?? options.dataDir, seed: options.seed, limit: options.limit, svhnExtra: options.svhnExtra });
      data = split.test;
      mean = split.mean;
      std = split.std;
      what = `${options.dataset} test set`;
    }
    const session = await InferenceSession.create(model, { batch });
    let result: Evaluation;
    try {
      result = await evaluateSplit(session, data, mean, std, preprocessing);
    } finally {
      session.destroy();
    }
    await report(result, classNames, what, { model: config.name, checkpoint }, json, log);
  } finally {
    model.close();
    gpu.close();
  }
}

/** CIFAR's binary files in a directory (eval --data-dir of a CIFAR checkpoint is that directory). */
async function looksLikeCifar(dir: string): Promise<boolean> {
  return (await stat(join(dir, 'test_batch.bin')).catch(() => undefined)) !== undefined || (await stat(join(dir, 'test.bin')).catch(() => undefined)) !== undefined;
}

async function evalWeights(flags: ParsedFlags, weights: string, dataDir: string, json: string | undefined, log: (line: string) => void): Promise<void> {
  const { config, contents } = await modelAndWeights(flags, 'eval');
  if (config.classes !== IMAGENET_CLASSES.length) throw new UsageError(`eval: ${weights} has ${config.classes} classes, not ImageNet's 1,000; evaluate a model trained here with --checkpoint`);
  const root = await evalRoot(dataDir);
  const files = await labelledFiles(root, imagenetIndexOf, 'an ImageNet wnid (n01440764) or a torchvision ImageNet class name', log);
  const data = await loadEvalFiles(files, config.inputShape, [...IMAGENET_CLASSES], log);
  const preprocessing: Preprocessing = preprocessingFor(config, { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], normalize: 'imagenet' }, false);
  const batch = flags.batch as number;
  const gpu = await openDevice(tunedAdapterOptions(flags, () => [{ config, batch, memory: 'fused', training: false }]));
  const model = DenseNetModel.create(gpu, config, 0);
  try {
    log(`${formatAdapter(gpu.adapter)}\nmodel ${config.name} with ${weights}`);
    await asUsage('eval', () => loadTorchvisionWeights(model, contents, { file: weights }));
    const session = await InferenceSession.create(model, { batch });
    let result: Evaluation;
    try {
      result = await evaluateSplit(session, data, preprocessing.mean, preprocessing.std, preprocessing);
    } finally {
      session.destroy();
    }
    await report(result, IMAGENET_CLASSES, `ImageNet-style folder ${root}`, { model: config.name, weights }, json, log);
  } finally {
    model.close();
    gpu.close();
  }
}

async function report(r: Evaluation, classNames: readonly string[], what: string, source: Record<string, string | undefined>, json: string | undefined, log: (line: string) => void): Promise<void> {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  log(`${what}: ${r.count} images, top-1 accuracy ${pct(r.accuracy)}, top-5 accuracy ${pct(r.top5)}, loss ${r.loss.toFixed(4)}`);
  const present = r.perClass.filter((v) => v !== null).length;
  if (present <= 50) log(`per-class accuracy:\n${formatPerClass(r, classNames)}`);
  else log(`per-class accuracy of ${present} classes: in --json`);
  if (classNames.length <= PRINTED_CLASSES) log(formatConfusion(r.confusion, [...classNames]));
  else log(`confusion matrix (${classNames.length}×${classNames.length}): in --json`);
  if (!json) return;
  const body = {
    ...source, data: what, images: r.count, top1: r.accuracy, top5: r.top5, loss: r.loss, classNames,
    perClass: r.perClass.map((accuracy, i) => ({ name: classNames[i], accuracy, images: r.confusion[i].reduce((a, v) => a + v, 0) })),
    confusion: r.confusion,
  };
  await writeFileAtomic(json, [new TextEncoder().encode(JSON.stringify(body) + '\n')]);
  log(`wrote ${json}`);
}
