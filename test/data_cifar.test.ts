// CIFAR-10/100 binary loaders on small files written here in the real formats: labels, CHW pixel
// order, fine vs coarse labels, statistics, and every bad input raising DatasetError with its message.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR100_FINE_CLASS_NAMES, CIFAR10_CLASS_NAMES, DatasetError, loadCifar } from '../src/train/data/dataset.js';
import { assertClose } from './helpers.js';

const test = suite('data: cifar');
const PIXELS = 3072;
const dirs: string[] = [];
test.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cifar-test-'));
  dirs.push(d);
  return d;
}

/** Pixel byte k of the record with global id `id`: distinct across records and positions mod 251. */
function pixelByte(id: number, k: number): number {
  return (k * 31 + id * 17 + 3) % 251;
}

/** Records with the given label bytes each (1 for CIFAR-10, [coarse, fine] for CIFAR-100). */
function records(labelBytes: number[][], firstId: number): Buffer {
  const size = labelBytes[0].length + PIXELS;
  const buf = Buffer.alloc(labelBytes.length * size);
  labelBytes.forEach((labels, r) => {
    labels.forEach((l, j) => { buf[r * size + j] = l; });
    for (let k = 0; k < PIXELS; k++) buf[r * size + labels.length + k] = pixelByte(firstId + r, k);
  });
  return buf;
}

/** A CIFAR-10 dir: data_batch_b holds 4 records (labels (b·3 + r) % 10), test_batch 3. */
function writeCifar10(dir: string): void {
  for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), records([0, 1, 2, 3].map((r) => [((b - 1) * 3 + r) % 10]), (b - 1) * 4));
  writeFileSync(join(dir, 'test_batch.bin'), records([[9], [0], [5]], 100));
}

function throwsDataset(fn: () => Promise<unknown>, ...patterns: (string | RegExp)[]): Promise<void> {
  return fn().then(
    () => assert.unreachable('expected a DatasetError'),
    (e: unknown) => {
      assert.ok(e instanceof DatasetError, `expected a DatasetError, got ${String(e)}`);
      for (const p of patterns) {
        const ok = typeof p === 'string' ? e.message.includes(p) : p.test(e.message);
        assert.ok(ok, `message "${e.message}" should contain ${String(p)}`);
      }
    },
  );
}

test('CIFAR-10: records of every batch file in order, labels, pixels byte/255 in CHW order, statistics', async () => {
  const dir = tempDir();
  writeCifar10(dir);
  const split = await loadCifar('cifar10', dir, { anyRecordCount: true });
  const { train, test: testSet } = split;
  assert.is(train.labels.length, 20);
  assert.is(testSet.labels.length, 3);
  assert.is(train.name, 'cifar10');
  assert.equal(train.shape, [3, 32, 32]);
  assert.is(train.classes, 10);
  assert.equal(train.classNames, CIFAR10_CLASS_NAMES);
  assert.equal(Array.from(train.labels), [0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 0, 1, 2, 2, 3, 4, 5]);
  assert.equal(Array.from(testSet.labels), [9, 0, 5]);
  const expectedTrain = new Float32Array(20 * PIXELS);
  for (let i = 0; i < 20; i++) for (let k = 0; k < PIXELS; k++) expectedTrain[i * PIXELS + k] = pixelByte(i, k) / 255;
  assertClose(train.images, expectedTrain, { atol: 0, rtol: 0 }, 'train pixels');
  // CHW: image 6 (data_batch_2 record 2), green (c = 1), row 3, column 5 is byte 1 + 1024 + 3·32 + 5 of that record.
  assert.is(train.images[6 * PIXELS + 1 * 1024 + 3 * 32 + 5], Math.fround(pixelByte(6, 1024 + 3 * 32 + 5) / 255));
  assert.is(testSet.images[2 * PIXELS + 2 * 1024 + 31 * 32 + 31], Math.fround(pixelByte(102, PIXELS - 1) / 255));
  // mean/std per channel over the train split, from the bytes in float64.
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 20; i++) for (let k = c * 1024; k < (c + 1) * 1024; k++) sum += Math.fround(pixelByte(i, k) / 255);
    const mean = sum / (20 * 1024);
    for (let i = 0; i < 20; i++) for (let k = c * 1024; k < (c + 1) * 1024; k++) sq += (Math.fround(pixelByte(i, k) / 255) - mean) ** 2;
    assertClose([split.mean[c], split.std[c]], [mean, Math.sqrt(sq / (20 * 1024))], { atol: 1e-12, rtol: 1e-12 }, `channel ${c} statistics`);
  }
});

test('CIFAR-100: the FINE label (second byte) is used, 100 classes, standard fine names', async () => {
  const dir = tempDir();
  const trainLabels = [[0, 99], [19, 0], [4, 57], [11, 13], [7, 7], [18, 42]];
  writeFileSync(join(dir, 'train.bin'), records(trainLabels, 0));
  writeFileSync(join(dir, 'test.bin'), records([[3, 1], [5, 98]], 50));
  const { train, test: testSet } = await loadCifar('cifar100', dir, { anyRecordCount: true });
  assert.is(train.name, 'cifar100');
  assert.equal(Array.from(train.labels), trainLabels.map(([, fine]) => fine));
  assert.equal(Array.from(testSet.labels), [1, 98]);
  assert.is(train.classes, 100);
  assert.is(train.classNames.length, 100);
  assert.equal(train.classNames, CIFAR100_FINE_CLASS_NAMES);
  // The standard order of fine_label_names.txt is alphabetical, without duplicates.
  assert.equal([...CIFAR100_FINE_CLASS_NAMES].sort(), CIFAR100_FINE_CLASS_NAMES);
  assert.is(new Set(CIFAR100_FINE_CLASS_NAMES).size, 100);
  assert.equal([train.classNames[0], train.classNames[19], train.classNames[39], train.classNames[99]], ['apple', 'cattle', 'keyboard', 'worm']);
  // Pixels start after the two label bytes.
  assert.is(train.images[3 * PIXELS], Math.fround(pixelByte(3, 0) / 255));
  assert.is(testSet.images[PIXELS + 2 * 1024 + 7], Math.fround(pixelByte(51, 2 * 1024 + 7) / 255));
});

test('by default every file must hold the official record count', async () => {
  const dir = tempDir();
  writeCifar10(dir);
  await throwsDataset(() => loadCifar('cifar10', dir), join(dir, 'data_batch_1.bin'), '12292 bytes (4 records)', 'expected 30730000 bytes: 10000 records of 3073');
  const dir100 = tempDir();
  writeFileSync(join(dir100, 'train.bin'), records([[1, 2]], 0));
  writeFileSync(join(dir100, 'test.bin'), records([[1, 2]], 0));
  await throwsDataset(() => loadCifar('cifar100', dir100), join(dir100, 'train.bin'), '3074 bytes (1 record)', 'expected 153700000 bytes: 50000 records of 3074');
});

test('missing directory, a file instead of a directory, missing files', async () => {
  const dir = tempDir();
  await throwsDataset(() => loadCifar('cifar10', join(dir, 'nope')), `--data-dir ${join(dir, 'nope')} does not exist`);
  writeFileSync(join(dir, 'plain'), 'x');
  await throwsDataset(() => loadCifar('cifar10', join(dir, 'plain')), 'is not a directory');
  writeCifar10(dir);
  unlinkSync(join(dir, 'data_batch_3.bin'));
  unlinkSync(join(dir, 'test_batch.bin'));
  await throwsDataset(() => loadCifar('cifar10', dir, { anyRecordCount: true }),
    `data_batch_3.bin, test_batch.bin not found in ${dir}`, 'https://www.cs.toronto.edu/~kriz/cifar.html', 'binary version', `are directly in ${dir}`);
  // The tarball's own folder is recognized.
  const parent = tempDir();
  mkdirSync(join(parent, 'cifar-10-batches-bin'));
  await throwsDataset(() => loadCifar('cifar10', parent), `pass --data-dir ${join(parent, 'cifar-10-batches-bin')}`);
  // CIFAR-100 asked of a CIFAR-10 directory.
  const ten = tempDir();
  writeCifar10(ten);
  await throwsDataset(() => loadCifar('cifar100', ten), 'train.bin, test.bin not found', 'is this CIFAR-10?', 'CIFAR-100 binary version');
});

test('a truncated file: its name, its size and the expected size', async () => {
  const dir = tempDir();
  writeCifar10(dir);
  truncateSync(join(dir, 'test_batch.bin'), 3 * 3073 - 100);
  await throwsDataset(() => loadCifar('cifar10', dir, { anyRecordCount: true }),
    `${join(dir, 'test_batch.bin')} is 9119 bytes, not a whole non-zero number of 3073-byte records`, 'expected 30730000 bytes');
  writeFileSync(join(dir, 'test_batch.bin'), Buffer.alloc(0));
  await throwsDataset(() => loadCifar('cifar10', dir, { anyRecordCount: true }), 'test_batch.bin is 0 bytes');
});

test('a label out of range: file and record index', async () => {
  const dir = tempDir();
  writeCifar10(dir);
  const bad = records([[1], [2], [10], [3]], 0);
  writeFileSync(join(dir, 'data_batch_4.bin'), bad);
  await throwsDataset(() => loadCifar('cifar10', dir, { anyRecordCount: true }), `${join(dir, 'data_batch_4.bin')} record 2 has label 10, expected 0..9`);
  const dir100 = tempDir();
  writeFileSync(join(dir100, 'train.bin'), records([[1, 2], [3, 4]], 0));
  writeFileSync(join(dir100, 'test.bin'), records([[1, 2], [3, 100]], 0));
  await throwsDataset(() => loadCifar('cifar100', dir100, { anyRecordCount: true }), `${join(dir100, 'test.bin')} record 1 has fine label 100, expected 0..99`);
  writeFileSync(join(dir100, 'test.bin'), records([[20, 2]], 0));
  await throwsDataset(() => loadCifar('cifar100', dir100, { anyRecordCount: true }), 'record 0 has coarse label 20, expected 0..19');
});

test.run();
