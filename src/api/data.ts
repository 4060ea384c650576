// Data for train() and evaluate(): any object with the small ImageDataset interface, so a user's
// own data plugs in. arrayDataset() makes one from images in memory (normalized with the training
// set's statistics, optionally augmented); loadDigits() and loadCifar() wrap the built-in loaders.

import { UsageError } from '../base/usage_error.js';
import { augmentBatch, channelStats, CIFAR_AUGMENT, imageSize, loadCifar as loadCifarSplit, loadMnist, normalizeInto, type DatasetSplit } from '../train/data/dataset.js';

/** Random crop with zero padding (offsets uniform in [-padding, padding]) and, with flip, a left-right mirror half the time. */
export interface AugmentOptions { padding: number; flip: boolean }
import { mix32, Rng, STREAM } from '../train/data/rng.js';

/** Images in memory: raw pixel values (in [0, 1]), image-major N·C·H·W, with one label per image. */
export interface ImageArrays {
  images: Float32Array;
  labels: ArrayLike<number>;
  /** [C, H, W] of one image. */
  shape: readonly [number, number, number];
  /** Index = label. Default "0", "1", ... up to the largest label. */
  classNames?: readonly string[];
}

/** Where in a run a read happens: augmentation draws from (seed, epoch, batch), so runs repeat exactly. */
export interface ReadContext {
  epoch: number;
  batch: number;
  seed: number;
  /** true while training (augment), false for evaluation. */
  train: boolean;
}

export interface Batch {
  /** count·C·H·W model-ready values (normalized), image-major. */
  images: Float32Array;
  labels: Uint32Array;
}

/**
 * A data set the engine can train on or evaluate: its size, image shape and classes, and a
 * random-access read of model-ready images. `read` may be async (decode files, fetch): the engine
 * asks for the next batch while the GPU runs the current one.
 */
export interface ImageDataset {
  readonly size: number;
  readonly shape: readonly [number, number, number];
  readonly classNames: readonly string[];
  /** The normalization `read` applies to raw [0, 1] pixels; train() records it in the model, so predict() applies it to files. */
  readonly normalization?: { mean: number[]; std: number[] };
  /**
   * Light strokes on a dark background (MNIST digits): train() records it in the model's
   * preprocessing, so predict() inverts a gray image file whose mean is light (a drawing on paper).
   */
  readonly invertLight?: boolean;
  read(indices: Uint32Array, context: ReadContext): Batch | Promise<Batch>;
}

export interface ArrayDatasetOptions {
  /** Per-channel normalization (default: the mean and std of these images). Give the training set's to a test set. */
  normalization?: { mean: number[]; std: number[] };
  /** Random crop with zero padding and horizontal flip while training: true is CIFAR's (pad 4, flip). Default none. */
  augment?: boolean | AugmentOptions;
}

function checkArrays(a: ImageArrays, what: string): { classNames: string[]; labels: Uint32Array } {
  const shape = a.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((v) => Number.isInteger(v) && v > 0)) {
    throw new UsageError(`${what}: shape must be [channels, height, width] of positive whole numbers, got ${JSON.stringify(shape)}`);
  }
  if (!(a.images instanceof Float32Array)) throw new UsageError(`${what}: images must be a Float32Array (N·C·H·W raw pixel values in [0, 1])`);
  const n = a.labels.length;
  if (n === 0) throw new UsageError(`${what}: no images (labels is empty)`);
  if (a.images.length !== n * imageSize(shape as [number, number, number])) {
    throw new UsageError(`${what}: ${a.images.length} pixel values for ${n} labels of [${shape.join(', ')}] images (expected ${n * imageSize(shape as [number, number, number])})`);
  }
  const labels = new Uint32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = a.labels[i];
    if (!Number.isInteger(v) || v < 0) throw new UsageError(`${what}: label ${i} is ${v}; labels must be whole numbers >= 0`);
    labels[i] = v;
    max = Math.max(max, v);
  }
  const classNames = a.classNames ? [...a.classNames] : Array.from({ length: max + 1 }, (_, i) => String(i));
  if (max >= classNames.length) throw new UsageError(`${what}: label ${max} is out of range for ${classNames.length} class names`);
  return { classNames, labels };
}

/** An ImageDataset over images in memory (raw values); it normalizes, and augments when training if asked. */
export function arrayDataset(arrays: ImageArrays, options: ArrayDatasetOptions = {}): ImageDataset {
  const { classNames, labels } = checkArrays(arrays, 'arrayDataset');
  const shape: [number, number, number] = [...arrays.shape] as [number, number, number];
  const normalization = options.normalization
    ? { mean: [...options.normalization.mean], std: [...options.normalization.std] }
    : channelStats(arrays.images, shape);
  const { mean, std } = normalization;
  if (mean.length !== shape[0] || std.length !== shape[0] || !std.every((s) => s > 0 && Number.isFinite(s)) || !mean.every(Number.isFinite)) {
    throw new UsageError(`arrayDataset: normalization needs ${shape[0]} finite means and ${shape[0]} stds > 0 (one per channel), got mean [${mean}], std [${std}]`);
  }
  const augment = options.augment === true ? CIFAR_AUGMENT : options.augment || null;
  const size = imageSize(shape);
  const images = arrays.images;
  return {
    size: labels.length, shape, classNames, normalization,
    read(indices, context) {
      const count = indices.length;
      const gathered = new Float32Array(count * size);
      const batchLabels = new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        const index = indices[i];
        if (index >= labels.length) throw new RangeError(`arrayDataset: index ${index} is outside ${labels.length} images`);
        gathered.set(images.subarray(index * size, (index + 1) * size), i * size);
        batchLabels[i] = labels[index];
      }
      let out = gathered;
      if (augment && context.train) {
        out = new Float32Array(count * size);
        augmentBatch(gathered, out, shape, count, new Rng(mix32(STREAM.augment, context.seed, context.epoch, context.batch)), augment);
      }
      normalizeInto(out, out, shape, mean, std, count);
      return { images: out, labels: batchLabels };
    },
  };
}

export interface TrainTestSplit { train: ImageDataset; test: ImageDataset }

function split(data: DatasetSplit, augment: boolean | AugmentOptions | undefined): TrainTestSplit {
  const normalization = { mean: data.mean, std: data.std };
  return {
    train: arrayDataset(data.train, { normalization, augment }),
    test: arrayDataset(data.test, { normalization }),
  };
}

/**
 * The built-in MNIST digits ([1, 28, 28], 10 classes; 10,000 ship with the `mnist` package), split
 * 80/20 into train and test, seeded and stratified. `limit` uses that many digits in all.
 */
export function loadDigits(options: { limit?: number; seed?: number } = {}): TrainTestSplit {
  const { train, test } = split(loadMnist({ seed: options.seed, limit: options.limit }), undefined);
  return { train: { ...train, invertLight: true }, test: { ...test, invertLight: true } };
}

/**
 * CIFAR-10 or CIFAR-100 from the standard binary files in `dir` (data_batch_1..5.bin and
 * test_batch.bin, or train.bin and test.bin). Training images are augmented as in the paper
 * (pad 4, crop, flip) unless `augment: false`.
 */
export async function loadCifar(kind: 'cifar10' | 'cifar100', dir: string, options: { augment?: boolean } = {}): Promise<TrainTestSplit> {
  return split(await loadCifarSplit(kind, dir), options.augment ?? true);
}
