// Crop-with-padding and flip on hand-made images, the seeded draws of augmentBatch, per-channel
// statistics and normalization.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { augmentBatch, channelStats, cropFlipImage, DatasetError, normalize, Rng } from '../src/train/data/dataset.js';
import { assertClose, randomArray } from './helpers.js';

const test = suite('data: augment and normalize');
const exact = { atol: 0, rtol: 0 };

/** 2 channels, 3 rows, 4 columns: value 100c + 10y + x + 1 (never 0, so a 0 is padding). */
const SHAPE: [number, number, number] = [2, 3, 4];
const IMAGE = Float32Array.from({ length: 24 }, (_, i) => 100 * Math.floor(i / 12) + 10 * Math.floor((i % 12) / 4) + (i % 4) + 1);

function crop(top: number, left: number, flip: boolean, padding = 4): number[] {
  const out = new Float32Array(24).fill(-1);
  cropFlipImage(IMAGE, 0, out, 0, SHAPE, padding, top, left, flip);
  return Array.from(out);
}

test('crop with padding 4: hand-computed pixels, zeros outside the image', () => {
  // top 5, left 2 with padding 4: out[y][x] = src[y + 1][x − 2].
  assert.equal(crop(5, 2, false), [
    0, 0, 11, 12, /**/ 0, 0, 21, 22, /**/ 0, 0, 0, 0,
    0, 0, 111, 112, /**/ 0, 0, 121, 122, /**/ 0, 0, 0, 0,
  ]);
  // top 2, left 7: out[y][x] = src[y − 2][x + 3].
  assert.equal(crop(2, 7, false), [
    0, 0, 0, 0, /**/ 0, 0, 0, 0, /**/ 4, 0, 0, 0,
    0, 0, 0, 0, /**/ 0, 0, 0, 0, /**/ 104, 0, 0, 0,
  ]);
  // The centre crop (top = left = padding) is the image itself.
  assert.equal(crop(4, 4, false), Array.from(IMAGE));
  // Padding 1, crop (0, 0): shifted down and right by one.
  assert.equal(crop(0, 0, false, 1), [
    0, 0, 0, 0, /**/ 0, 1, 2, 3, /**/ 0, 11, 12, 13,
    0, 0, 0, 0, /**/ 0, 101, 102, 103, /**/ 0, 111, 112, 113,
  ]);
});

test('flip mirrors the crop left to right', () => {
  // The crop (5, 2) above, mirrored row by row.
  assert.equal(crop(5, 2, true), [
    12, 11, 0, 0, /**/ 22, 21, 0, 0, /**/ 0, 0, 0, 0,
    112, 111, 0, 0, /**/ 122, 121, 0, 0, /**/ 0, 0, 0, 0,
  ]);
  assert.equal(crop(4, 4, true), [
    4, 3, 2, 1, /**/ 14, 13, 12, 11, /**/ 24, 23, 22, 21,
    104, 103, 102, 101, /**/ 114, 113, 112, 111, /**/ 124, 123, 122, 121,
  ]);
  for (let top = 0; top <= 8; top++) {
    for (let left = 0; left <= 8; left++) {
      const a = crop(top, left, true);
      const b = crop(top, left, false);
      for (let r = 0; r < 6; r++) assert.equal(a.slice(r * 4, r * 4 + 4), b.slice(r * 4, r * 4 + 4).reverse(), `crop (${top}, ${left}) row ${r}`);
    }
  }
});

/** Recovers (top, left, flip) such that out is that crop of src; asserts there is exactly one. */
function recover(src: Float32Array, out: Float32Array, shape: [number, number, number], padding: number): [number, number, boolean] {
  const found: [number, number, boolean][] = [];
  const candidate = new Float32Array(out.length);
  for (let top = 0; top <= 2 * padding; top++) {
    for (let left = 0; left <= 2 * padding; left++) {
      for (const flip of [false, true]) {
        cropFlipImage(src, 0, candidate, 0, shape, padding, top, left, flip);
        if (candidate.every((v, i) => v === out[i])) found.push([top, left, flip]);
      }
    }
  }
  assert.is(found.length, 1, `exactly one crop matches (${JSON.stringify(found)})`);
  return found[0];
}

test('augmentBatch draws top, left, flip per image from the rng, reproducibly, uniformly', () => {
  const shape: [number, number, number] = [1, 5, 6];
  const size = 30;
  const count = 1500;
  const src = new Float32Array(count * size);
  for (let i = 0; i < count; i++) for (let k = 0; k < size; k++) src[i * size + k] = (k + 1) / 64 + i; // unique, never 0
  const out = new Float32Array(count * size);
  const rng = new Rng(12345);
  augmentBatch(src, out, shape, count, rng, { padding: 4, flip: true });
  const again = new Float32Array(count * size);
  augmentBatch(src, again, shape, count, new Rng(12345), { padding: 4, flip: true });
  assert.equal(again, out, 'the same rng state gives the same batch');
  const other = new Float32Array(count * size);
  augmentBatch(src, other, shape, count, new Rng(54321), { padding: 4, flip: true });
  assert.not.equal(other, out, 'another state, another batch');

  const draws = new Rng(12345); // the documented order: top, left, flip
  const seen = new Map<string, number>();
  let flips = 0;
  for (let i = 0; i < count; i++) {
    const got = recover(src.subarray(i * size, (i + 1) * size), out.subarray(i * size, (i + 1) * size), shape, 4);
    const expected = [draws.below(9), draws.below(9), draws.next() < 0.5];
    assert.equal(got, expected, `image ${i}`);
    seen.set(`${got[0]},${got[1]}`, (seen.get(`${got[0]},${got[1]}`) ?? 0) + 1);
    if (got[2]) flips++;
  }
  assert.is(rng.state, draws.state, 'three draws per image');
  assert.is(seen.size, 81, 'every crop offset occurs');
  for (const [k, n] of seen) assert.ok(n >= 5 && n <= 40, `offset ${k} drawn ${n} times of ${count} (expected ~18.5)`);
  assert.ok(flips > 0.45 * count && flips < 0.55 * count, `${flips} flips of ${count}`);
});

test('augmentBatch without flip never mirrors; bad arguments are refused', () => {
  const shape: [number, number, number] = [1, 4, 4];
  const src = Float32Array.from({ length: 16 * 50 }, (_, i) => i + 1);
  const out = new Float32Array(src.length);
  augmentBatch(src, out, shape, 50, new Rng(1), { padding: 2, flip: false });
  for (let i = 0; i < 50; i++) assert.is(recover(src.subarray(i * 16, (i + 1) * 16), out.subarray(i * 16, (i + 1) * 16), shape, 2)[2], false);
  assert.throws(() => augmentBatch(src, src, shape, 1, new Rng(1)), (e: unknown) => e instanceof DatasetError && /share a buffer/.test(e.message));
  assert.throws(() => augmentBatch(src, new Float32Array(16), shape, 2, new Rng(1)), (e: unknown) => e instanceof DatasetError);
});

test('Rng: mulberry32 with its whole state in one u32', () => {
  const a = new Rng(99);
  const first = [a.nextU32(), a.nextU32(), a.nextU32()];
  const b = new Rng(0);
  b.state = new Rng(99).state;
  assert.equal([b.nextU32(), b.nextU32(), b.nextU32()], first);
  const c = new Rng(99);
  c.nextU32();
  const d = new Rng(0);
  d.state = c.state; // resume mid-stream
  assert.equal([d.nextU32(), d.nextU32()], first.slice(1));
  assert.ok(first.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32));
});

test('normalize: (x − mean[c]) / std[c] per channel, into a new array', () => {
  const shape: [number, number, number] = [3, 2, 5];
  const n = 4;
  const images = randomArray(n * 30, 11, 1).map((v) => (v + 1) / 2);
  const keep = images.slice();
  const mean = [0.1, 0.5, -0.25];
  const std = [0.2, 2, 0.7];
  const got = normalize(images, shape, mean, std);
  const expected = new Float64Array(images.length);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) for (let k = 0; k < 10; k++) {
    const at = i * 30 + c * 10 + k;
    expected[at] = Math.fround((images[at] - mean[c]) / std[c]); // float64, rounded once
  }
  assertClose(got, expected, exact, 'normalize');
  assert.equal(images, keep, 'input untouched');
  assert.throws(() => normalize(images, shape, [0, 0], [1, 1]), (e: unknown) => e instanceof DatasetError && /2 means and 2 stds for 3 channels/.test(e.message));
  assert.throws(() => normalize(images, shape, mean, [1, 0, 1]), (e: unknown) => e instanceof DatasetError && /channel 1/.test(e.message));
  assert.throws(() => normalize(images.subarray(1), shape, mean, std), (e: unknown) => e instanceof DatasetError);
});

test('channelStats: per-channel mean and population std; normalizing by them gives 0 and 1', () => {
  const shape: [number, number, number] = [2, 3, 3];
  const images = randomArray(7 * 18, 5, 1).map((v, i) => (Math.floor(i / 9) % 2 === 0 ? 0.3 + 0.1 * v : 0.6 + 0.3 * v));
  const { mean, std } = channelStats(images, shape);
  for (let c = 0; c < 2; c++) {
    const values: number[] = [];
    for (let i = 0; i < 7; i++) for (let k = 0; k < 9; k++) values.push(images[i * 18 + c * 9 + k]);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    const s = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length);
    assertClose([mean[c], std[c]], [m, s], { atol: 1e-15, rtol: 1e-12 }, `channel ${c}`);
  }
  assert.ok(Math.abs(mean[0] - 0.3) < 0.05 && Math.abs(mean[1] - 0.6) < 0.15, `means ${mean}`);
  const z = normalize(images, shape, mean, std);
  const after = channelStats(z, shape);
  assertClose([...after.mean, ...after.std], [0, 0, 1, 1], { atol: 1e-6, rtol: 0 }, 'normalized statistics');
});

test.run();
