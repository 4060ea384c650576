// Your own images end to end, as a user runs the CLI: a generated image folder (three classes, JPEG
// and PNG) trains a small model to ≥ 95% validation accuracy; eval reports top-1/top-5, per-class
// accuracy and the confusion matrix (and --json, never over an existing file without --overwrite);
// predict prints class names, also from a checkpoint written before preprocessing was recorded;
// --val-split and the streamed (ImageNet-stem) path train; ImageNet weights are evaluated on a
// wnid/class-named val folder; bad folders are refused before any GPU work.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/train/checkpoint.js';
import { preprocessingOf } from '../src/train/preprocessing.js';
import { readMetrics } from '../src/train/metrics.js';
import { denseNetConfig, describeDenseNet } from '../src/models/index.js';
import { exportTorchvisionWeights } from '../src/io/torchvision.js';
import { seededRandom } from './helpers.js';
import { writeShapeFolder } from './folder_fixtures.js';

const test = suite('folder_train');
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'folder-train-')); });
test.after(async () => { await rm(root, { recursive: true, force: true }); });

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const data = () => join(root, 'shapes');
const run = () => join(root, 'run');

test('trains a small model on a generated folder to >= 95% validation accuracy', async () => {
  await writeShapeFolder(join(data(), 'train'), 80, 1);
  await writeShapeFolder(join(data(), 'val'), 20, 2);
  await writeFile(join(data(), 'train', 'disc', 'notes.txt'), 'a note among the images');
  const r = cli('train', '--dataset', 'folder', '--data-dir', data(), '--model', 'densenet-bc-tiny', '--epochs', '3', '--batch', '16', '--lr', '0.05', '--out', run());
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /skipped 1 file that is not a readable JPEG, PNG or WebP image:\n  .*train\/disc\/notes\.txt: not a JPEG, PNG or WebP file by its name/);
  assert.match(r.out, /3 classes, 240 training and 60 validation images; normalized with ImageNet's mean \[0\.4850, 0\.4560, 0\.4060\]/);
  const summary = JSON.parse(await readFile(join(run(), 'summary.json'), 'utf8'));
  assert.ok(summary.bestTestAccuracy >= 0.95, `best validation accuracy ${summary.bestTestAccuracy}`);
  const header = (await readCheckpoint(join(run(), 'best.ckpt'))).header;
  assert.equal(header.classNames, ['disc', 'square', 'stripes']);
  const pre = header.preprocessing as Record<string, unknown>;
  assert.equal([pre.inputShape, pre.mean, pre.std, pre.normalize, pre.resize], [[3, 16, 16], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 'imagenet', 'stretch']);
});

test('eval: top-1, top-5, per-class, confusion matrix and --json (an existing file only with --overwrite)', async () => {
  const json = join(root, 'eval.json');
  const e = cli('eval', '--checkpoint', join(run(), 'best.ckpt'), '--json', json);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /validation images of .*: 60 images, top-1 accuracy \d+\.\d+%, top-5 accuracy 100\.00%/);
  assert.match(e.out, /per-class accuracy:\n  disc +\d+\.\d+% \(\d+\/20\)\n  square/);
  assert.match(e.out, /truth\\pred +disc +square +stripe/);
  const result = JSON.parse(await readFile(json, 'utf8'));
  assert.ok(result.top1 >= 0.95, `top-1 ${result.top1}`);
  assert.is(result.top5, 1, 'three classes: always within the top 5');
  assert.equal(result.perClass.map((c: { name: string; images: number }) => [c.name, c.images]), [['disc', 20], ['square', 20], ['stripes', 20]]);
  const diagonal = result.confusion.reduce((s: number, row: number[], i: number) => s + row[i], 0);
  assert.is(diagonal / 60, result.top1, 'top-1 is the confusion matrix diagonal');
  const again = cli('eval', '--checkpoint', join(run(), 'best.ckpt'), '--json', json);
  assert.is(again.code, 2);
  assert.match(again.err, /eval: --json .*eval\.json already exists .*give --overwrite to replace it, or another --json/);
  assert.equal(JSON.parse(await readFile(json, 'utf8')), result, 'the refused file is untouched');
  const replaced = cli('eval', '--checkpoint', join(run(), 'best.ckpt'), '--json', json, '--overwrite', '--data-dir', join(data(), 'train'));
  assert.is(replaced.code, 0, replaced.err);
  assert.is(JSON.parse(await readFile(json, 'utf8')).images, 240, '--data-dir DIR/<class>/ evaluates that folder');
});

test('predict prints class names; a checkpoint without recorded preprocessing still predicts', async () => {
  const files = [join(data(), 'val', 'disc', 'disc-000.jpg'), join(data(), 'val', 'stripes', 'stripes-001.png'), join(data(), 'val', 'square', 'square-002.jpg')];
  const p = cli('predict', '--checkpoint', join(run(), 'best.ckpt'), ...files);
  assert.is(p.code, 0, p.err);
  const top = (out: string) => files.map((f) => new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+) `).exec(out)?.[1]);
  assert.equal(top(p.out), ['disc', 'stripes', 'square']);
  // An older checkpoint: the same file without the preprocessing field (mean/std/classNames were there before).
  const old = await readCheckpoint(join(run(), 'best.ckpt'));
  delete old.header.preprocessing;
  const oldPath = join(root, 'old.ckpt');
  await writeCheckpoint(oldPath, old);
  const fallback = preprocessingOf(old.header, old.header.config as never);
  assert.equal([fallback.resize, fallback.normalize, fallback.mean], ['stretch', 'dataset', [0.485, 0.456, 0.406]]);
  const q = cli('predict', '--checkpoint', oldPath, ...files);
  assert.is(q.code, 0, q.err);
  assert.equal(top(q.out), ['disc', 'stripes', 'square']);
});

test('--val-split trains on DIR/<class>/ and eval draws the same validation images again', async () => {
  const out = join(root, 'split-run');
  const r = cli('train', '--dataset', 'folder', '--data-dir', join(data(), 'train'), '--val-split', '0.25', '--model', 'densenet-bc-tiny',
    '--epochs', '1', '--batch', '16', '--normalize', 'dataset', '--out', out);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /--val-split 0\.25 of .*train \(seed 0\): 3 classes, 180 training and 60 validation images; normalized with the training set's mean/);
  const testLoss = (await readMetrics(join(out, 'metrics.jsonl'))).filter((m) => m.type === 'epoch').at(-1)!.testLoss as number;
  const e = cli('eval', '--checkpoint', join(out, 'last.ckpt'));
  assert.is(e.code, 0, e.err);
  const loss = Number(/60 images, .* loss (\d+\.\d+)/.exec(e.out)?.[1]);
  assert.ok(Math.abs(loss - testLoss) < 1e-3, `eval loss ${loss} vs the run's last test loss ${testLoss}`);
});

test('bad folders are refused before any GPU work, naming the folder', async () => {
  const none = join(root, 'no-classes');
  await mkdir(none);
  const a = cli('train', '--dataset', 'folder', '--data-dir', none, '--val-split', '0.1', '--model', 'densenet-bc-tiny', '--out', join(root, 'never'));
  assert.is(a.code, 1);
  assert.match(a.err, /folder .*no-classes has no class folders: put each class's images in its own folder/);
  assert.not.match(a.out, /adapter:/, 'no device was opened');
  const emptyClass = join(root, 'empty-class');
  await writeShapeFolder(emptyClass, 3, 9);
  await mkdir(join(emptyClass, 'void'));
  const b = cli('train', '--dataset', 'folder', '--data-dir', emptyClass, '--val-split', '0.3', '--model', 'densenet-bc-tiny', '--out', join(root, 'never'));
  assert.is(b.code, 1);
  assert.match(b.err, /class folder .*empty-class\/void has no images \(JPEG, PNG or WebP files\): add images to it or remove the folder/);
  const corrupt = join(root, 'corrupt');
  await writeShapeFolder(corrupt, 4, 10);
  const jpg = await readFile(join(corrupt, 'disc', 'disc-000.jpg'));
  const damaged = Buffer.from(jpg);
  damaged[3] = 0x02; // the marker after SOI becomes an unknown one
  await writeFile(join(corrupt, 'disc', 'damaged.jpg'), damaged);
  const c = cli('train', '--dataset', 'folder', '--data-dir', corrupt, '--val-split', '0.5', '--model', 'densenet-bc-tiny', '--batch', '4', '--epochs', '1', '--out', join(root, 'corrupt-run'));
  assert.is(c.code, 0, c.err);
  assert.match(c.out, /skipped 1 file .*:\n  .*corrupt\/disc\/damaged\.jpg: corrupt JPEG/);
});

test('an ImageNet-stem model streams its folder; ImageNet weights are evaluated on a wnid/class-named val folder', async () => {
  const tiny = { stem: 'imagenet', blocks: [1, 1, 1, 1], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5, inputShape: [3, 32, 32] };
  const tinyFile = join(root, 'imagenet-tiny.json');
  await writeFile(tinyFile, JSON.stringify({ ...tiny, classes: 10 }));
  const out = join(root, 'stream-run');
  const r = cli('train', '--dataset', 'folder', '--data-dir', data(), '--model', tinyFile, '--epochs', '1', '--batch', '16', '--out', out);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /decoded per batch \(RandomResizedCrop \+ flip; evaluation: resize 37, centre crop 32\)/);
  const e = cli('eval', '--checkpoint', join(out, 'last.ckpt'));
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /60 images, top-1 accuracy/);

  // 1,000-class weights whose classifier always says "goldfish" (index 1, wnid n01443537).
  const config = denseNetConfig({ name: 'imagenet-tiny-1000', ...tiny, classes: 1000 } as never);
  const rng = seededRandom(4);
  const tensors = new Map(describeDenseNet(config).parameters.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const fill = p.name.endsWith('running_var') || (p.kind === 'bn-weight') ? () => 1 : p.name.endsWith('running_mean') || p.kind === 'bn-bias' ? () => 0 : () => (rng() - 0.5) * 0.2;
    const values = Float32Array.from({ length: n }, fill);
    if (p.name === 'classifier.bias') values[1] = 100;
    return [p.name, values];
  }));
  const weights = join(root, 'tiny1000.safetensors');
  await exportTorchvisionWeights({ header: { config }, tensors }, weights);
  const valdir = join(root, 'imagenet-val');
  await writeShapeFolder(join(root, 'pics'), 3, 11);
  const copies: [string, string][] = [['n01443537', 'disc-000.jpg'], ['n01443537', 'disc-001.png'], ['n01443537', 'disc-002.jpg'], ['tench', 'square-000.jpg'], ['tench', 'square-001.png'], ['great_white_shark', 'stripes-000.jpg']];
  for (const [cls, file] of copies) {
    await mkdir(join(valdir, 'val', cls), { recursive: true });
    await writeFile(join(valdir, 'val', cls, file), await readFile(join(root, 'pics', file.split('-')[0], file)));
  }
  const json = join(root, 'imagenet.json');
  await writeFile(join(root, 'imagenet-tiny-1000.json'), JSON.stringify({ name: 'imagenet-tiny-1000', ...tiny, classes: 1000 }));
  const v = cli('eval', '--weights', weights, '--model', join(root, 'imagenet-tiny-1000.json'), '--data-dir', valdir, '--json', json);
  assert.is(v.code, 0, v.err);
  assert.match(v.out, /6 images, top-1 accuracy 50\.00%/);
  const result = JSON.parse(await readFile(json, 'utf8'));
  assert.equal([result.perClass[1].name, result.perClass[1].images, result.perClass[1].accuracy], ['goldfish', 3, 1]);
  assert.equal([result.perClass[0].name, result.perClass[0].images, result.perClass[0].accuracy], ['tench', 2, 0]);
  assert.equal([result.perClass[2].name, result.perClass[2].images], ['great white shark', 1]);
  await mkdir(join(valdir, 'val', 'not-a-class'));
  await writeFile(join(valdir, 'val', 'not-a-class', 'x.jpg'), await readFile(join(root, 'pics', 'disc', 'disc-000.jpg')));
  const bad = cli('eval', '--weights', weights, '--model', join(root, 'imagenet-tiny-1000.json'), '--data-dir', valdir);
  assert.is(bad.code, 2);
  assert.match(bad.err, /1 class folder of .*val is not an ImageNet wnid \(n01440764\) or a torchvision ImageNet class name: .*not-a-class; rename or remove it/);
});

test.run();
