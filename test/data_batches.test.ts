// BatchStream: each index once per epoch, new orders per epoch, evaluation order, augmentation padded
// in raw space, buffer lifetime, and exact resume from state() at every position.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchStream, cropFlipImage, DatasetError, normalize, type BatchStreamOptions, type Dataset } from '../src/train/data/dataset.js';
import { assertClose } from './helpers.js';

const test = suite('data: batches');
const SHAPE: [number, number, number] = [2, 5, 6]; // H ≠ W, and padding 4 never crops an image away entirely
const SIZE = 60;
const N = 23;
const MEAN = [0.4, 0.6];
const STD = [0.25, 0.5];

/** Label = index (23 classes), so a batch's labels say which images it holds; pixels unique and > 0. */
function dataset(n = N): Dataset {
  const images = Float32Array.from({ length: n * SIZE }, (_, i) => ((i * 37) % 97 + 1) / 100);
  return { name: 'cifar10', images, labels: Uint32Array.from({ length: n }, (_, i) => i), shape: SHAPE, classes: n, classNames: Array.from({ length: n }, (_, i) => `c${i}`) };
}

function options(over: Partial<BatchStreamOptions> = {}): BatchStreamOptions {
  return { batch: 5, seed: 42, shuffle: true, augment: false, dropLast: false, mean: MEAN, std: STD, ...over };
}

interface Copied { images: Float32Array; labels: number[]; epoch: number; indexInEpoch: number }
/** The next `calls` results of `next()`, copied (null marks an epoch end). */
function take(stream: BatchStream, calls: number): (Copied | null)[] {
  const out: (Copied | null)[] = [];
  for (let i = 0; i < calls; i++) {
    const b = stream.next();
    out.push(b && { images: b.images.slice(), labels: Array.from(b.labels), epoch: b.epoch, indexInEpoch: b.indexInEpoch });
  }
  return out;
}

function epochLabels(stream: BatchStream): number[][] {
  const batches: number[][] = [];
  for (let b = stream.next(); b; b = stream.next()) batches.push(Array.from(b.labels));
  return batches;
}

test('every index once per epoch, batches of 5 and a last one of 3, null at the end, new order each epoch', () => {
  const d = dataset();
  const stream = new BatchStream(d, options());
  assert.is(stream.batchesPerEpoch(), 5);
  const normalized = normalize(d.images, SHAPE, MEAN, STD);
  const orders: number[][] = [];
  for (let epoch = 0; epoch < 3; epoch++) {
    let index = 0;
    const labels: number[] = [];
    for (let b = stream.next(); b; b = stream.next()) {
      assert.is(b.epoch, epoch);
      assert.is(b.indexInEpoch, index++);
      assert.is(b.count, index < 5 ? 5 : 3);
      assert.is(b.images.length, b.count * SIZE);
      for (let i = 0; i < b.count; i++) {
        assertClose(b.images.subarray(i * SIZE, (i + 1) * SIZE), normalized.subarray(b.labels[i] * SIZE, (b.labels[i] + 1) * SIZE), { atol: 0, rtol: 0 }, `epoch ${epoch} batch ${b.indexInEpoch} image ${i}`);
      }
      labels.push(...b.labels);
    }
    assert.is(index, 5);
    assert.equal([...labels].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i), `epoch ${epoch} is a permutation`);
    orders.push(labels);
  }
  assert.not.equal(orders[0], orders[1]);
  assert.not.equal(orders[1], orders[2]);
  assert.not.equal(orders[0], Array.from({ length: N }, (_, i) => i), 'shuffled');
  // The seed decides the orders.
  assert.equal(epochLabels(new BatchStream(d, options())).flat(), orders[0]);
  assert.not.equal(epochLabels(new BatchStream(d, options({ seed: 43 }))).flat(), orders[0]);
});

test('dropLast: 4 full batches of distinct indices per epoch', () => {
  const stream = new BatchStream(dataset(), options({ dropLast: true }));
  assert.is(stream.batchesPerEpoch(), 4);
  for (let epoch = 0; epoch < 2; epoch++) {
    const batches = epochLabels(stream);
    assert.is(batches.length, 4);
    assert.ok(batches.every((b) => b.length === 5));
    assert.is(new Set(batches.flat()).size, 20);
  }
});

test('evaluation batches: dataset order, no augmentation, the last partial batch kept', () => {
  const d = dataset();
  const stream = new BatchStream(d, options({ shuffle: false, augment: false, dropLast: false, batch: 10 }));
  const batches = take(stream, 4);
  assert.equal(batches.map((b) => b?.labels.length ?? null), [10, 10, 3, null]);
  const all = new Float32Array(batches.flatMap((b) => (b ? Array.from(b.images) : [])));
  assertClose(all, normalize(d.images, SHAPE, MEAN, STD), { atol: 0, rtol: 0 }, 'all images, normalized, in order');
  assert.equal(batches.flatMap((b) => b?.labels ?? []), Array.from({ length: N }, (_, i) => i));
  assert.equal(take(stream, 3).map((b) => b?.labels[0]), [0, 10, 20], 'the next epoch has the same order');
});

test('augmented batches: each image a crop/flip of its own source, padded with 0 in RAW space', () => {
  const d = dataset();
  const stream = new BatchStream(d, options({ augment: true, batch: 8 }));
  const candidate = new Float32Array(SIZE);
  let changed = 0;
  const offsets = new Set<string>();
  for (let b = stream.next(); b; b = stream.next()) {
    for (let i = 0; i < b.count; i++) {
      const got = b.images.subarray(i * SIZE, (i + 1) * SIZE);
      const src = d.images.subarray(b.labels[i] * SIZE, (b.labels[i] + 1) * SIZE);
      const matches: string[] = [];
      for (let top = 0; top <= 8; top++) for (let left = 0; left <= 8; left++) for (const flip of [false, true]) {
        cropFlipImage(src, 0, candidate, 0, SHAPE, 4, top, left, flip);
        // Normalized after padding: a padded pixel becomes (0 − mean) / std.
        const z = normalize(candidate, SHAPE, MEAN, STD);
        if (z.every((v, k) => v === got[k])) matches.push(`${top},${left},${flip}`);
      }
      assert.ok(matches.length >= 1, `image ${b.labels[i]} is a crop/flip of its source`);
      if (!matches.includes('4,4,false')) changed++;
      offsets.add(matches[0]);
    }
  }
  assert.ok(changed >= 15, `${changed} of 23 images changed by augmentation`);
  assert.ok(offsets.size >= 10, `${offsets.size} distinct crops`);
});

test('a batch stays valid through one more next() (double buffering), then its buffer is reused', () => {
  const stream = new BatchStream(dataset(), options({ augment: true }));
  const first = stream.next()!;
  const copy = { images: first.images.slice(), labels: first.labels.slice() };
  const second = stream.next()!;
  assert.equal(first.images, copy.images);
  assert.equal(first.labels, copy.labels);
  assert.ok(first.images.buffer !== second.images.buffer);
  const third = stream.next()!;
  assert.ok(third.images.buffer === first.images.buffer);
});

function bitsOf(batches: (Copied | null)[]): unknown[] {
  return batches.map((b) => b && { ...b, images: Array.from(new Uint32Array(b.images.buffer, b.images.byteOffset, b.images.length)) });
}

for (const over of [{ augment: true, dropLast: true }, { augment: true, dropLast: false }, { augment: false, dropLast: true, shuffle: true }]) {
  test(`restore from state() after any number of calls continues bit for bit (${JSON.stringify(over)})`, () => {
    const d = dataset();
    const o = options(over);
    const perEpoch = new BatchStream(d, o).batchesPerEpoch() + 1; // calls per epoch, the null included
    const total = 3 * perEpoch;
    const reference = bitsOf(take(new BatchStream(d, o), total));
    assert.ok(reference.filter((b) => b === null).length === 3);
    for (let k = 0; k <= total - 3; k++) {
      const stream = new BatchStream(d, o);
      take(stream, k);
      const saved = JSON.parse(JSON.stringify(stream.state())) as object;
      const resumed = BatchStream.restore(d, o, saved);
      assert.equal(bitsOf(take(resumed, total - k)), reference.slice(k), `resumed after ${k} calls`);
    }
  });
}

test('state() is plain JSON of the position and what the stream was built with', () => {
  const stream = new BatchStream(dataset(), options({ augment: true }));
  take(stream, 7); // epoch 0 (5 batches), its null, epoch 1 batch 0
  const s = stream.state();
  assert.equal(JSON.parse(JSON.stringify(s)), s);
  assert.is(s.epoch, 1);
  assert.is(s.batchInEpoch, 1);
  assert.equal(s.augment, { padding: 4, flip: true });
});

test('restore refuses another data set, other options, a malformed state', () => {
  const d = dataset();
  const o = options({ augment: true });
  const stream = new BatchStream(d, o);
  take(stream, 2);
  const saved = stream.state();
  const refuses = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof DatasetError && pattern.test(e.message));
  refuses(() => BatchStream.restore(d, options({ augment: true, seed: 1 }), saved), /saved stream had seed 42, this one has 1/);
  refuses(() => BatchStream.restore(d, options({ augment: true, batch: 4 }), saved), /batch 5/);
  refuses(() => BatchStream.restore(d, options({ augment: false }), saved), /augment/);
  const relabelled = { ...dataset(), labels: Uint32Array.from({ length: N }, (_, i) => (i * 7) % N) };
  refuses(() => BatchStream.restore(relabelled, o, saved), /labelsHash/);
  refuses(() => BatchStream.restore(dataset(22), o, saved), /size 23, this one has 22/);
  refuses(() => BatchStream.restore(d, o, { ...saved, batchInEpoch: 9 }), /cannot resume at epoch 0, batch 9/);
  refuses(() => BatchStream.restore(d, o, { epoch: 1 }), /not a data stream state/);
});

test('bad options are refused up front', () => {
  const refuses = (over: Partial<BatchStreamOptions>, pattern: RegExp, d = dataset()) =>
    assert.throws(() => new BatchStream(d, options(over)), (e: unknown) => e instanceof DatasetError && pattern.test(e.message));
  refuses({ batch: 0 }, /batch must be a positive integer/);
  refuses({ batch: 24, dropLast: true }, /larger than cifar10's 23 images/);
  refuses({ mean: [0.5] }, /1 means and 2 stds/);
  refuses({ std: [1, 0] }, /std must be finite and > 0/);
  refuses({ seed: -3 }, /seed/);
  refuses({ augment: { padding: -1, flip: true } }, /padding/);
  refuses({}, /image 3 has label 30/, { ...dataset(), labels: Uint32Array.from({ length: N }, (_, i) => (i === 3 ? 30 : i)) });
  // Without dropLast a batch larger than the data set is one partial batch.
  const whole = new BatchStream(dataset(), options({ batch: 100 }));
  assert.equal(take(whole, 2).map((b) => b?.labels.length ?? null), [23, null]);
});

test.run();
