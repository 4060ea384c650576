// Batches of a streamed folder split (folder_load.ts): each batch's files are decoded with sharp
// (several at once, on libuv's threads) and transformed, and the NEXT batch is already being prepared
// while the caller trains on this one. Order and augmentation follow BatchStream's rules: epoch e's
// order is a permutation from hash(seed, e), and image i of batch b draws its crop and flip from
// hash(seed, e, b, i), so the state (epoch, batch) alone fixes what follows and a resume is exact.

import { decodeImageFile } from '../images.js';
import { evalInput, randomResizedCropInput, type Preprocessing } from '../preprocessing.js';
import type { Batch, BatchStreamState } from './batches.js';
import { DatasetError, normalizeInto } from './core.js';
import type { StreamedSet } from './folder_load.js';
import { mapConcurrent } from './folder_load.js';
import { mix32, permutation, Rng, STREAM } from './rng.js';

/** Images of one batch decoded at once; sharp queues beyond its thread pool. */
const IN_FLIGHT = 16;

export interface FolderStreamOptions {
  batch: number;
  seed: number;
  shuffle: boolean;
  dropLast: boolean;
  /** RandomResizedCrop + flip (preprocessing.augment) when true; the evaluation transform otherwise. */
  augment: boolean;
  preprocessing: Preprocessing;
}

function labelsHash(labels: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < labels.length; i++) h = Math.imul(h ^ labels[i], 0x01000193) >>> 0;
  return h >>> 0;
}

/** Decodes and transforms `paths` into `out` (planar, normalized): image i at i·C·H·W; `rngOf(i)` draws image i's RandomResizedCrop + flip. */
export async function decodeBatchInto(paths: string[], out: Float32Array, p: Preprocessing, rngOf: ((i: number) => Rng) | undefined): Promise<void> {
  const plane = p.inputShape[0] * p.inputShape[1] * p.inputShape[2];
  await mapConcurrent(paths, IN_FLIGHT, async (path, i) => {
    let image;
    try {
      image = await decodeImageFile(path);
    } catch (e) {
      // Every file decoded when the data set was loaded; one that fails now changed since.
      throw new DatasetError(`${(e as Error).message} (it decoded when the run started: was it replaced?); remove or replace it and resume`);
    }
    const x = rngOf ? randomResizedCropInput(image, p, rngOf(i)) : evalInput(image, p);
    out.set(x, i * plane);
  });
  normalizeInto(out, out, p.inputShape, p.mean, p.std, paths.length);
}

export class FolderBatchStream {
  private readonly n: number;
  private readonly plane: number;
  private readonly hash: number;
  /** Three buffers in turn: the batch handed out, the one before it (may still be uploading), the one being prepared. */
  private readonly buffers: Float32Array[];
  private readonly labelBuffers: Uint32Array[];
  private served = 0;
  private epoch = 0;
  private batchInEpoch = 0;
  private order: Uint32Array | undefined;
  private orderEpoch = -1;
  private prefetched: { epoch: number; batch: number; result: Promise<Batch> } | undefined;
  readonly options: FolderStreamOptions;

  constructor(readonly set: StreamedSet, options: FolderStreamOptions) {
    this.options = options;
    this.n = set.files.length;
    const [c, h, w] = options.preprocessing.inputShape;
    this.plane = c * h * w;
    if (!Number.isInteger(options.batch) || options.batch < 1) throw new DatasetError(`batches: batch must be a positive integer, got ${options.batch}`);
    if (this.n === 0) throw new DatasetError('batches: the folder split has no images');
    if (options.dropLast && options.batch > this.n) throw new DatasetError(`batches: batch ${options.batch} is larger than the ${this.n} images and dropLast is set`);
    this.hash = labelsHash(set.labels);
    const capacity = Math.min(options.batch, this.n);
    this.buffers = [0, 1, 2].map(() => new Float32Array(capacity * this.plane));
    this.labelBuffers = [0, 1, 2].map(() => new Uint32Array(capacity));
  }

  batchesPerEpoch(): number {
    return this.options.dropLast ? Math.floor(this.n / this.options.batch) : Math.ceil(this.n / this.options.batch);
  }

  private epochOrder(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch || !this.order) {
      this.order = this.options.shuffle ? permutation(this.n, new Rng(mix32(STREAM.epochOrder, this.options.seed, epoch))) : Uint32Array.from({ length: this.n }, (_, i) => i);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  private prepare(epoch: number, batchIndex: number): Promise<Batch> {
    const { batch, seed } = this.options;
    const order = this.epochOrder(epoch);
    const first = batchIndex * batch;
    const count = Math.min(batch, this.n - first);
    const slot = this.served++ % 3;
    const images = this.buffers[slot];
    const labels = this.labelBuffers[slot];
    const paths: string[] = [];
    for (let i = 0; i < count; i++) {
      paths.push(this.set.files[order[first + i]]);
      labels[i] = this.set.labels[order[first + i]];
    }
    const random = this.options.augment && this.options.preprocessing.augment === 'random-resized-crop';
    const rngOf = random ? (i: number) => new Rng(mix32(STREAM.augment, seed, epoch, batchIndex, i)) : undefined;
    return decodeBatchInto(paths, images, this.options.preprocessing, rngOf).then(() => ({
      images: images.subarray(0, count * this.plane), labels: labels.subarray(0, count), count, epoch, indexInEpoch: batchIndex,
    }));
  }

  /**
   * The next batch, or null once the epoch's batches are all served (the call after starts the next
   * epoch). Its arrays stay valid until next() has been called twice more. The batch after it is
   * started before this returns, so it decodes while the caller uses this one.
   */
  async next(): Promise<Batch | null> {
    if (this.batchInEpoch >= this.batchesPerEpoch()) {
      this.epoch++;
      this.batchInEpoch = 0;
      return null;
    }
    const [epoch, index] = [this.epoch, this.batchInEpoch];
    const ready = this.prefetched && this.prefetched.epoch === epoch && this.prefetched.batch === index ? this.prefetched.result : this.prepare(epoch, index);
    this.prefetched = undefined;
    this.batchInEpoch++;
    // The following batch: in this epoch, or the first of the next.
    const [e2, b2] = this.batchInEpoch < this.batchesPerEpoch() ? [epoch, this.batchInEpoch] : [epoch + 1, 0];
    const result = ready.then(() => {
      const following = this.prepare(e2, b2);
      following.catch(() => {}); // reported when that batch is asked for
      this.prefetched = { epoch: e2, batch: b2, result: following };
    });
    await result;
    return ready;
  }

  /** Same fields as BatchStream's state (dataset "folder"), so checkpoints read them alike. */
  state(): BatchStreamState {
    const o = this.options;
    const augment = o.augment && o.preprocessing.augment === 'random-resized-crop' ? { padding: 0, flip: true } : null;
    return {
      version: 1, dataset: 'folder', size: this.n, labelsHash: this.hash, batch: o.batch, seed: o.seed, shuffle: o.shuffle, augment,
      dropLast: o.dropLast, mean: [...o.preprocessing.mean], std: [...o.preprocessing.std], epoch: this.epoch, batchInEpoch: this.batchInEpoch,
    };
  }

  /** A stream that continues where the one that wrote `saved` stood; refuses another data set or order. */
  static restore(set: StreamedSet, options: FolderStreamOptions, saved: object): FolderBatchStream {
    const stream = new FolderBatchStream(set, options);
    const now = stream.state();
    const state = saved as Partial<BatchStreamState>;
    for (const k of ['dataset', 'size', 'labelsHash', 'batch', 'seed', 'shuffle', 'dropLast', 'mean', 'std'] as const) {
      if (JSON.stringify(state[k]) !== JSON.stringify(now[k])) throw new DatasetError(`batches: cannot resume: the saved stream had ${k} ${JSON.stringify(state[k])}, this one has ${JSON.stringify(now[k])}`);
    }
    const { epoch, batchInEpoch } = state;
    if (!Number.isInteger(epoch) || epoch! < 0 || !Number.isInteger(batchInEpoch) || batchInEpoch! < 0 || batchInEpoch! > stream.batchesPerEpoch()) {
      throw new DatasetError(`batches: cannot resume at epoch ${epoch}, batch ${batchInEpoch}`);
    }
    stream.epoch = epoch!;
    stream.batchInEpoch = batchInEpoch!;
    return stream;
  }
}

/** Evaluation batches of a streamed split, in order, normalized, the next one decoding while this one is used. */
export async function* streamedEvalBatches(set: StreamedSet, batch: number, p: Preprocessing): AsyncGenerator<{ images: Float32Array; labels: Uint32Array; count: number }> {
  const stream = new FolderBatchStream(set, { batch, seed: 0, shuffle: false, dropLast: false, augment: false, preprocessing: p });
  for (let b = await stream.next(); b; b = await stream.next()) yield b;
}
