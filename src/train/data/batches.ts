// Epoch-based, seeded shuffling and batching with exact resume. Nothing here carries hidden running
// state: epoch e's order is a permutation drawn from hash(seed, e), and batch b of epoch e draws its
// augmentation from hash(seed, e, b). So (epoch, batch position) alone fixes everything that follows,
// and a stream restored from state() continues bit for bit as the uninterrupted one would.

import { augmentBatch, CIFAR_AUGMENT, type AugmentOptions } from './augment.js';
import { checkDataset, DatasetError, imageSize, normalizeInto, type Dataset } from './core.js';
import { mix32, permutation, Rng, STREAM } from './rng.js';

export interface BatchStreamOptions {
  /** Images per batch (≥ 1). */
  batch: number;
  /** u32 seed of the epoch orders and augmentation draws. */
  seed: number;
  /** A new random order every epoch; false: dataset order. */
  shuffle: boolean;
  /** true: CIFAR augmentation (pad 4, random crop, flip; see augment.ts); or explicit options; false: none. */
  augment: boolean | AugmentOptions;
  /** Drop the last partial batch of an epoch (training); false keeps it (evaluation). */
  dropLast: boolean;
  /** Per-channel normalization applied to every batch: (x − mean) / std. */
  mean: number[];
  std: number[];
}

export interface Batch {
  /**
   * count·C·H·W normalized (and augmented) values, NCHW. A view of one of the stream's TWO
   * alternating buffers: valid until next() has been called twice more (so a batch may be prepared
   * while the previous one is still in use), then overwritten.
   */
  images: Float32Array;
  /** count labels; same lifetime as `images`. */
  labels: Uint32Array;
  /** Images in this batch: options.batch, or fewer for the last batch of an epoch when !dropLast. */
  count: number;
  /** 0-based epoch and batch index within it. */
  epoch: number;
  indexInEpoch: number;
}

/** Plain JSON: where the stream is, plus what it was built with (checked by restore). */
export interface BatchStreamState {
  version: 1;
  dataset: string;
  size: number;
  /** FNV-1a of the labels, to refuse a resume on a different data set or split. */
  labelsHash: number;
  batch: number;
  seed: number;
  shuffle: boolean;
  augment: AugmentOptions | null;
  dropLast: boolean;
  mean: number[];
  std: number[];
  /** The epoch in progress and the index of the next batch in it (= batchesPerEpoch: next() returns null, then the next epoch starts). */
  epoch: number;
  batchInEpoch: number;
}

function labelsHash(labels: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < labels.length; i++) h = Math.imul(h ^ labels[i], 0x01000193) >>> 0;
  return h >>> 0;
}

export class BatchStream {
  private readonly size: number;
  private readonly n: number;
  private readonly augmentation: AugmentOptions | null;
  private readonly hash: number;
  private readonly gathered: Float32Array;
  /** Two output buffers used alternately (see Batch.images). */
  private readonly outputs: [Float32Array, Float32Array];
  private readonly labelBuffers: [Uint32Array, Uint32Array];
  private served = 0;
  private epoch = 0;
  private batchInEpoch = 0;
  /** The order of epoch `orderEpoch` (identity when !shuffle). */
  private order: Uint32Array | undefined;
  private orderEpoch = -1;

  /** A copy of the options given (later changes to the caller's arrays do not reach the stream). */
  readonly options: BatchStreamOptions;

  constructor(readonly dataset: Dataset, options: BatchStreamOptions) {
    checkDataset(dataset);
    this.options = { ...options, mean: [...options.mean], std: [...options.std] };
    const { batch, seed, mean, std } = options;
    this.size = imageSize(dataset.shape);
    this.n = dataset.labels.length;
    if (!Number.isInteger(batch) || batch < 1) throw new DatasetError(`batches: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new DatasetError(`batches: seed must be an integer in [0, 2³²), got ${seed}`);
    if (this.n === 0) throw new DatasetError(`batches: ${dataset.name} has no images`);
    if (options.dropLast && batch > this.n) throw new DatasetError(`batches: batch ${batch} is larger than ${dataset.name}'s ${this.n} images and dropLast is set: no batch would ever come`);
    if (mean.length !== dataset.shape[0] || std.length !== dataset.shape[0]) {
      throw new DatasetError(`batches: ${mean.length} means and ${std.length} stds for ${dataset.shape[0]}-channel ${dataset.name} images`);
    }
    const a = options.augment === true ? CIFAR_AUGMENT : options.augment || null;
    this.augmentation = a ? { padding: a.padding, flip: a.flip } : null; // fixed key order: state() is compared as JSON
    if (a && (!Number.isInteger(a.padding) || a.padding < 0 || typeof a.flip !== 'boolean')) {
      throw new DatasetError(`batches: augment needs an integer padding ≥ 0 and a boolean flip, got ${JSON.stringify(a)}`);
    }
    this.hash = labelsHash(dataset.labels);
    const capacity = Math.min(batch, this.n);
    this.gathered = new Float32Array(capacity * this.size);
    this.outputs = [new Float32Array(capacity * this.size), new Float32Array(capacity * this.size)];
    this.labelBuffers = [new Uint32Array(capacity), new Uint32Array(capacity)];
    normalizeInto(this.gathered, this.outputs[0], dataset.shape, mean, std, 0); // validates mean/std
  }

  batchesPerEpoch(): number {
    return this.options.dropLast ? Math.floor(this.n / this.options.batch) : Math.ceil(this.n / this.options.batch);
  }

  /** The dataset indices of `epoch`, in the order they are served. */
  epochOrder(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch || !this.order) {
      this.order = this.options.shuffle ? permutation(this.n, new Rng(mix32(STREAM.epochOrder, this.options.seed, epoch))) : Uint32Array.from({ length: this.n }, (_, i) => i);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /**
   * The next batch, or null once an epoch's batches are all served (the following call starts the
   * next epoch with a new order). The returned arrays are views of buffers the stream reuses: they
   * stay valid until next() has been called twice more; copy them to keep them longer.
   */
  next(): Batch | null {
    if (this.batchInEpoch >= this.batchesPerEpoch()) {
      this.epoch++;
      this.batchInEpoch = 0;
      return null;
    }
    const { batch, seed, mean, std } = this.options;
    const { images, labels, shape } = this.dataset;
    const order = this.epochOrder(this.epoch);
    const first = this.batchInEpoch * batch;
    const count = Math.min(batch, this.n - first);
    const size = this.size;
    const output = this.outputs[this.served & 1];
    const labelBuffer = this.labelBuffers[this.served & 1];
    this.served++;
    const target = this.augmentation ? this.gathered : output;
    for (let i = 0; i < count; i++) {
      const index = order[first + i];
      target.set(images.subarray(index * size, (index + 1) * size), i * size);
      labelBuffer[i] = labels[index];
    }
    if (this.augmentation) {
      augmentBatch(this.gathered, output, shape, count, new Rng(mix32(STREAM.augment, seed, this.epoch, this.batchInEpoch)), this.augmentation);
    }
    normalizeInto(output, output, shape, mean, std, count);
    const result: Batch = {
      images: output.subarray(0, count * size), labels: labelBuffer.subarray(0, count), count,
      epoch: this.epoch, indexInEpoch: this.batchInEpoch,
    };
    this.batchInEpoch++;
    return result;
  }

  /** Everything needed to continue exactly (plain JSON; there is no running RNG state to save, see the file header). */
  state(): BatchStreamState {
    const o = this.options;
    return {
      version: 1, dataset: this.dataset.name, size: this.n, labelsHash: this.hash,
      batch: o.batch, seed: o.seed, shuffle: o.shuffle, augment: this.augmentation ? { ...this.augmentation } : null, dropLast: o.dropLast,
      mean: [...o.mean], std: [...o.std], epoch: this.epoch, batchInEpoch: this.batchInEpoch,
    };
  }

  /**
   * A stream over `dataset` with `options` that continues exactly where the one that wrote `state`
   * stood. `saved` is a state() result, typically read back from JSON, so it is checked at run time:
   * throws DatasetError when it is malformed, or the data set or options differ from those it was taken with.
   */
  static restore(dataset: Dataset, options: BatchStreamOptions, saved: object): BatchStream {
    const stream = new BatchStream(dataset, options);
    const now = stream.state();
    const state = saved as Partial<BatchStreamState> | null;
    if (!state || typeof state !== 'object' || state.version !== 1) {
      throw new DatasetError(`batches: cannot resume from ${JSON.stringify(state)?.slice(0, 80)}: not a data stream state of version 1`);
    }
    const keys = ['dataset', 'size', 'labelsHash', 'batch', 'seed', 'shuffle', 'augment', 'dropLast', 'mean', 'std'] as const;
    for (const k of keys) {
      const was = JSON.stringify(state[k]);
      const is = JSON.stringify(now[k]);
      if (was !== is) throw new DatasetError(`batches: cannot resume: the saved stream had ${k} ${was}, this one has ${is}`);
    }
    const { epoch, batchInEpoch } = state;
    if (!Number.isInteger(epoch) || epoch! < 0 || !Number.isInteger(batchInEpoch) || batchInEpoch! < 0 || batchInEpoch! > stream.batchesPerEpoch()) {
      throw new DatasetError(`batches: cannot resume at epoch ${epoch}, batch ${batchInEpoch} (${stream.batchesPerEpoch()} batches per epoch)`);
    }
    stream.epoch = epoch!;
    stream.batchInEpoch = batchInEpoch!;
    return stream;
  }
}
