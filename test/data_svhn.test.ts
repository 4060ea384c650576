// SVHN's .mat files: a small MAT-5 writer here (independent of src/train/data/mat5.ts) writes
// train/test/extra files in the distributed format, compressed (miCOMPRESSED, zlib) and not, with y
// stored as miDOUBLE and as miUINT8 (MATLAB's smaller-type storage); the loader must give the pixel
// of a pattern computed from (image, channel, row, column) at its NCHW place, label 10 as digit 0,
// and errors naming the file and the field. Also `train --dataset svhn` flag checks (no GPU) and a
// one-epoch run of a tiny model on such files, evaluated with `eval`.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { DatasetError, loadSvhn, readSvhnFile } from '../src/train/data/dataset.js';
import { loadDataset } from '../src/train/data/load.js';

const test = suite('data: svhn');
const dirs: string[] = [];
test.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'svhn-test-'));
  dirs.push(d);
  return d;
}

/** The pattern: the byte of (image i, channel ch, row r, column c); rows and columns weigh differently, so a transpose shows. */
const pixel = (id: number, ch: number, r: number, c: number) => (id * 13 + ch * 71 + r * 3 + c * 7) % 256;

// --- a MAT-5 writer (little-endian, as MATLAB on x86 writes) ---
const mi = { UINT8: 2, INT32: 5, UINT32: 6, DOUBLE: 9, MATRIX: 14, COMPRESSED: 15, INT8: 1 };
const cls = { double: 6, uint8: 9, char: 4 };

function tag(type: number, bytes: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(bytes, 4);
  return b;
}
const pad8 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
function sub(type: number, data: Buffer): Buffer {
  // Names of up to 4 bytes use the small-element form, as MATLAB writes them.
  if (data.length <= 4 && type === mi.INT8) {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(type, 0);
    b.writeUInt16LE(data.length, 2);
    data.copy(b, 4);
    return b;
  }
  return Buffer.concat([tag(type, data.length), pad8(data)]);
}
function matrix(name: string, classId: number, dims: number[], storeType: number, data: Buffer): Buffer {
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE(classId, 0);
  const dimBytes = Buffer.alloc(4 * dims.length);
  dims.forEach((d, i) => dimBytes.writeInt32LE(d, 4 * i));
  const body = Buffer.concat([sub(mi.UINT32, flags), sub(mi.INT32, dimBytes), sub(mi.INT8, Buffer.from(name, 'latin1')), sub(storeType, data)]);
  return Buffer.concat([tag(mi.MATRIX, body.length), body]);
}
function header(): Buffer {
  const h = Buffer.alloc(128, 0x20);
  h.write('MATLAB 5.0 MAT-file, written by the densenet-wgsl test', 0, 'latin1');
  h.writeUInt16LE(0x0100, 124);
  h.write('IM', 126, 'latin1');
  return h;
}
const compress = (element: Buffer) => { const z = deflateSync(element); return Buffer.concat([tag(mi.COMPRESSED, z.length), z]); };

interface FileSpec { first: number; labels: number[]; compressed?: boolean; yAsUint8?: boolean; dims?: number[]; skipX?: boolean; extraChar?: boolean }

function svhnFile(s: FileSpec): Buffer {
  const n = s.labels.length;
  const x = Buffer.alloc(n * 3072);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) for (let c = 0; c < 32; c++) for (let r = 0; r < 32; r++) {
    x[r + 32 * c + 1024 * ch + 3072 * i] = pixel(s.first + i, ch, r, c); // MATLAB column-major
  }
  let y: Buffer;
  if (s.yAsUint8) y = Buffer.from(s.labels);
  else { y = Buffer.alloc(8 * n); s.labels.forEach((l, i) => y.writeDoubleLE(l, 8 * i)); }
  const parts = [
    ...(s.extraChar ? [matrix('__note__', cls.char, [1, 2], mi.UINT8, Buffer.from('hi'))] : []),
    ...(s.skipX ? [] : [matrix('X', cls.uint8, s.dims ?? [32, 32, 3, n], mi.UINT8, x)]),
    matrix('y', cls.double, [n, 1], s.yAsUint8 ? mi.UINT8 : mi.DOUBLE, y),
  ];
  return Buffer.concat([header(), ...parts.map((p) => (s.compressed ? compress(p) : p))]);
}

function writeSvhn(dir: string, o: { compressed?: boolean } = {}): void {
  writeFileSync(join(dir, 'train_32x32.mat'), svhnFile({ first: 0, labels: [1, 10, 5, 3, 10, 9, 2, 7], compressed: o.compressed }));
  writeFileSync(join(dir, 'test_32x32.mat'), svhnFile({ first: 100, labels: [10, 4, 6, 8], compressed: o.compressed, yAsUint8: true }));
  writeFileSync(join(dir, 'extra_32x32.mat'), svhnFile({ first: 200, labels: [8, 10], compressed: !o.compressed }));
}

function checkPattern(images: Float32Array, index: number, id: number): void {
  for (let ch = 0; ch < 3; ch++) for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) {
    const got = images[index * 3072 + ch * 1024 + r * 32 + c];
    const want = pixel(id, ch, r, c) / 255;
    if (Math.abs(got - want) > 1e-7) assert.unreachable(`image ${index} (id ${id}) channel ${ch} row ${r} column ${c}: ${got}, expected ${want}`);
  }
}

for (const compressed of [false, true]) {
  test(`${compressed ? 'compressed' : 'uncompressed'} files: NCHW pixels in the pattern, label 10 → 0, stats from train`, async () => {
    const dir = tempDir();
    writeSvhn(dir, { compressed });
    const split = await loadSvhn(dir);
    assert.equal([...split.train.labels], [1, 0, 5, 3, 0, 9, 2, 7]);
    assert.equal([...split.test.labels], [0, 4, 6, 8]);
    assert.equal(split.train.shape, [3, 32, 32]);
    assert.equal(split.train.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (let i = 0; i < 8; i++) checkPattern(split.train.images, i, i);
    for (let i = 0; i < 4; i++) checkPattern(split.test.images, i, 100 + i);
    // The mean of channel 0 over the train images, from the pattern.
    let sum = 0;
    for (let i = 0; i < 8; i++) for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) sum += Math.fround(pixel(i, 0, r, c) / 255); // the loader stores float32
    assert.ok(Math.abs(split.mean[0] - sum / (8 * 1024)) < 1e-9, `mean ${split.mean[0]}`);
  });
}

test('--svhn-extra appends extra_32x32.mat to the training set; --limit cuts train and test as for CIFAR', async () => {
  const dir = tempDir();
  writeSvhn(dir);
  const split = await loadSvhn(dir, { extra: true });
  assert.equal([...split.train.labels], [1, 0, 5, 3, 0, 9, 2, 7, 8, 0]);
  checkPattern(split.train.images, 9, 201);
  const limited = await loadDataset('svhn', { dataDir: dir, seed: 0, limit: 4 });
  assert.is(limited.train.labels.length, 4);
  assert.is(limited.test.labels.length, 2); // round(4 · 4 / 8)
  checkPattern(limited.test.images, 1, 101);
});

async function refusal(fn: () => Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, DatasetError, String(e));
    for (const p of parts) assert.ok(typeof p === 'string' ? (e as Error).message.includes(p) : p.test((e as Error).message), `"${(e as Error).message}" lacks ${p}`);
    return;
  }
  assert.unreachable('no error');
}

test('bad files: errors name the file and the field', async () => {
  const dir = tempDir();
  const file = join(dir, 'f.mat');
  const put = (b: Buffer) => writeFileSync(file, b);
  put(svhnFile({ first: 0, labels: [1, 2], skipX: true, extraChar: true }));
  await refusal(() => readSvhnFile(file), file, 'no numeric variable "X"', 'y', '__note__ (char)');
  put(svhnFile({ first: 0, labels: [1, 2], dims: [32, 32, 6, 1] }));
  await refusal(() => readSvhnFile(file), file, 'X is 32x32x6x1', 'expected 32x32x3xN');
  put(svhnFile({ first: 0, labels: [1, 11] }));
  await refusal(() => readSvhnFile(file), file, 'y(2) is 11', '1..10');
  put(svhnFile({ first: 0, labels: [1, 2, 3] }).subarray(0, 2000));
  await refusal(() => readSvhnFile(file), file, 'truncated');
  put(svhnFile({ first: 0, labels: [1, 2, 3], compressed: true }).subarray(0, 600));
  await refusal(() => readSvhnFile(file), file, /truncated|does not decompress/);
  put(Buffer.from('not a mat file at all'));
  await refusal(() => readSvhnFile(file), file, 'header');
  const v73 = header();
  v73.write('MATLAB 7.3 MAT-file', 0, 'latin1');
  put(v73);
  await refusal(() => readSvhnFile(file), file, '7.3 (HDF5)');
  const missing = tempDir();
  writeFileSync(join(missing, 'train_32x32.mat'), svhnFile({ first: 0, labels: [1, 2] }));
  await refusal(() => loadSvhn(missing), 'test_32x32.mat not found', missing, 'ufldl.stanford.edu');
  await refusal(() => loadSvhn(missing, { extra: true }), 'extra_32x32.mat, test_32x32.mat not found');
  await refusal(() => loadSvhn(join(missing, 'nope')), 'does not exist');
});

test('train --dataset svhn: flag checks before any GPU work', () => {
  const dir = tempDir();
  writeSvhn(dir);
  const run = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'train', ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  let r = run('--dataset', 'svhn');
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, '--dataset svhn needs --data-dir DIR');
  r = run('--svhn-extra', '--out', join(dir, 'run'));
  assert.match(r.stderr, '--svhn-extra adds SVHN');
  r = run('--dataset', 'svhn', '--data-dir', dir, '--batch', '4', '--out', join(dir, 'run'));
  // The digits preset takes [1, 28, 28]: refused after the data is read, before the GPU.
  assert.match(r.stderr, 'takes images of [1, 28, 28] but svhn images are [3, 32, 32]', r.stderr + r.stdout);
  assert.not.match(r.stdout, 'adapter:');
});

test('a tiny model trains an epoch on SVHN files and its checkpoint evaluates on them (train, eval)', () => {
  const dir = tempDir();
  writeSvhn(dir, { compressed: true });
  const model = join(dir, 'svhn-tiny.json');
  writeFileSync(model, JSON.stringify({ name: 'svhn-tiny', blocks: [1, 1, 1], growthRate: 4, initialFeatures: 8, bottleneck: true, inputShape: [3, 32, 32] }));
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
  const out = join(dir, 'run');
  const r = spawnSync(process.execPath, ['dist/cli.js', 'train', '--model', model, '--dataset', 'svhn', '--data-dir', dir, '--svhn-extra', '--batch', '4', '--epochs', '1', '--out', out], { encoding: 'utf8', env });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, 'svhn: 10 train / 4 test images');
  const e = spawnSync(process.execPath, ['dist/cli.js', 'eval', '--checkpoint', join(out, 'last.ckpt'), '--batch', '4'], { encoding: 'utf8', env });
  assert.is(e.status, 0, e.stderr);
  assert.match(e.stdout, /svhn test set: 4 images, top-1 accuracy/);
});

test.run();
