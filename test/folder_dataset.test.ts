// Folder datasets without a GPU: ImageFolder's class and file order, the two layouts and their
// errors, the seeded stratified --val-split, unreadable files reported by name, the streamed batches
// (deterministic, resumable, RandomResizedCrop as torchvision draws it) and the loader's speed.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { compareCodePoints, scanFolderDataset, scanImageFolder, stratifiedSplit } from '../src/train/data/folder.js';
import { loadFolderData, type StreamedSplit } from '../src/train/data/folder_load.js';
import { FolderBatchStream } from '../src/train/data/folder_stream.js';
import { DatasetError } from '../src/train/data/core.js';
import { Rng } from '../src/train/data/rng.js';
import { preset, denseNetConfig } from '../src/models/index.js';
import { preprocessingOf, randomResizedCropBox } from '../src/train/preprocessing.js';
import { SHAPE_CLASSES, writeShapeFolder } from './folder_fixtures.js';
import { evaluateBatches } from '../src/train/evaluate.js';
import type { InferenceSession } from '../src/models/session.js';

const test = suite('folder_dataset');
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'folder-dataset-')); });
test.after(async () => { await rm(root, { recursive: true, force: true }); });

async function touch(path: string, bytes: Uint8Array | string = 'x'): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, bytes);
}

async function rejects(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, DatasetError, `${what}: a DatasetError (${(e as Error).message})`);
    assert.match((e as Error).message, pattern, `${what}: "${(e as Error).message}"`);
    return;
  }
  assert.unreachable(`${what}: expected an error matching ${pattern}`);
}

test('class names sort by code point as Python sorted() does; files in os.walk order, sub-folders included', async () => {
  // Python: sorted(['b', 'B', 'ab', 'a', '_', '10', '9', '\uffff', '\U0001F600']) == ['10', '9', 'B', '_', 'a', 'ab', 'b', '\uffff', '😀'];
  // JavaScript's default sort would put the emoji (surrogates D83D DE00) before U+FFFF.
  const names = ['b', 'B', 'ab', 'a', '_', '10', '9', '\uffff', '😀'];
  assert.equal([...names].sort(compareCodePoints), ['10', '9', 'B', '_', 'a', 'ab', 'b', '\uffff', '😀']);
  const dir = join(root, 'order');
  for (const c of names) await touch(join(dir, c, 'x.png'));
  await touch(join(dir, 'a', 'sub', 'b.jpg'));
  await touch(join(dir, 'a', 'Z.JPEG'));
  await touch(join(dir, 'a', 'notes.txt'));
  await touch(join(dir, 'stray.png')); // a file beside the class folders is not a class
  const folder = await scanImageFolder(dir);
  assert.equal(folder.classNames, ['10', '9', 'B', '_', 'a', 'ab', 'b', '\uffff', '😀']);
  const a = folder.files.filter((f) => f.label === 4).map((f) => f.path.slice(join(dir, 'a').length + 1));
  // os.walk: the folder's own files (sorted: 'Z.JPEG' < 'x.png'), then sub-folders' files.
  assert.equal(a, ['Z.JPEG', 'x.png', join('sub', 'b.jpg')]);
  assert.equal(folder.skipped.map((s) => s.path), [join(dir, 'a', 'notes.txt')]);
  assert.match(folder.skipped[0].reason, /not a JPEG, PNG or WebP file/);
});

test('layout errors name the folder and the fix', async () => {
  const empty = join(root, 'empty');
  await mkdir(empty);
  await touch(join(empty, 'loose.jpg'));
  await rejects(scanFolderDataset(empty, { valSplit: 0.1, seed: 0 }), /folder .*empty has no class folders \(it holds 1 images directly\): put each class's images in its own folder/, 'no classes');
  const noImages = join(root, 'noimages');
  await touch(join(noImages, 'cat', 'a.png'));
  await mkdir(join(noImages, 'dog'));
  await rejects(scanFolderDataset(noImages, { valSplit: 0.5, seed: 0 }), /class folder .*noimages\/dog has no images \(JPEG, PNG or WebP files\): add images to it or remove the folder/, 'empty class');
  await touch(join(noImages, 'dog', 'readme.txt'));
  await rejects(scanFolderDataset(noImages, { valSplit: 0.5, seed: 0 }), /noimages\/dog has no images .*only other files/, 'class of text files');
  await rejects(scanFolderDataset(join(root, 'nope'), { valSplit: 0.1, seed: 0 }), /folder .*nope: does not exist/, 'missing');
  const unsplit = join(root, 'unsplit');
  await touch(join(unsplit, 'cat', 'a.png'));
  await rejects(scanFolderDataset(unsplit, { seed: 0 }), /has no train\/ folder: give --val-split 0\.1/, 'no train/ and no --val-split');
  const half = join(root, 'half');
  await touch(join(half, 'train', 'cat', 'a.png'));
  await rejects(scanFolderDataset(half, { seed: 0 }), /has train\/ but no val\//, 'train/ without val/');
  await touch(join(half, 'val', 'dog', 'a.png'));
  await rejects(scanFolderDataset(half, { seed: 0 }), /must hold the same classes: val\/ lacks cat; train\/ lacks dog/, 'different classes');
  await rejects(scanFolderDataset(half, { seed: 0, valSplit: 0.1 }), /already split into train\/ and val\/; drop --val-split/, 'split twice');
});

test('--val-split is stratified per class and seeded', async () => {
  const dir = join(root, 'split');
  const counts = [10, 31, 4];
  for (const [c, n] of counts.entries()) for (let i = 0; i < n; i++) await touch(join(dir, `c${c}`, `${String(i).padStart(2, '0')}.png`));
  const folder = await scanImageFolder(dir);
  const a = stratifiedSplit(folder, 0.2, 7);
  // round(0.2·n) per class: 2, 6, 1 (at least 1, at most n − 1).
  assert.equal(counts.map((_, c) => a.val.filter((f) => f.label === c).length), [2, 6, 1]);
  assert.equal(a.train.length + a.val.length, 45);
  const key = (f: { path: string }) => f.path;
  assert.is(new Set([...a.train, ...a.val].map(key)).size, 45, 'disjoint, and together every file');
  assert.equal(stratifiedSplit(folder, 0.2, 7).val.map(key), a.val.map(key), 'same seed, same split');
  const b = stratifiedSplit(folder, 0.2, 8);
  assert.not.equal(b.val.map(key), a.val.map(key), 'another seed, another split');
  await touch(join(dir, 'c3', 'only.png'));
  const withSingle = await scanImageFolder(dir);
  assert.throws(() => stratifiedSplit(withSingle, 0.2, 7), /c3 has 1 image; --val-split needs at least 2 per class/);
});

test('unreadable files are reported by name with a count, and the rest is used', async () => {
  const dir = join(root, 'broken');
  await writeShapeFolder(join(dir, 'train'), 4, 1, 20);
  await writeShapeFolder(join(dir, 'val'), 2, 2, 20);
  const good = await readFile(join(dir, 'train', 'disc', 'disc-000.jpg'));
  await writeFile(join(dir, 'train', 'disc', 'cut.jpg'), good.subarray(0, good.length - 40)); // a copy that stopped early
  await writeFile(join(dir, 'train', 'square', 'notes.txt'), 'not a picture');
  await writeFile(join(dir, 'val', 'stripes', 'fake.png'), 'hello');
  const lines: string[] = [];
  const data = await loadFolderData({ dataDir: dir, seed: 0, augment: false }, preset('densenet-bc-tiny'), (l) => lines.push(l));
  const report = lines.join('\n');
  assert.match(report, /skipped 3 files that are not a readable JPEG, PNG or WebP image:/);
  assert.match(report, /train\/disc\/cut\.jpg: truncated JPEG/);
  assert.match(report, /train\/square\/notes\.txt: not a JPEG, PNG or WebP file by its name/);
  assert.match(report, /val\/stripes\/fake\.png: not a PNG, JPEG or WebP image/);
  assert.is(data.split.train.labels.length, 12);
  assert.is(data.split.test.labels.length, 6);
  assert.equal(data.split.train.classNames, [...SHAPE_CLASSES]);
  // The images kept are those of the same folder without the broken files, in order: the gap that
  // cut.jpg (first of its class) leaves in the held array is closed.
  const clean = join(root, 'clean');
  await writeShapeFolder(join(clean, 'train'), 4, 1, 20);
  await writeShapeFolder(join(clean, 'val'), 2, 2, 20);
  const expected = await loadFolderData({ dataDir: clean, seed: 0, augment: false }, preset('densenet-bc-tiny'), () => {});
  for (const part of ['train', 'test'] as const) {
    const [got, want] = [data.split[part], expected.split[part]] as { images: Float32Array; labels: Uint32Array }[];
    assert.equal([got.images.length, got.labels], [want.images.length, want.labels], part);
    assert.ok(got.images.every((v, i) => v === want.images[i]), `${part}: the held images differ from the clean folder's`);
  }
  // A gray model gets gray images at its size, normalized by the training set (ImageNet's are RGB).
  const gray = await loadFolderData({ dataDir: dir, seed: 0, augment: false }, preset('digits-tiny'), () => {});
  assert.equal([gray.split.train.shape, gray.preprocessing.normalize, gray.split.mean.length], [[1, 28, 28], 'dataset', 1]);
  assert.ok(gray.split.std[0] > 0.05, `std ${gray.split.std[0]}`);
  await rejects(loadFolderData({ dataDir: dir, seed: 0, augment: false, normalize: 'imagenet' }, preset('digits-tiny'), () => {}), /--normalize imagenet needs a model with 3 input channels; digits-tiny takes 1: use --normalize dataset/, 'imagenet stats on gray');
  // A class left without a readable image is an error naming it.
  const lost = join(root, 'lost');
  await writeShapeFolder(join(lost, 'train'), 2, 3, 20);
  await writeShapeFolder(join(lost, 'val'), 1, 4, 20);
  await writeFile(join(lost, 'val', 'square', 'square-000.jpg'), 'broken');
  await rejects(loadFolderData({ dataDir: lost, seed: 0, augment: false }, preset('densenet-bc-tiny'), () => {}), /no readable validation image is left in class square/, 'empty after skipping');
});

test('a folder too large to hold in memory is refused before decoding, with a --limit that fits', async () => {
  const dir = join(root, 'large');
  await writeShapeFolder(join(dir, 'train'), 6, 5, 20); // 18 training images, 3 classes
  await writeShapeFolder(join(dir, 'val'), 2, 6, 20); // 6 validation images
  const config = preset('densenet-bc-tiny'); // 3×16×16: 3,072 bytes an image
  const budget = 12 * 3072; // half of the 24 images
  let message = '';
  try {
    await loadFolderData({ dataDir: dir, seed: 0, augment: false, memoryBudgetBytes: budget }, config, () => {});
  } catch (e) {
    assert.instance(e, DatasetError);
    message = (e as Error).message;
  }
  assert.match(message, /its 24 images at 3×16×16 would take 0\.00 GiB in memory, more than the 0\.00 GiB it may/);
  const limit = Number(/use --limit (\d+) or less/.exec(message)?.[1]);
  assert.is(limit, 9, message); // 12 images fit; 18 of every 24 are training images
  const fits = await loadFolderData({ dataDir: dir, seed: 0, augment: false, memoryBudgetBytes: budget, limit }, config, () => {});
  assert.is(fits.split.train.labels.length + fits.split.test.labels.length, 12);
  // ImageNet-stem models hold nothing: the budget does not apply.
  const streamed = await loadFolderData({ dataDir: dir, seed: 0, augment: false, memoryBudgetBytes: 1 },
    denseNetConfig({ name: 'tiny-imagenet-stem', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, stem: 'imagenet', inputShape: [3, 48, 48], classes: 3 }), () => {});
  assert.ok(streamed.streamed);
});

test('RandomResizedCrop boxes follow torchvision: inside the image, area 8–100%, ratio 3/4–4/3; fallback centred', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 2000; i++) {
    const [left, top, w, h] = randomResizedCropBox(400, 300, rng);
    assert.ok(left >= 0 && top >= 0 && left + w <= 400 && top + h <= 300, `box ${[left, top, w, h]} inside 400×300`);
    const area = (w * h) / (400 * 300);
    assert.ok(area > 0.07 && area <= 1.01, `area ${area}`);
    assert.ok(w / h > 0.74 && w / h < 1.35, `ratio ${w / h}`);
  }
  // A 1×50 strip: no attempt fits, so the fallback takes the whole width, h = round(1 / (3/4)) = 1, centred.
  assert.equal(randomResizedCropBox(1, 50, new Rng(1)), [0, 24, 1, 1]);
});

test('streamed batches: deterministic, resumable, prefetched; the loader\'s images/s at 224', async () => {
  const dir = join(root, 'stream');
  await mkdir(join(dir, 'train', 'a'), { recursive: true });
  await mkdir(join(dir, 'train', 'b'), { recursive: true });
  await mkdir(join(dir, 'val', 'a'), { recursive: true });
  await mkdir(join(dir, 'val', 'b'), { recursive: true });
  // Photo-sized JPEGs (400×300) of smooth noise, so decoding and resizing cost what they would.
  const photo = async (seed: number) => {
    const raw = Buffer.alloc(400 * 300 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (Math.sin(i * 0.001 * seed) * 100 + 128 + ((i * seed) % 17)) & 255;
    return sharp(raw, { raw: { width: 400, height: 300, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  };
  for (let i = 0; i < 24; i++) await writeFile(join(dir, 'train', i % 2 ? 'a' : 'b', `${i}.jpg`), await photo(i + 1));
  for (let i = 0; i < 4; i++) await writeFile(join(dir, 'val', i % 2 ? 'a' : 'b', `${i}.jpg`), await photo(i + 50));
  const config = denseNetConfig({ name: 'imagenet-tiny', stem: 'imagenet', blocks: [1, 1, 1, 1], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5, inputShape: [3, 224, 224], classes: 2 });
  const data = await loadFolderData({ dataDir: dir, seed: 3, augment: true }, config, () => {});
  assert.ok(data.streamed, 'an ImageNet-stem model streams');
  assert.equal([data.preprocessing.resize, data.preprocessing.resizeTo, data.preprocessing.augment], ['shorter-crop', 256, 'random-resized-crop']);
  const split = data.split as StreamedSplit;
  const options = { batch: 8, seed: 3, shuffle: true, dropLast: true, augment: true, preprocessing: data.preprocessing };
  const a = new FolderBatchStream(split.train, options);
  const first = await a.next();
  assert.equal([first!.count, first!.images.length], [8, 8 * 3 * 224 * 224]);
  const firstCopy = Float32Array.from(first!.images);
  const saved = a.state();
  const second = Float32Array.from((await a.next())!.images);
  const resumed = FolderBatchStream.restore(split.train, options, saved);
  assert.equal(Array.from((await resumed.next())!.images), Array.from(second), 'a resumed stream continues bit for bit');
  const again = await new FolderBatchStream(split.train, options).next();
  assert.equal(Array.from(again!.images), Array.from(firstCopy), 'same seed, same batch');
  const other = await new FolderBatchStream(split.train, { ...options, seed: 4 }).next();
  assert.not.equal(Array.from(other!.images.subarray(0, 1000)), Array.from(firstCopy.subarray(0, 1000)), 'another seed, other crops');
  // The loader alone, a whole epoch at 224 (the number is printed for the notes, not asserted).
  const timed = new FolderBatchStream(split.train, options);
  const t0 = performance.now();
  let images = 0;
  for (let b = await timed.next(); b; b = await timed.next()) images += b.count;
  const seconds = (performance.now() - t0) / 1000;
  console.log(`folder loader: ${images} images of 400×300 JPEG → RandomResizedCrop 224 + flip in ${seconds.toFixed(2)} s: ${(images / seconds).toFixed(1)} images/s`);
});

test('evaluation counts top-1, top-5 (ties go to the lower index), per class and the confusion matrix', async () => {
  // 7 classes; each row's logits put the label at a chosen rank.
  const rows = [
    { label: 2, logits: [0, 1, 9, 2, 3, 4, 5] }, // rank 0: top-1
    { label: 0, logits: [5, 9, 8, 7, 6, 1, 0] }, // rank 4: top-5, not top-1
    { label: 5, logits: [9, 8, 7, 6, 5, 4, 0] }, // rank 5: neither
    { label: 6, logits: [9, 8, 7, 6, 3, 3, 3] }, // tied with 4 and 5, which come first: rank 6
    { label: 4, logits: [9, 8, 7, 6, 3, 3, 3] }, // tied, lowest index of the tie: rank 4
  ];
  const session = { batch: 2, run: async (input: Float32Array) => Float32Array.from(Array.from({ length: 2 }, (_, i) => rows[input[i]]?.logits ?? Array(7).fill(0)).flat()) } as unknown as InferenceSession;
  const batches = [[0, 1], [2, 3], [4]].map((ids) => ({ images: Float32Array.from(ids), labels: Uint32Array.from(ids.map((i) => rows[i].label)), count: ids.length }));
  const e = await evaluateBatches(session, 7, batches);
  assert.is(e.count, 5);
  assert.is(e.accuracy, 1 / 5);
  assert.is(e.top5, 3 / 5);
  assert.equal(e.perClass, [0, null, 1, null, 0, 0, 0]);
  assert.equal(e.confusion[0], [0, 1, 0, 0, 0, 0, 0]);
  assert.equal(e.confusion[2], [0, 0, 1, 0, 0, 0, 0]);
});

test('checkpoints from before preprocessing was recorded get what predict did then', () => {
  // An MNIST run's header of that time: mean/std/classNames, no preprocessing field.
  const digits = preprocessingOf({ options: { dataset: 'mnist', augment: false }, mean: [0.13], std: [0.31], classNames: ['0'] }, preset('digits-fast'));
  assert.equal(digits, { inputShape: [1, 28, 28], mean: [0.13], std: [0.31], normalize: 'dataset', resize: 'stretch', augment: 'none', invertLight: true });
  const cifar = preprocessingOf({ options: { dataset: 'cifar10', augment: true }, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] }, preset('densenet-bc-100-12'));
  assert.equal([cifar.inputShape, cifar.resize, cifar.augment, cifar.invertLight], [[3, 32, 32], 'stretch', 'crop-flip', false]);
  const recorded = { inputShape: [3, 224, 224], mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2], normalize: 'dataset', resize: 'shorter-crop', resizeTo: 256, augment: 'random-resized-crop' };
  assert.equal(preprocessingOf({ preprocessing: recorded, mean: [0], std: [1] }, preset('densenet121')), recorded, 'a recorded one is used as is');
});

test.run();
