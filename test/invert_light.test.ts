// A digits model learned white strokes on black (MNIST); a digit drawn on paper is dark on light, so
// predict inverts a light gray image for it. That rule travels with the model: from the checkpoint
// into `export`'s safetensors (and so to predict --weights and features), into the library's
// loadModel/saveWeights, and from loadDigits through train(). The model is the committed web demo's
// (web/model/digits.ckpt, 96.9% on held-out digits); the oracle is predict --checkpoint, which always
// applied the rule, and the digits' own labels.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadDigits, loadModel, openDevice, predict, saveWeights, train, type Device } from '../src/index.js';
import { loadMnistDigits } from '../src/train/data/mnist.js';

const test = suite('invert light');
let dir = '';
let device: Device;
const digits: { file: string; label: number }[] = [];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'invert-light-'));
  device = await openDevice();
  // Eight digits, 0 to 7 (each class's last one), drawn dark on light as on paper.
  const all = loadMnistDigits();
  for (let label = 0; label < 8; label++) {
    const at = (all.starts[label] + all.counts[label] - 1) * 784;
    const png = new PNG({ width: 28, height: 28 });
    for (let p = 0; p < 784; p++) {
      png.data.fill(Math.round(255 * (1 - all.images[at + p])), 4 * p, 4 * p + 3);
      png.data[4 * p + 3] = 255;
    }
    const file = join(dir, `paper-${label}.png`);
    await writeFile(file, PNG.sync.write(png));
    digits.push({ file, label });
  }
});
test.after(async () => {
  device.close();
  await rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });
/** predict's result lines ("FILE: 2 99.9%, ..."), by file. */
const results = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith(dir));

test('export records the rule; predict --weights then reads paper digits as predict --checkpoint does', async () => {
  const weights = join(dir, 'digits.safetensors');
  const exported = cli('export', '--checkpoint', 'web/model/digits.ckpt', '--out', weights);
  assert.is(exported.status, 0, exported.stderr);
  const files = digits.map((d) => d.file);
  const fromCheckpoint = cli('predict', '--checkpoint', 'web/model/digits.ckpt', ...files);
  const fromWeights = cli('predict', '--weights', weights, ...files);
  assert.is(fromCheckpoint.status, 0, fromCheckpoint.stderr);
  assert.is(fromWeights.status, 0, fromWeights.stderr);
  assert.match(fromWeights.stdout, 'a light image inverted (the model learned light strokes on black)');
  assert.is(results(fromCheckpoint.stdout).length, digits.length, fromCheckpoint.stdout);
  assert.equal(results(fromWeights.stdout), results(fromCheckpoint.stdout));
  const right = results(fromWeights.stdout).filter((line, i) => line.startsWith(`${digits[i].file}: ${digits[i].label} `)).length;
  assert.ok(right >= 7, `${right} of ${digits.length} paper digits read right:\n${fromWeights.stdout}`);

  // The library's loadModel takes the rule from the same file.
  const model = await loadModel(device, weights);
  assert.is(model.preprocessing.invertLight, true);
  const top1 = (await predict(model, files, { top: 1 })).map((p) => p.top[0].index);
  assert.equal(top1, results(fromCheckpoint.stdout).map((l) => Number(l.slice(l.indexOf(': ') + 2).split(' ')[0])));
  model.close();
});

test('train() on loadDigits records the rule; saveWeights and loadModel keep it', async () => {
  const { train: trainSet, test: testSet } = loadDigits({ limit: 200 });
  assert.is(trainSet.invertLight, true);
  assert.is(testSet.invertLight, true);
  const model = await loadModel(device, join(dir, 'digits.safetensors')); // any digits model: one step is enough here
  model.preprocessing = { ...model.preprocessing, invertLight: false };
  await train(model, trainSet, { epochs: 1, batch: 32 });
  assert.is(model.preprocessing.invertLight, true);
  const saved = join(dir, 'trained.safetensors');
  await saveWeights(model, saved);
  const reloaded = await loadModel(device, saved);
  assert.is(reloaded.preprocessing.invertLight, true);
  reloaded.close();
  model.close();
});

test.run();
