// loadImageFolder(): a folder of your own images (DIR/train/<class>/ + DIR/val/<class>/, or
// DIR/<class>/ with valSplit) as the train/test ImageDatasets that train() and evaluate() take,
// through the same loader as `train --dataset folder`: every file decoded once up front (broken
// ones reported by name), small inputs held in memory, ImageNet-stem inputs decoded per batch.

import type { DenseNetConfig } from '../models/densenet_config.js';
import { UsageError } from '../base/usage_error.js';
import { loadFolderData, type StreamedSet } from '../train/data/folder_load.js';
import { decodeBatchInto } from '../train/data/folder_stream.js';
import { mix32, Rng, STREAM } from '../train/data/rng.js';
import type { Preprocessing as EnginePreprocessing } from '../train/preprocessing.js';
import { arrayDataset, type ImageDataset, type TrainTestSplit } from './data.js';
import { resolveConfig, type Model, type ModelSpec, type Preprocessing } from './model.js';

export interface ImageFolderOptions {
  /**
   * The model the images are for (a Model, a preset name or DenseNet settings): its input shape
   * sets the image size, and an ImageNet stem picks torchvision's transforms (RandomResizedCrop +
   * flip; resize + centre crop), decoded per batch. Default: [3, 32, 32] RGB, held in memory.
   */
  model?: Model | ModelSpec;
  /** Overrides the model's input shape ([C, H, W]; C = 1 converts to gray). */
  inputShape?: [number, number, number];
  /** Hold out this fraction of each class of DIR/<class>/ (seeded, stratified); not with DIR/train + DIR/val. */
  valSplit?: number;
  /** Seed of valSplit and limit (default 0). */
  seed?: number;
  /** Use this many training images (a seeded choice over every class), and validation images in proportion. */
  limit?: number;
  /** 'imagenet' (ImageNet's mean/std; default for RGB) or 'dataset' (the training images'; default for gray). */
  normalize?: 'imagenet' | 'dataset';
  /** Augment training batches (default true): pad-4 crop + flip, or RandomResizedCrop + flip for an ImageNet stem. */
  augment?: boolean;
  /** Told each line the loader reports: files left out (not an image, undecodable) and the summary. */
  onLog?: (line: string) => void;
}

export interface ImageFolderData extends TrainTestSplit {
  classNames: string[];
  /** Files left out, by path, and why. */
  skipped: { path: string; reason: string }[];
  /** true: images are decoded per batch (ImageNet-stem sizes); false: held in memory. */
  streamed: boolean;
  /** The preprocessing the model should record (train() sets mean/std from the data set; resize is the model's). */
  preprocessing: Preprocessing;
  /** One line: layout, counts, normalization. */
  description: string;
}

function configFor(o: ImageFolderOptions): DenseNetConfig {
  const model = o.model;
  if (model !== undefined && typeof model === 'object' && 'parameterCount' in model) {
    const c = model.config;
    return o.inputShape ? { ...c, inputShape: [...o.inputShape] } : c;
  }
  // Only the input shape and stem matter here: the class count is the folder's.
  return resolveConfig((model as ModelSpec | undefined) ?? { blocks: [1], growthRate: 4, initialFeatures: 8, inputShape: [3, 32, 32] }, { inputShape: o.inputShape, classes: null });
}

/** A streamed split as an ImageDataset: each read decodes its files (16 at once, on libuv's threads). */
function streamedDataset(set: StreamedSet, p: EnginePreprocessing, augment: boolean): ImageDataset {
  const [c, h, w] = p.inputShape;
  const plane = c * h * w;
  return {
    size: set.files.length, shape: [c, h, w], classNames: set.classNames, normalization: { mean: [...p.mean], std: [...p.std] },
    async read(indices, context) {
      const paths = Array.from(indices, (i) => {
        if (i >= set.files.length) throw new RangeError(`loadImageFolder: index ${i} is outside ${set.files.length} images`);
        return set.files[i];
      });
      const images = new Float32Array(paths.length * plane);
      const random = augment && context.train && p.augment === 'random-resized-crop';
      await decodeBatchInto(paths, images, p, random ? (i) => new Rng(mix32(STREAM.augment, context.seed, context.epoch, context.batch, i)) : undefined);
      return { images, labels: Uint32Array.from(indices, (i) => set.labels[i]) };
    },
  };
}

/** The image folder `dir` as training and validation data sets; errors (DatasetError) name the folder or file and the fix. */
export async function loadImageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageFolderData> {
  if (typeof dir !== 'string' || dir === '') throw new UsageError('loadImageFolder: give the folder (DIR/train/<class>/ + DIR/val/<class>/, or DIR/<class>/ with valSplit)');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`loadImageFolder: seed must be a whole number >= 0, got ${seed}`);
  if (options.valSplit !== undefined && !(options.valSplit > 0 && options.valSplit < 1)) throw new UsageError(`loadImageFolder: valSplit must be in (0, 1), got ${options.valSplit}`);
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit > 0)) throw new UsageError(`loadImageFolder: limit must be a whole number >= 1, got ${options.limit}`);
  if (options.normalize !== undefined && !['imagenet', 'dataset'].includes(options.normalize)) throw new UsageError(`loadImageFolder: normalize must be imagenet or dataset, got "${options.normalize}"`);
  const augment = options.augment ?? true;
  const config = configFor(options);
  const data = await loadFolderData({ dataDir: dir, valSplit: options.valSplit, seed, limit: options.limit, normalize: options.normalize, augment }, config, options.onLog);
  options.onLog?.(data.description);
  const p = data.preprocessing;
  const normalization = { mean: [...p.mean], std: [...p.std] };
  const split = data.split;
  let train: ImageDataset;
  let test: ImageDataset;
  if ('files' in split.train && 'files' in split.test) {
    train = streamedDataset(split.train, p, augment);
    test = streamedDataset(split.test, p, false);
  } else {
    const arrays = (d: { images: Float32Array; labels: Uint32Array; classNames?: string[] }) => ({ images: d.images, labels: d.labels, shape: [...p.inputShape] as [number, number, number], classNames: d.classNames });
    train = arrayDataset(arrays(split.train as never), { normalization, augment });
    test = arrayDataset(arrays(split.test as never), { normalization });
  }
  return {
    train, test, classNames: [...train.classNames], skipped: data.skipped.map((s) => ({ ...s })), streamed: data.streamed, description: data.description,
    preprocessing: { ...normalization, resize: p.resize === 'shorter-crop' ? 'center-crop' : 'resize' },
  };
}
