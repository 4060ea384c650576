// The library API (src/index.ts) in process: options and data are checked before any GPU work;
// train learns, reports through its callbacks and stops on an AbortSignal; evaluate, predict and
// features agree with each other through different code paths; weights load all or nothing (or all
// but the classifier, to fine-tune) and saved files are never overwritten unasked.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  arrayDataset, createModel, DatasetError, DenseNetConfigError, evaluate, features, loadImageFolder, loadModel, loadWeights, openDevice, planMemory, predict, prepareImages, saveWeights, train,
  UsageError, WeightsError, type Device, type ImageArrays, type Model, type StepInfo,
} from '../src/index.js';
import { seededRandom } from './helpers.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { CONFIG_METADATA_KEY, torchvisionStateDict } from '../src/io/torchvision.js';
import { describeDenseNet } from '../src/models/architecture.js';
import { writeShapeFolder } from './folder_fixtures.js';

const test = suite('api');
let dir = '';
let device: Device;
let trained: Model;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'densenet-api-'));
  device = await openDevice();
});
test.after(async () => {
  device.close();
  await rm(dir, { recursive: true, force: true });
});

/** Two classes anyone can tell apart: dark and bright 28×28 images with noise (raw values in [0, 1]). */
function darkAndBright(count: number, seed: number): ImageArrays {
  const rng = seededRandom(seed);
  const labels = Array.from({ length: count }, (_, i) => i % 2);
  const images = new Float32Array(count * 28 * 28);
  for (let i = 0; i < count; i++) for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.min(1, Math.max(0, (labels[i] ? 0.7 : 0.3) + 0.2 * (rng() - 0.5)));
  return { images, labels, shape: [1, 28, 28], classNames: ['dark', 'bright'] };
}

async function rejects(p: Promise<unknown>, kind: abstract new (...a: never[]) => Error, message: RegExp): Promise<Error> {
  try { await p; } catch (e) {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${(e as Error).constructor.name}: ${(e as Error).message}`);
    assert.match((e as Error).message, message);
    return e as Error;
  }
  throw new Error(`expected a ${kind.name} matching ${message}`);
}

test('bad models, options and data are refused with the fix named, before any GPU memory is taken', async () => {
  const live = device.memory().liveBytes;
  assert.throws(() => createModel(device, 'densenet-122'), (e: Error) => e instanceof DenseNetConfigError && /unknown DenseNet preset "densenet-122": choose one of .*densenet121/.test(e.message));
  assert.throws(() => planMemory('digits-tiny', { batch: 1 }), (e: Error) => e instanceof UsageError && /batch must be a whole number >= 2, got 1/.test(e.message));
  const model = createModel(device, 'densenet-bc-tiny');
  const digits = createModel(device, 'digits-tiny', { classes: 2 });
  const allocated = device.memory().liveBytes;
  assert.ok(allocated > live);
  await rejects(train(model, darkAndBright(16, 1)), UsageError, /takes images of \[3, 16, 16\] but the data set's are \[1, 28, 28\]/);
  await rejects(train(digits, darkAndBright(16, 1), { batch: 32 }), UsageError, /batch 32 is larger than the training set \(16 images\)/);
  await rejects(train(digits, darkAndBright(16, 1), { memory: 'compressed' as never }), Error, /unknown memory strategy "compressed"/);
  await rejects(train(digits, darkAndBright(16, 1), { optimizer: 'lbfgs' as never }), UsageError, /optimizer must be sgd, adam or adamw, got "lbfgs"/);
  await rejects(train(digits, { ...darkAndBright(16, 1), labels: [0, 1] }), UsageError, /12544 pixel values for 2 labels/);
  await rejects(train(digits, { ...darkAndBright(16, 1), classNames: ['a', 'b', 'c'] }), UsageError, /3 classes but model "digits-tiny" has 2; create the model with classes: 3/);
  assert.is(device.memory().liveBytes, allocated, 'no training session was built');
  model.close();
  digits.close();
});

test('loadImageFolder: small inputs in memory, ImageNet-stem inputs decoded per batch as predict prepares files; freeze checked', async () => {
  const folder = join(dir, 'shapes');
  await writeShapeFolder(join(folder, 'train'), 4, 51);
  await writeShapeFolder(join(folder, 'val'), 2, 52);
  const small = await loadImageFolder(folder);
  assert.equal([small.streamed, small.classNames, small.train.size, small.test.size, small.train.shape], [false, ['disc', 'square', 'stripes'], 12, 6, [3, 32, 32]]);
  const tiny = { stem: 'imagenet' as const, blocks: [1, 1], growthRate: 4, initialFeatures: 8, bottleneck: true, inputShape: [3, 32, 32] as [number, number, number] };
  const lines: string[] = [];
  const streamed = await loadImageFolder(folder, { model: tiny, onLog: (l) => lines.push(l) });
  assert.ok(streamed.streamed);
  assert.match(lines.join('\n'), /decoded per batch \(RandomResizedCrop \+ flip; evaluation: resize 37, centre crop 32\)/);
  // Validation image 0 is val/disc/disc-000.jpg (ImageFolder order): read as predict prepares that file.
  const model = createModel(device, tiny, { classNames: streamed.classNames });
  const first = await streamed.test.read(Uint32Array.of(0, 3), { epoch: 0, batch: 0, seed: 0, train: false });
  const prepared = await prepareImages(model, [join(folder, 'val', 'disc', 'disc-000.jpg'), join(folder, 'val', 'square', 'square-001.png')]);
  assert.equal([...first.labels], [0, 1]);
  assert.ok(first.images.every((v, i) => Math.abs(v - prepared[i]) < 1e-5), 'the evaluation transform and normalization of predict');
  const context = { epoch: 1, batch: 2, seed: 3, train: true };
  const augmented = await streamed.train.read(Uint32Array.of(0, 5), context);
  const again = await streamed.train.read(Uint32Array.of(0, 5), context);
  assert.equal(augmented.images, again.images, 'augmentation repeats for the same (seed, epoch, batch)');
  const plain = await streamed.train.read(Uint32Array.of(0, 5), { ...context, train: false });
  assert.not.equal(augmented.images, plain.images, 'training reads are augmented');
  await rejects(train(model, streamed.train, { freeze: 'classifier' as never }), UsageError, /freeze: unknown part "classifier": use one of none, features/);
  model.close();
  await rejects(loadImageFolder(join(dir, 'nowhere'), { valSplit: 0.2 }), DatasetError, /nowhere/);
  await rejects(loadImageFolder(folder, { valSplit: 1.5 }), UsageError, /valSplit must be in \(0, 1\), got 1\.5/);
});

test('train learns two classes with step and epoch callbacks; evaluate, predict and features agree', async () => {
  trained = createModel(device, 'digits-tiny', { classes: 2, seed: 3 });
  const steps: StepInfo[] = [];
  const epochs: number[] = [];
  const result = await train(trained, darkAndBright(64, 1), {
    test: darkAndBright(24, 2), epochs: 2, batch: 16, onStep: (s) => steps.push(s), onEpoch: (e) => epochs.push(e.test!.accuracy),
  });
  assert.is(result.status, 'completed');
  assert.is(result.steps, 8);
  assert.equal(steps.map((s) => `${s.epoch}.${s.batch}/${s.batches}`), ['1.1/4', '1.2/4', '1.3/4', '1.4/4', '2.1/4', '2.2/4', '2.3/4', '2.4/4']);
  assert.ok(steps.every((s) => Math.abs(s.lr - (s.epoch === 1 ? 0.1 : 0.01)) < 1e-12), `the step schedule: 0.1, then ÷10 at half the epochs: ${steps.map((s) => s.lr)}`);
  assert.is(epochs.length, 2);
  assert.ok(epochs[1] >= 0.9, `test accuracy after 2 epochs: ${epochs}`);
  assert.equal(trained.classNames, ['dark', 'bright']);
  assert.ok(result.peakGpuBytes > 0 && result.imagesPerSec > 0);

  // evaluate (dataset path: arrayDataset normalizes) against predict (files/arrays path: the model's preprocessing).
  const held = darkAndBright(20, 9);
  const evaluation = await evaluate(trained, arrayDataset(held, { normalization: { mean: trained.preprocessing.mean, std: trained.preprocessing.std } }), { batch: 8 });
  const predictions = await predict(trained, held.images, { top: 2, batch: 6 });
  const truth = Array.from(held.labels);
  const correct = predictions.filter((p, i) => p.top[0].index === truth[i]).length;
  assert.is(evaluation.count, 20);
  assert.is(evaluation.accuracy, correct / 20);
  assert.is(evaluation.top5Accuracy, 1, 'two classes: always in the top 5');
  const loss = predictions.reduce((sum, p, i) => sum - Math.log(p.top.find((t) => t.index === truth[i])!.probability), 0) / 20;
  assert.ok(Math.abs(evaluation.loss - loss) <= 1e-5 + 1e-4 * loss, `loss ${evaluation.loss} vs ${loss} from predict's probabilities`);
  assert.equal(evaluation.confusion.map((row) => row.reduce((a, b) => a + b, 0)), [10, 10]);
  assert.ok(predictions.every((p) => ['dark', 'bright'].includes(p.top[0].name)));

  // features through a classifier-less copy; the classifier applied on the CPU gives predict's probabilities.
  const { features: f, dims } = await features(trained, held.images.subarray(0, 3 * 784), { batch: 2 });
  const weights = await trained.readWeights();
  const w = weights.get('classifier.weight')!;
  const b = weights.get('classifier.bias')!;
  assert.is(dims, w.length / 2);
  for (let i = 0; i < 3; i++) {
    const logits = [0, 1].map((k) => b[k] + f.subarray(i * dims, (i + 1) * dims).reduce((s, v, j) => s + v * w[k * dims + j], 0));
    const p1 = 1 / (1 + Math.exp(logits[0] - logits[1]));
    const expected = predictions[i].top.find((t) => t.index === 1)!.probability;
    assert.ok(Math.abs(p1 - expected) <= 1e-5 + 1e-4 * expected, `image ${i}: p(bright) ${p1} from features, ${expected} from predict`);
  }
});

test('an AbortSignal stops training after the current step', async () => {
  const model = createModel(device, 'digits-tiny', { classes: 2 });
  const stop = new AbortController();
  const seen: number[] = [];
  const result = await train(model, darkAndBright(64, 1), { batch: 16, epochs: 3, signal: stop.signal, onStep: (s) => { seen.push(s.step); if (s.step === 2) stop.abort(); } });
  assert.is(result.status, 'aborted');
  assert.is(result.steps, 2);
  assert.equal(seen, [1, 2]);
  assert.equal(result.epochs, []);
  const live = device.memory().liveBytes;
  const before = await train(model, darkAndBright(64, 1), { batch: 16, signal: AbortSignal.abort(), onStep: () => assert.unreachable('no step after an abort') });
  assert.equal([before.status, before.steps], ['aborted', 0]);
  assert.is(device.memory().peakBytes, live, 'an aborted signal builds nothing');
  model.close();
});

test('weights: saved with names and normalization, reloaded; never overwritten unasked; loaded all or nothing, or all but the classifier', async () => {
  const file = join(dir, 'two-classes.safetensors');
  await saveWeights(trained, file);
  const bytes = await readFile(file);
  await rejects(saveWeights(trained, file), UsageError, /two-classes\.safetensors already exists; pass \{ overwrite: true \}/);
  assert.ok(Buffer.compare(await readFile(file), bytes) === 0, 'the file is untouched');
  await writeFile(join(dir, 'note.txt'), 'x');
  await rejects(saveWeights(trained, join(dir, 'note.txt'), { overwrite: true }), UsageError, /must end in \.safetensors/);

  const reloaded = await loadModel(device, file);
  assert.equal(reloaded.classNames, ['dark', 'bright']);
  assert.equal(reloaded.preprocessing, trained.preprocessing);
  const raw = darkAndBright(4, 5).images;
  assert.equal((await predict(reloaded, raw)).map((p) => p.top[0].probability), (await predict(trained, raw)).map((p) => p.top[0].probability));

  // A file from an older export records mean and std alone (no preprocessing key): the library reads
  // it as predict --weights does (io/weights_metadata.ts), images resized straight to the input.
  const older = join(dir, 'older-export.safetensors');
  await writeSafetensors(older, torchvisionStateDict(describeDenseNet(trained.config), await trained.readWeights(), 1), {
    [CONFIG_METADATA_KEY]: JSON.stringify(trained.config), 'densenet_wgsl.mean': JSON.stringify([0.25]), 'densenet_wgsl.std': JSON.stringify([0.5]),
  });
  const fromOlder = await loadModel(device, older);
  assert.equal(fromOlder.preprocessing, { mean: [0.25], std: [0.5], resize: 'resize' });
  fromOlder.close();

  // A new head of three classes: the file's two-class classifier does not fit...
  const fresh = createModel(device, 'digits-tiny', { classNames: ['a', 'b', 'c'], seed: 11 });
  const before = await fresh.readWeights();
  const error = await rejects(loadWeights(fresh, file), WeightsError, /do not fit model "digits-tiny" \(2 mis-shaped\); nothing was loaded/);
  assert.ok((error as Error & { problems: string[] }).problems.some((p) => p.includes('classifier.weight') && p.includes('file [2, 32], model [3, 32]')));
  const after = await fresh.readWeights();
  assert.ok([...before].every(([name, v]) => Buffer.compare(Buffer.from(v.buffer), Buffer.from(after.get(name)!.buffer)) === 0), 'nothing was written');
  // ...but everything else loads, for fine-tuning, and the new head stays as initialized.
  const report = await loadWeights(fresh, file, { skipClassifier: true });
  assert.equal(report.skipped.filter((n) => n.startsWith('classifier.')), ['classifier.weight', 'classifier.bias']);
  const tuned = await fresh.readWeights();
  const source = await trained.readWeights();
  for (const [name, v] of tuned) {
    const expected = name.startsWith('classifier.') ? before.get(name)! : source.get(name)!;
    assert.ok(Buffer.compare(Buffer.from(v.buffer), Buffer.from(expected.buffer)) === 0, name);
  }
  assert.equal(fresh.classNames, ['a', 'b', 'c']);
  fresh.close();
  reloaded.close();
});

test('after the device is closed, its models refuse work with a clear message', async () => {
  const other = await openDevice();
  const model = createModel(other, 'digits-tiny');
  other.close();
  assert.ok(other.closed);
  await rejects(predict(model, new Float32Array(784)), Error, /the device was closed/);
});

test.run();
