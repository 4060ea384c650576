// Your own images end to end, as a user runs the CLI: a generated image folder (three classes, JPEG
// and PNG) trains a small model to ≥ 95% validation accuracy; eval reports top-1/top-5, per-class
// accuracy and the confusion matrix (and --json, never over an existing file without --overwrite);
// predict prints class names, also from a checkpoint written before preprocessing was recorded;
// --val-split and the streamed (ImageNet-stem) path train; ImageNet weights are evaluated on a
// wnid/class-named val folder; bad folders are refused before any GPU work.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/train/checkpoint.js';
import { preprocessingOf } from '../src/train/preprocessing.js';
import { readMetrics } from '../src/train/metrics.js';
import { denseNetConfig, describeDenseNet } from '../src/models/index.js';
import { exportTorchvisionWeights } from '../src/io/torchvision.js';
import { readSafetensors } from '../src/io/safetensors.js';
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

test('export → predict --weights with the recorded preprocessing → fine-tune a new head on other classes with --freeze features → eval, predict names', async () => {
  const base = join(root, 'base.safetensors');
  const x = cli('export', '--checkpoint', join(run(), 'best.ckpt'), '--out', base);
  assert.is(x.code, 0, x.err);
  const files = [join(data(), 'val', 'disc', 'disc-003.png'), join(data(), 'val', 'stripes', 'stripes-004.jpg'), join(data(), 'val', 'square', 'square-005.png')];
  // The exported weights predict as the checkpoint does: stretched to 16×16, ImageNet mean/std, class
  // names (ImageNet's resize-256/crop-224 transform would crop these 24×24 pictures to their centre).
  const fromCheckpoint = cli('predict', '--checkpoint', join(run(), 'best.ckpt'), ...files);
  const fromWeights = cli('predict', '--weights', base, ...files);
  assert.is(fromWeights.code, 0, fromWeights.err);
  assert.match(fromWeights.out, /preprocessing recorded in .*base\.safetensors: resize to the input size, mean \[0\.4850, 0\.4560, 0\.4060\], std \[0\.2290, 0\.2240, 0\.2250\]; classes disc, square, stripes/);
  const rows = (out: string) => out.split('\n').filter((l) => files.some((f) => l.startsWith(`${f}: `)));
  assert.is(rows(fromWeights.out).length, 3, fromWeights.out);
  assert.equal(rows(fromWeights.out), rows(fromCheckpoint.out), 'same names and probabilities (to 0.1%) as predict --checkpoint');

  // Another task: two classes under new names, fine-tuned from the export with a new classifier.
  const other = join(root, 'other');
  for (const [split, count, seed] of [['train', 40, 21], ['val', 10, 22]] as const) {
    await writeShapeFolder(join(other, split), count, seed);
    await rm(join(other, split, 'stripes'), { recursive: true });
    await rename(join(other, split, 'disc'), join(other, split, 'round'));
    await rename(join(other, split, 'square'), join(other, split, 'boxy'));
  }
  const tuned = join(root, 'tuned');
  const f = cli('train', '--dataset', 'folder', '--data-dir', other, '--model', 'densenet-bc-tiny', '--weights', base, '--freeze', 'features', '--epochs', '3', '--lr', '0.1', '--batch', '16', '--out', tuned);
  assert.is(f.code, 0, f.err + f.out);
  assert.match(f.out, /fine-tuning from .*base\.safetensors: \d+ tensors loaded \(every layer but the classifier\); a new classifier for 2 classes/);
  assert.match(f.out, /features frozen/);
  const exported = await readSafetensors(base);
  const ckpt = await readCheckpoint(join(tuned, 'last.ckpt'));
  assert.equal(ckpt.header.classNames, ['boxy', 'round']);
  assert.equal(ckpt.tensors.get('classifier.weight')!.length, 2 * exported.tensors.get('classifier.weight')!.shape[1], 'a 2-class head');
  const conv = exported.tensors.get('features.conv0.weight')!;
  const tunedConv = ckpt.tensors.get('features.conv0.weight')!;
  assert.ok(Buffer.from(tunedConv.buffer, tunedConv.byteOffset, tunedConv.byteLength).equals(Buffer.from(conv.data.buffer, conv.data.byteOffset, conv.data.byteLength)), 'frozen features are the exported ones, bit for bit');
  const e = cli('eval', '--checkpoint', join(tuned, 'last.ckpt'));
  assert.is(e.code, 0, e.err);
  const top = /20 images, top-1 accuracy (\d+\.\d+)%, top-5 accuracy 100\.00%/.exec(e.out);
  assert.ok(top, e.out);
  // The exported features already tell discs from squares: a new head alone separates them.
  assert.ok(Number(top![1]) >= 90, `fine-tuned top-1 ${top![1]}%`);
  const pictures = [join(other, 'val', 'round', 'disc-000.jpg'), join(other, 'val', 'boxy', 'square-001.png')];
  const p = cli('predict', '--checkpoint', join(tuned, 'last.ckpt'), ...pictures);
  assert.is(p.code, 0, p.err);
  assert.match(p.out, /round\/disc-000\.jpg: round \d/);
  assert.match(p.out, /boxy\/square-001\.png: boxy \d/);
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

test('bad input is refused by name, and nothing already saved is touched (even with --overwrite)', async () => {
  // The trained run and its export, byte for byte.
  const snapshot = async () => {
    const files = new Map<string, Buffer>();
    for (const name of (await readdir(run())).sort()) files.set(name, await readFile(join(run(), name)));
    files.set('base.safetensors', await readFile(join(root, 'base.safetensors')));
    return files;
  };
  const before = await snapshot();
  const bad = join(root, 'bad');
  const folder = async (name: string, make: (dir: string) => Promise<void>) => {
    const dir = join(bad, name);
    await writeShapeFolder(dir, 2, 30);
    await make(dir);
    return dir;
  };
  const noClasses = join(bad, 'no-classes');
  await mkdir(noClasses, { recursive: true });
  const emptyClass = await folder('empty-class', (d) => mkdir(join(d, 'void')));
  const corruptOnly = await folder('corrupt-only', async (d) => {
    await mkdir(join(d, 'broken'));
    const damaged = Buffer.from(await readFile(join(d, 'disc', 'disc-000.jpg')));
    damaged[3] = 0x02; // the marker after SOI becomes an unknown one
    for (const name of ['one.jpg', 'two.jpg']) await writeFile(join(d, 'broken', name), damaged);
  });
  const textOnly = await folder('text-only', async (d) => {
    await mkdir(join(d, 'notes'));
    await writeFile(join(d, 'notes', 'readme.txt'), 'not an image');
  });
  const otherModel = join(root, 'other-model.json');
  await writeFile(otherModel, JSON.stringify({ name: 'other-tiny', blocks: [2, 2, 2], growthRate: 6, initialFeatures: 8, bottleneck: true, inputShape: [3, 16, 16], classes: 3 }));
  const trainFlags = (dir: string, ...extra: string[]) => ['train', '--dataset', 'folder', '--data-dir', dir, '--val-split', '0.5', '--model', 'densenet-bc-tiny', '--epochs', '1', '--batch', '2', '--out', run(), '--overwrite', ...extra];
  const cases: [string[], RegExp][] = [
    [trainFlags(noClasses), /folder .*bad\/no-classes has no class folders/],
    [trainFlags(emptyClass), /class folder .*empty-class\/void has no images/],
    [trainFlags(corruptOnly), /corrupt-only\/broken\/one\.jpg: corrupt JPEG[^]*no readable training image is left in class broken/],
    [trainFlags(textOnly), /class folder .*text-only\/notes has no images/],
    [[...trainFlags(join(data(), 'train')).filter((a) => a !== 'densenet-bc-tiny' && a !== '--model'), '--model', otherModel, '--weights', join(root, 'base.safetensors')],
      /base\.safetensors.* do not fit model "other-tiny"[^]*shape mismatch features\.\S+: file \[\d+(, \d+)*\], model \[\d+(, \d+)*\]/],
    [trainFlags(join(data(), 'train'), '--weights', join(root, 'base.safetensors'), '--freeze', 'classifier'), /unknown --freeze part "classifier": use one of none, features/],
    [['export', '--checkpoint', join(run(), 'last.ckpt'), '--out', join(root, 'base.safetensors')], /export: --out .*base\.safetensors already exists/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    const said = r.out + r.err;
    assert.ok(r.code === 1 || r.code === 2, `${args.join(' ')}: exit ${r.code}\n${said}`);
    assert.match(said, message, `${args.join(" ")}\n${said}`);
    assert.not.match(said, /\n\s+at /, `no stack trace: ${said}`);
    assert.not.match(said, /adapter:/, `refused before any GPU work: ${args.join(' ')}`);
    const after = await snapshot();
    assert.equal([...after.keys()], [...before.keys()], `${args.join(' ')}: the run's files`);
    for (const [name, bytes] of before) assert.ok(bytes.equals(after.get(name)!), `${args.join(' ')}: ${name} changed`);
  }
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
