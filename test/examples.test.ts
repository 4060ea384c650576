// The runnable examples in examples/, as a user runs them (`node examples/NAME.mjs ...`; they import
// the package by its name, 'densenet-wgsl', which Node resolves to this repository's own build), at
// tiny sizes. Each output is checked against another path through the engine: the CLI's `predict`,
// the memory the arena really allocated, the numbers in DESIGN.md, a reload of the saved file.
// To add an example: put it in examples/, list it in examples/README.md, and give it a test here.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { writeSafetensors } from '../src/io/safetensors.js';
import { CONFIG_METADATA_KEY, torchvisionStateDict } from '../src/io/torchvision.js';
import { IMAGENET_CLASSES } from '../src/io/imagenet_classes.js';
import { denseNetConfig, describeDenseNet, preset, size } from '../src/models/index.js';
import { exportTorchvisionWeights } from '../src/io/torchvision.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { writeShapeFolder } from './folder_fixtures.js';
import { seededRandom } from './helpers.js';

const test = suite('examples');
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'densenet-examples-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

function run(command: string, ...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [command, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function writePng(path: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Promise<void> {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) png.data.set([...pixel(x, y), 255], 4 * (y * width + x));
  return writeFile(path, PNG.sync.write(png));
}

test('predict-imagenet prints the same top-5 ImageNet names and probabilities as `densenet-wgsl predict --weights`', async () => {
  // A small imagenet-stem network with ImageNet's 1,000 classes (densenet121 takes ~5 s an image on
  // lavapipe), random weights written by the engine's torchvision writer, and a classifier scaled up
  // so that the probabilities differ from class to class.
  const config = denseNetConfig({ name: 'tiny-imagenet', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, stem: 'imagenet', inputShape: [3, 64, 64], classes: 1000 });
  const arch = describeDenseNet(config);
  const rng = seededRandom(7);
  const u = () => rng() * 2 - 1;
  const params = new Map(arch.parameters.map((p) => {
    const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
    const value = { conv: () => u() * Math.sqrt(6 / fanIn), 'bn-weight': () => 1 + 0.3 * u(), 'bn-bias': () => 0.2 * u(), 'bn-running-mean': () => 0.3 * u(),
      'bn-running-var': () => 1 + 0.5 * u(), 'linear-weight': () => 3 * u(), 'linear-bias': () => u() }[p.kind];
    return [p.name, Float32Array.from({ length: size(p.shape) }, value)];
  }));
  const weights = join(dir, 'tiny-imagenet.safetensors');
  await writeSafetensors(weights, torchvisionStateDict(arch, params), { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(config) });
  const images = [join(dir, 'stripes.png'), join(dir, 'gradient.png')];
  await writePng(images[0], 80, 70, (x) => (x % 8 < 4 ? [230, 40, 30] : [20, 60, 220]));
  await writePng(images[1], 90, 90, (x, y) => [x * 2, y * 2, 128]);

  const example = run('examples/predict-imagenet.mjs', '--weights', weights, ...images);
  assert.is(example.code, 0, example.err);
  const cli = run('dist/cli.js', 'predict', '--weights', weights, ...images);
  assert.is(cli.code, 0, cli.err);
  const lines = (text: string) => text.split('\n').filter((l) => images.some((f) => l.startsWith(`${f}: `)));
  const ours = lines(example.out);
  assert.is(ours.length, 2, example.out);
  assert.equal(ours, lines(cli.out));
  for (const line of ours) {
    const top = line.slice(line.indexOf(': ') + 2).split(', ');
    assert.is(top.length, 5, line);
    for (const entry of top) assert.ok(IMAGENET_CLASSES.includes(entry.replace(/ [\d.]+%$/, '')), `an ImageNet class name: ${entry}`);
  }
  assert.is.not(ours[0].split(': ')[1], ours[1].split(': ')[1], 'the two images get different predictions');

  const bad = run('examples/predict-imagenet.mjs', '--weights', images[0], images[1]);
  assert.is(bad.code, 1);
  assert.ok(bad.err.includes(images[0]), `the message names the file: ${bad.err}`);
  assert.not.match(bad.err, /\n\s+at /, 'no stack trace');
});

test('compare-memory: planned bytes per strategy match DESIGN.md for BC-100-12, and a step really allocates what is planned', () => {
  const planned = run('examples/compare-memory.mjs', '--model', 'densenet-bc-100-12', '--batch', '64');
  assert.is(planned.code, 0, planned.err);
  const mib = (out: string, strategy: string, column: number) => {
    const m = new RegExp(`^${strategy}\\s+([\\d.]+) MiB(?:\\s+([\\d.]+) MiB)?`, 'm').exec(out);
    assert.ok(m, `a row for ${strategy} in:\n${out}`);
    return Number(m![column]) * 2 ** 20;
  };
  // DESIGN.md §5, planned for BC-100-12 at batch 64 (GB, three significant digits).
  for (const [strategy, gb] of [['naive', 2.32], ['shared', 1.58], ['recompute', 0.545], ['fused', 0.488]] as const) {
    const bytes = mib(planned.out, strategy, 1);
    assert.ok(Math.abs(bytes / (gb * 1e9) - 1) < 0.005, `${strategy}: ${bytes} bytes planned, DESIGN.md says ${gb} GB`);
  }
  // Measured: the arena's peak during one real training step of each strategy. Tolerance 2%:
  // the plan covers the step's own buffers exactly; the rest is rounding to the printed 0.1 MiB.
  const measured = run('examples/compare-memory.mjs', '--model', 'digits-tiny', '--batch', '8', '--measure');
  assert.is(measured.code, 0, measured.err);
  const peaks = ['naive', 'shared', 'recompute', 'fused'].map((s) => {
    const plan = mib(measured.out, s, 1);
    const real = mib(measured.out, s, 2);
    assert.ok(Math.abs(real / plan - 1) < 0.02, `${s}: measured ${real} bytes, planned ${plan}`);
    return real;
  });
  assert.ok(peaks[0] > peaks[1] && peaks[1] > peaks[2] && peaks[2] > peaks[3], `each strategy holds less than the one before: ${peaks.join(', ')}`);
});

test('train-digits trains with progress, saves weights that reload to the same test accuracy, and never overwrites without --overwrite', async () => {
  const out = join(dir, 'digits.safetensors');
  const r = run('examples/train-digits.mjs', '--limit', '60', '--epochs', '1', '--batch', '8', '--out', out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /epoch 1 step 6\/6: loss [\d.]+, [\d.]+ images\/s/);
  assert.match(r.out, /epoch 1\/1: train loss [\d.]+, test accuracy [\d.]+%/);
  const saved = /saved .*; test accuracy ([\d.]+)%/.exec(r.out);
  const reloaded = /reloaded .*: classes 0 1 2 3 4 5 6 7 8 9, test accuracy ([\d.]+)%/.exec(r.out);
  assert.ok(saved && reloaded, r.out);
  assert.is(reloaded![1], saved![1], 'the reloaded model (weights, normalization) scores as the trained one');

  const before = await readFile(out);
  const mtime = (await stat(out)).mtimeMs;
  const again = run('examples/train-digits.mjs', '--limit', '60', '--epochs', '1', '--batch', '8', '--out', out);
  assert.is(again.code, 1);
  assert.ok(again.err.includes(`${out} already exists; give --overwrite`), again.err);
  assert.ok(Buffer.compare(await readFile(out), before) === 0 && (await stat(out)).mtimeMs === mtime, 'the saved file is untouched');
});

test('finetune-folder: a new head over frozen loaded features on a generated folder; its saved weights predict alike in the CLI', async () => {
  const folder = join(dir, 'shapes');
  await writeShapeFolder(join(folder, 'train'), 12, 41);
  await writeShapeFolder(join(folder, 'val'), 4, 42);
  // "Pretrained" weights of densenet-bc-tiny for 10 classes (random, written by the engine's writer).
  const config = preset('densenet-bc-tiny');
  const rng = seededRandom(43);
  const base = new Map(describeDenseNet(config).parameters.map((p) => [p.name, Float32Array.from({ length: size(p.shape) },
    p.kind === 'bn-running-var' || p.kind === 'bn-weight' ? () => 1 + 0.2 * rng() : () => (rng() - 0.5) * 0.4)]));
  const weights = join(dir, 'base-tiny.safetensors');
  await exportTorchvisionWeights({ header: { config }, tensors: base }, weights);
  const out = join(dir, 'tuned.safetensors');
  const pictures = [join(folder, 'val', 'disc', 'disc-000.jpg'), join(folder, 'val', 'stripes', 'stripes-001.png')];
  const r = run('examples/finetune-folder.mjs', '--data', folder, '--weights', weights, '--freeze', '--epochs', '1', '--batch', '8', '--out', out, ...pictures);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /3 classes, 36 training and 12 validation images/);
  assert.match(r.out, /loaded \d+ tensors from .*base-tiny\.safetensors; a new classifier for 3 classes \(disc, square, stripes\)/);
  assert.match(r.out, /4 steps \(features frozen\)/);
  assert.match(r.out, /validation: 12 images, top-1 \d+\.\d+%, top-5 100\.00%\n  disc: \d+\.\d+%\n  square: /);
  const saved = await readSafetensors(out);
  for (const [name, value] of base) {
    const got = saved.tensors.get(name)!.data as Float32Array;
    if (name.startsWith('classifier.')) assert.is(got.length, name.endsWith('bias') ? 3 : 3 * (value.length / 10), `${name}: a 3-class head`);
    else assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(value.buffer)), `${name}: frozen, as loaded`);
  }
  // The CLI reads the class names and preprocessing the example saved: the same predictions.
  const rows = (text: string) => text.split('\n').filter((l) => pictures.some((f) => l.startsWith(`${f}: `)));
  const cli = run('dist/cli.js', 'predict', '--weights', out, ...pictures);
  assert.is(cli.code, 0, cli.err);
  assert.is(rows(r.out).length, 2, r.out);
  assert.equal(rows(r.out), rows(cli.out));
  for (const row of rows(r.out)) assert.match(row, /: (disc|square|stripes) [\d.]+%, (disc|square|stripes) [\d.]+%, (disc|square|stripes) [\d.]+%$/);

  const none = run('examples/finetune-folder.mjs', '--data', join(dir, 'nowhere'), '--val-split', '0.2');
  assert.is(none.code, 1);
  assert.ok(none.err.includes(join(dir, 'nowhere')), `the message names the folder: ${none.err}`);
  assert.not.match(none.err, /\n\s+at /, 'no stack trace');
});

test.run();
