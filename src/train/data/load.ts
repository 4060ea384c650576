// One entry point for the datasets the CLI names. `limit` keeps a quick run quick: the first
// `limit` training images and a proportional share (at least one batch's worth) of the test set.

import type { DatasetName } from '../options.js';
import { loadCifar } from './cifar.js';
import type { Dataset, DatasetSplit } from './dataset.js';
import { imageSize } from './dataset.js';
import { loadMnist } from './mnist.js';
import { loadSvhn } from './svhn.js';

/** Digits the `mnist` package ships. */
const MNIST_DIGITS = 10_000;

export async function loadDataset(name: Exclude<DatasetName, 'folder'>, o: { dataDir?: string; seed: number; limit?: number; svhnExtra?: boolean }): Promise<DatasetSplit> {
  if (name === 'mnist') {
    // MNIST's split is 80/20 of however many digits are used.
    return loadMnist({ seed: o.seed, limit: o.limit === undefined ? undefined : Math.min(MNIST_DIGITS, Math.ceil(o.limit / 0.8)) });
  }
  const split = name === 'svhn' ? await loadSvhn(o.dataDir!, { extra: o.svhnExtra }) : await loadCifar(name, o.dataDir!);
  if (o.limit === undefined) return split;
  const testCount = Math.max(1, Math.round((o.limit * split.test.labels.length) / split.train.labels.length));
  return { ...split, train: head(split.train, o.limit), test: head(split.test, testCount) };
}

function head(d: Dataset, count: number): Dataset {
  const n = Math.min(count, d.labels.length);
  return { ...d, images: d.images.subarray(0, n * imageSize(d.shape)), labels: d.labels.subarray(0, n) };
}
