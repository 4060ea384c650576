// torchvision weights in and out (src/io/torchvision.ts) and the ImageNet commands
// (src/cli/imagenet.ts) on a small imagenet-stem DenseNet-BC. The weights file is written here
// with torchvision's names and layouts (conv OIHW, linear [out, in]), I64 num_batches_tracked
// scalars and two pre-0.3 dense-layer keys; the model loaded from it must reproduce those values
// exactly, and its logits (and pooled features) must match TensorFlow.js (cpu, the whole-network
// oracle of bench/tfjs_densenet.ts) given the same weights and images.
//
// Tolerance for logits, probabilities and features: atol 1e-5 + rtol 1e-4, as test/densenet_tfjs:
// both sides compute in float32 in different summation orders through ~12 layers; we expect and
// observe errors of ~1e-6.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import { link, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { tfjsInference } from '../bench/tfjs_densenet.js';
import { denseNetConfig, describeDenseNet, size, type ArchitectureSpec, type DenseNetConfig } from '../src/models/index.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession } from '../src/models/session.js';
import { writeCheckpoint } from '../src/train/checkpoint.js';
import { decodeImageFile } from '../src/train/images.js';
import { IMAGENET_CLASSES } from '../src/io/imagenet_classes.js';
import { decodeNpyFloat32 } from '../src/io/npy.js';
import { encodeSafetensors, readSafetensors, SafetensorsError, writeSafetensors, type WritableTensor } from '../src/io/safetensors.js';
import {
  configFromWeights, exportTorchvisionWeights, loadTorchvisionWeights, modernKey, torchvisionStateDict, WeightsError,
} from '../src/io/torchvision.js';
import {
  extractImagenetFeatures, IMAGENET_MEAN, IMAGENET_STD, imagenetInput, predictImagenet, runFeatures, runImagenetPredict,
  runPredictDispatch,
} from '../src/cli/imagenet.js';
import { runExport } from '../src/cli/export.js';
import { UsageError, type ParsedFlags } from '../src/cli/args.js';
import { assertClose, closeTestGpu, randomArray, seededRandom, testGpu, type Tolerance } from './helpers.js';

const test = suite('torchvision weights');
let dir = '';
test.before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'torchvision-test-'));
});
test.after(async () => {
  await closeTestGpu();
  await rm(dir, { recursive: true, force: true });
});

const TOL: Tolerance = { atol: 1e-5, rtol: 1e-4 };
const CONFIG = denseNetConfig({
  name: 'tiny-imagenet-test', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5,
  stem: 'imagenet', inputShape: [3, 48, 48], classes: 7,
});
const ARCH = describeDenseNet(CONFIG);

/** Weights that look trained: every BN has its own scale, shift and running statistics. */
function trainedLooking(arch: ArchitectureSpec, seed: number): Map<string, Float32Array> {
  const rng = seededRandom(seed);
  const out = new Map<string, Float32Array>();
  for (const p of arch.parameters) {
    const n = size(p.shape);
    const u = () => rng() * 2 - 1;
    const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, () => {
      switch (p.kind) {
        case 'conv': return u() * Math.sqrt(6 / fanIn);
        case 'bn-weight': return 1 + 0.3 * u();
        case 'bn-bias': return 0.2 * u();
        case 'bn-running-mean': return 0.3 * u();
        case 'bn-running-var': return 1 + 0.5 * u();
        default: return u() / Math.sqrt(fanIn);
      }
    });
    out.set(p.name, values);
  }
  return out;
}

/** A torchvision state_dict as safetensors tensors, optionally with some keys renamed or changed. */
function stateDictTensors(arch: ArchitectureSpec, params: Map<string, Float32Array>, rename: Record<string, string> = {}): [string, WritableTensor][] {
  return torchvisionStateDict(arch, params, 42).map(([name, t]) => [rename[name] ?? name, t]);
}

const PARAMS = trainedLooking(ARCH, 7);
const OLD_STYLE = {
  'features.denseblock1.denselayer1.norm1.weight': 'features.denseblock1.denselayer1.norm.1.weight',
  'features.denseblock2.denselayer2.conv2.weight': 'features.denseblock2.denselayer2.conv.2.weight',
};

function images(config: DenseNetConfig, n: number, seed: number): Float32Array {
  const [c, h, w] = config.inputShape;
  return randomArray(n * c * h * w, seed, 2);
}

function assertSameParameters(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>, what: string): void {
  assert.equal([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: names`);
  for (const [name, values] of expected) {
    const got = actual.get(name)!;
    for (let i = 0; i < values.length; i++) {
      if (!Object.is(got[i], values[i])) assert.unreachable(`${what}: ${name}[${i}] is ${got[i]}, expected ${values[i]}`);
    }
  }
}

async function expectRejection(p: Promise<unknown>, type: new (...a: never[]) => Error, ...parts: string[]): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, type, `${(e as Error).message}`);
    for (const part of parts) assert.ok((e as Error).message.includes(part), `"${(e as Error).message}"\nshould mention "${part}"`);
    return e as Error;
  }
  assert.unreachable(`expected a ${type.name}`);
  throw new Error('unreachable');
}

function writePng(path: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Promise<void> {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      png.data.set([r, g, b, 255], 4 * (y * width + x));
    }
  }
  return writeFile(path, PNG.sync.write(png));
}

test('ImageNet class names: torchvision order, 1000 distinct', () => {
  assert.is(IMAGENET_CLASSES.length, 1000);
  assert.is(new Set(IMAGENET_CLASSES).size, 1000);
  const anchors: [number, string][] = [[0, 'tench'], [1, 'goldfish'], [134, 'crane bird'], [151, 'Chihuahua'], [207, 'golden retriever'],
    [281, 'tabby'], [285, 'Egyptian cat'], [340, 'zebra'], [388, 'giant panda'], [517, 'crane'], [638, 'maillot'], [639, 'maillot tank suit'],
    [817, 'sports car'], [954, 'banana'], [999, 'toilet tissue']];
  for (const [i, name] of anchors) assert.is(IMAGENET_CLASSES[i], name, `class ${i}`);
});

test('old torchvision keys are renamed as torchvision does; others are left alone', () => {
  assert.is(modernKey('features.denseblock3.denselayer12.norm.2.running_var'), 'features.denseblock3.denselayer12.norm2.running_var');
  assert.is(modernKey('features.denseblock1.denselayer1.conv.1.weight'), 'features.denseblock1.denselayer1.conv1.weight');
  assert.is(modernKey('features.denseblock1.denselayer1.norm1.weight'), 'features.denseblock1.denselayer1.norm1.weight');
  assert.is(modernKey('features.transition1.norm.weight'), 'features.transition1.norm.weight');
  assert.is(modernKey('features.denseblock1.denselayer1.norm.3.weight'), 'features.denseblock1.denselayer1.norm.3.weight');
});

test('a torchvision-named file loads exactly (old keys, num_batches_tracked skipped) and the logits match tfjs', async () => {
  const gpu = await testGpu();
  const file = join(dir, 'tiny.safetensors');
  await writeSafetensors(file, stateDictTensors(ARCH, PARAMS, OLD_STYLE), { format: 'pt' });
  const model = DenseNetModel.create(gpu, CONFIG, 0);
  try {
    const report = await loadTorchvisionWeights(model, file);
    assert.is(report.loaded, ARCH.parameters.length);
    assert.is(report.renamed, 2);
    const bns = ARCH.parameters.filter((p) => p.kind === 'bn-running-var').length;
    assert.is(report.skipped.length, bns);
    assert.ok(report.skipped.every((n) => n.endsWith('.num_batches_tracked')));
    assertSameParameters(await model.readParameters(), PARAMS, 'loaded');

    const batch = 3;
    const x = images(CONFIG, batch, 11);
    const session = await InferenceSession.create(model, { batch });
    const ours = await session.run(x);
    session.destroy();
    const reference = tfjsInference(ARCH, PARAMS, x);
    assert.is(ours.length, batch * 7);
    assertClose(ours, reference, TOL, 'logits vs tfjs');
    // Not a vacuous comparison: the logits differ between images and classes.
    assert.ok(Math.max(...reference) - Math.min(...reference) > 0.1);
  } finally {
    model.close();
  }
});

test('F16 and BF16 files load converted to float32 (reported), BF16 values exactly', async () => {
  const gpu = await testGpu();
  const tensors = stateDictTensors(ARCH, PARAMS).map(([n, t]): [string, WritableTensor] => [n, t.dtype === 'F32' ? { ...t, dtype: n.startsWith('features.norm') ? 'F16' : 'BF16' } : t]);
  const contents = await encodeAndParse(tensors);
  const model = DenseNetModel.create(gpu, CONFIG, 0);
  try {
    const report = await loadTorchvisionWeights(model, contents, { file: 'half.safetensors' });
    assert.is(report.converted.F16, 8); // norm0 and norm5, four tensors each
    assert.is(report.converted.BF16, ARCH.parameters.length - 8);
    const loaded = await model.readParameters();
    assert.equal([...loaded.get('classifier.bias')!], [...contents.tensors.get('classifier.bias')!.data]);
    assertClose(loaded.get('classifier.weight')!, PARAMS.get('classifier.weight')!, { atol: 0, rtol: 2 ** -8 }, 'bf16 rounding');
  } finally {
    model.close();
  }
});

test('export → re-load is exact; the file is a strict torchvision state_dict; checkpoints export too', async () => {
  const gpu = await testGpu();
  const source = DenseNetModel.create(gpu, CONFIG, 3);
  const target = DenseNetModel.create(gpu, CONFIG, 4);
  try {
    await loadTorchvisionWeights(source, await encodeAndParse(stateDictTensors(ARCH, PARAMS)));
    const file = join(dir, 'exported.safetensors');
    const report = await exportTorchvisionWeights(source, file);
    const read = await readSafetensors(file);
    const bns = ARCH.parameters.filter((p) => p.kind === 'bn-running-var').map((p) => p.name.replace(/running_var$/, 'num_batches_tracked'));
    assert.equal([...read.tensors.keys()].sort(), [...ARCH.parameters.map((p) => p.name), ...bns].sort());
    assert.is(report.tensors, read.tensors.size);
    for (const name of bns) {
      const t = read.tensors.get(name)!;
      assert.is(t.dtype, 'I64');
      assert.equal(t.shape, []);
      assert.equal([...t.data], [0n]);
    }
    for (const p of ARCH.parameters) {
      assert.is(read.tensors.get(p.name)!.dtype, 'F32');
      assert.equal(read.tensors.get(p.name)!.shape, p.shape, p.name);
    }
    // torchvision's order: each BN's num_batches_tracked right after its running_var.
    const keys = [...read.tensors.keys()];
    assert.is(keys[keys.indexOf('features.norm0.running_var') + 1], 'features.norm0.num_batches_tracked');
    assert.equal(JSON.parse(read.metadata['densenet_wgsl.config']), CONFIG);
    assert.equal(configFromWeights(read), CONFIG);
    await loadTorchvisionWeights(target, file);
    assertSameParameters(await target.readParameters(), PARAMS, 're-loaded');

    // From a training checkpoint: optimizer state left out, num_batches_tracked = steps taken.
    const checkpoint = join(dir, 'run.ckpt');
    const tensors = new Map([...PARAMS, ['optimizer.velocity', new Float32Array(10)]]);
    await writeCheckpoint(checkpoint, { header: { format: 'densenet-wgsl-training-v1', config: CONFIG, stepsTaken: 17 }, tensors });
    const fromCheckpoint = join(dir, 'from-checkpoint.safetensors');
    const lines: string[] = [];
    await runExport({ checkpoint, out: fromCheckpoint }, (l) => lines.push(l));
    assert.ok(lines.join('\n').includes(`tiny-imagenet-test, ${ARCH.parameters.length} tensors with torchvision names plus ${bns.length} num_batches_tracked`), lines.join('\n'));
    const exported = await readSafetensors(fromCheckpoint);
    assert.ok(![...exported.tensors.keys()].some((n) => n.startsWith('optimizer')));
    assert.equal([...exported.tensors.get('features.norm5.num_batches_tracked')!.data], [17n]);
    await loadTorchvisionWeights(target, exported);
    assertSameParameters(await target.readParameters(), PARAMS, 'from checkpoint');
  } finally {
    source.close();
    target.close();
  }
});

function encodeAndParse(tensors: [string, WritableTensor][]) {
  return readSafetensorsBytes(encodeSafetensors(tensors));
}
let memoryFiles = 0;
function readSafetensorsBytes(bytes: Uint8Array) {
  const path = join(dir, `mem-${memoryFiles++}.safetensors`);
  return writeFile(path, bytes).then(() => readSafetensors(path));
}

test('bad files are refused with every problem named, and the model is left unchanged', async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, CONFIG, 5);
  try {
    const before = await model.readParameters();
    const unchanged = async (what: string) => assertSameParameters(await model.readParameters(), before, `after ${what}`);

    // Truncated.
    const good = encodeSafetensors(stateDictTensors(ARCH, PARAMS));
    const truncated = join(dir, 'truncated.safetensors');
    await writeFile(truncated, good.subarray(0, good.length - 100));
    await expectRejection(loadTorchvisionWeights(model, truncated), SafetensorsError, truncated, 'truncated');
    await unchanged('a truncated file');

    // Another model: block 1 has 3 layers, block 2 one.
    const other = describeDenseNet({ ...CONFIG, name: 'other', blocks: [3, 1] });
    const otherFile = join(dir, 'other.safetensors');
    await writeSafetensors(otherFile, stateDictTensors(other, trainedLooking(other, 1)));
    const e = await expectRejection(loadTorchvisionWeights(model, otherFile), WeightsError, otherFile, 'nothing was loaded', 'another model',
      'missing features.denseblock2.denselayer2.conv2.weight [4, 16, 3, 3]',
      'missing features.denseblock2.denselayer2.norm1.running_var [12]',
      'unexpected features.denseblock1.denselayer3.norm1.weight [16]',
      'unexpected features.denseblock1.denselayer3.conv1.weight [16, 16, 1, 1]',
      'shape mismatch features.transition1.norm.weight: file [20], model [16]',
      'shape mismatch features.transition1.conv.weight: file [10, 20, 1, 1], model [8, 16, 1, 1]');
    const problems = (e as WeightsError).problems;
    assert.is(problems.filter((p) => p.startsWith('missing')).length, 10, 'denseblock2.denselayer2: norm1 ×4, conv1, norm2 ×4, conv2');
    assert.is(problems.filter((p) => p.startsWith('unexpected')).length, 12, 'denseblock1.denselayer3: 10 tensors and 2 num_batches_tracked');
    await unchanged('another model\'s file');

    // A mis-shaped classifier (5 classes), an I64 where a float is needed, an old + new duplicate.
    const params5 = new Map(PARAMS);
    const five = describeDenseNet({ ...CONFIG, classes: 5 });
    const p5 = trainedLooking(five, 2);
    params5.set('classifier.weight', p5.get('classifier.weight')!);
    params5.set('classifier.bias', p5.get('classifier.bias')!);
    const mixed = stateDictTensors(five, params5).map(([n, t]): [string, WritableTensor] =>
      n === 'features.norm0.running_mean' ? [n, { dtype: 'I64', shape: [8], data: new Array(8).fill(0) }] : [n, t]);
    mixed.push(['features.denseblock1.denselayer1.norm.1.weight', { dtype: 'F32', shape: [8], data: new Float32Array(8) }]);
    await expectRejection(loadTorchvisionWeights(model, await encodeAndParse(mixed), { file: 'mixed.safetensors' }), WeightsError, 'mixed.safetensors',
      'shape mismatch classifier.weight: file [5, 16], model [7, 16]', 'shape mismatch classifier.bias: file [5], model [7]',
      'wrong dtype features.norm0.running_mean: I64 in the file', 'duplicate features.denseblock1.denselayer1.norm1.weight');
    await unchanged('a mis-shaped file');

    // An I32 weight: the file is refused when read, naming the tensor and the dtype.
    const bytes = encodeSafetensors(stateDictTensors(ARCH, PARAMS));
    const text = new TextDecoder().decode(bytes);
    const at = text.indexOf('"features.conv0.weight":{"dtype":"F32"');
    assert.ok(at > 0);
    bytes.set(new TextEncoder().encode('"features.conv0.weight":{"dtype":"I32"'), at);
    const i32 = join(dir, 'i32.safetensors');
    await writeFile(i32, bytes);
    await expectRejection(loadTorchvisionWeights(model, i32), SafetensorsError, i32, 'tensor "features.conv0.weight"', 'dtype I32 is not supported');
    await unchanged('an I32 weight');
  } finally {
    model.close();
  }
});

test('ImageNet preprocessing: 256/224 resize and crop of an RGB image, ImageNet mean and std', async () => {
  const path = join(dir, 'solid.png');
  await writePng(path, 90, 60, () => [51, 102, 204]);
  const x = imagenetInput(await decodeImageFile(path), [3, 48, 48]);
  assert.is(x.length, 3 * 48 * 48);
  const rgb = [51 / 255, 102 / 255, 204 / 255];
  for (let c = 0; c < 3; c++) {
    const expected = new Float32Array(48 * 48).fill((rgb[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
    assertClose(x.subarray(c * 48 * 48, (c + 1) * 48 * 48), expected, { atol: 1e-6, rtol: 1e-6 }, `channel ${c}`);
  }
  // A left-to-right ramp: the crop is centred, so the middle column keeps the middle value.
  const ramp = join(dir, 'ramp.png');
  await writePng(ramp, 300, 224, (x) => [Math.round((x / 299) * 255), 0, 0]);
  const y = imagenetInput(await decodeImageFile(ramp), [3, 224, 224]);
  const red = (col: number) => y[100 * 224 + col] * IMAGENET_STD[0] + IMAGENET_MEAN[0];
  // 300×224 → 342×256 (shorter side 256), crop 224 from x = 59; resized column X samples the ramp at
  // (X + 0.5)·300/342 − 0.5 (8-bit pixels: ±0.002).
  const ramp01 = (X: number) => ((X + 0.5) * 300 / 342 - 0.5) / 299;
  assertClose([red(0), red(111), red(223)], [ramp01(59), ramp01(59 + 111), ramp01(59 + 223)], { atol: 0.0025, rtol: 0 }, 'crop window');
});

test('predict and features on image files: batched with a short last batch, equal to tfjs; no gradient or optimizer memory', async () => {
  const gpu = await testGpu();
  const files = [join(dir, 'a.png'), join(dir, 'b.png'), join(dir, 'c.png')];
  await writePng(files[0], 70, 60, (x, y) => [(x * 7) % 256, (y * 5) % 256, (x * y) % 256]);
  await writePng(files[1], 48, 80, (x, y) => [255 - x * 3, (x + y) * 2 % 256, 90]);
  await writePng(files[2], 64, 64, (x, y) => [(x ^ y) * 4 % 256, 200 - y, x * 4 % 256]);
  const inputs = new Float32Array(3 * 3 * 48 * 48);
  for (let i = 0; i < 3; i++) inputs.set(imagenetInput(await decodeImageFile(files[i]), [3, 48, 48]), i * 3 * 48 * 48);
  const weights = await encodeAndParse(stateDictTensors(ARCH, PARAMS));

  gpu.arena.resetPeak();
  const { predictions, stats } = await predictImagenet({ gpu, config: CONFIG, weights, files, batch: 2, top: 3 });
  const logits = tfjsInference(ARCH, PARAMS, inputs);
  for (let i = 0; i < 3; i++) {
    const row = [...logits.subarray(7 * i, 7 * i + 7)];
    const max = Math.max(...row);
    const sum = row.reduce((a, v) => a + Math.exp(v - max), 0);
    const order = row.map((_, j) => j).sort((a, b) => row[b] - row[a]).slice(0, 3);
    assert.equal(predictions[i].top.map((t) => t.index), order, `top-3 of ${files[i]}`);
    assertClose(predictions[i].top.map((t) => t.probability), order.map((j) => Math.exp(row[j] - max) / sum), TOL, `probabilities of ${files[i]}`);
    assert.is(predictions[i].top[0].name, `class ${order[0]}`); // 7 classes: no ImageNet names
  }
  assert.is(stats.batch, 2);
  assert.is(stats.images, 3);
  const memory = gpu.arena.report();
  assert.is(memory.byCategory.gradients.peakBytes, 0, 'inference allocates no gradients');
  assert.is(memory.byCategory.optimizer.peakBytes, 0, 'inference allocates no optimizer state');
  assert.ok(memory.byCategory.activations.peakBytes > 0 && memory.byCategory.parameters.peakBytes > 0);
  assert.is(stats.peakGpuBytes, memory.peakBytes);

  const features = await extractImagenetFeatures({ gpu, config: CONFIG, weights, files, batch: 2 });
  assert.is(features.dims, 16);
  assert.equal(features.stats.load.skipped.filter((n) => n.startsWith('classifier')), ['classifier.weight', 'classifier.bias']);
  const extractor = describeDenseNet({ ...CONFIG, classes: null });
  assertClose(features.features, tfjsInference(extractor, PARAMS, inputs), TOL, 'features vs tfjs');
  assert.is(gpu.arena.report().byCategory.gradients.peakBytes, 0);

  // The command-line paths: a JSON config for --model, .npy output; --model omitted (the config in an exported file).
  const configFile = join(dir, 'tiny.json');
  await writeFile(configFile, JSON.stringify(CONFIG));
  const weightsFile = join(dir, 'cli.safetensors');
  await writeSafetensors(weightsFile, stateDictTensors(ARCH, PARAMS));
  const npy = join(dir, 'features.npy');
  const lines: string[] = [];
  await runFeatures({ weights: weightsFile, model: configFile, out: npy, batch: 8 }, files, (l) => lines.push(l), gpu);
  const read = decodeNpyFloat32(new Uint8Array(await readFile(npy)));
  assert.equal(read.shape, [3, 16]);
  assert.equal([...read.data], [...features.features]);
  assert.match(lines.join('\n'), /3 images in [\d.]+ s: [\d.]+ images\/s .*peak GPU memory [\d.]+ MiB/);
  // An existing --out is replaced only with --overwrite, and then by a rename, never truncated in
  // place: a hard link to the old file still holds the old features.
  await expectRejection(runFeatures({ weights: weightsFile, model: configFile, out: npy, batch: 8 }, files, () => {}, gpu), UsageError,
    `--out ${npy} already exists (a NumPy .npy array)`, '--overwrite');
  const oldBytes = await readFile(npy);
  const oldLink = join(dir, 'features-old.npy');
  await link(npy, oldLink);
  await runFeatures({ weights: weightsFile, model: configFile, out: npy, batch: 8, overwrite: true }, files.slice(0, 1), () => {}, gpu);
  assert.equal(decodeNpyFloat32(new Uint8Array(await readFile(npy))).shape, [1, 16], 'replaced with the new features');
  assert.equal(new Uint8Array(await readFile(oldLink)), new Uint8Array(oldBytes), 'the old file was not written into');
  const jsonOut = join(dir, 'features.json');
  await runFeatures({ weights: weightsFile, model: configFile, out: jsonOut, batch: 3 }, files, () => {}, gpu);
  const parsed = JSON.parse(await readFile(jsonOut, 'utf8')) as { shape: number[]; images: { file: string; features: number[] }[] };
  assert.equal(parsed.shape, [3, 16]);
  assert.equal(parsed.images.map((r) => r.file), files);
  assert.equal(parsed.images[2].features, [...features.features.subarray(32, 48)]);
  await expectRejection(runFeatures({ weights: weightsFile, out: join(dir, 'f.txt'), batch: 8 }, files, () => {}, gpu), UsageError, 'must end in .npy or .json');

  const model = DenseNetModel.create(gpu, CONFIG, 0);
  const exported = join(dir, 'with-config.safetensors');
  await loadTorchvisionWeights(model, weights);
  await exportTorchvisionWeights(model, exported);
  model.close();
  lines.length = 0;
  await runImagenetPredict({ weights: exported, batch: 8, top: 2 }, files.slice(0, 1), (l) => lines.push(l), gpu);
  const line = lines.find((l) => l.startsWith(files[0]))!;
  assert.ok(line.startsWith(`${files[0]}: class ${predictions[0].top[0].index} ${(100 * predictions[0].top[0].probability).toFixed(1)}%, class ${predictions[0].top[1].index}`), line);
});

test('predict dispatch: --weights or --checkpoint, not both, not neither', async () => {
  const flags: ParsedFlags = { batch: 8, top: 5 };
  await expectRejection(runPredictDispatch(flags, ['x.png'], new Set()), UsageError, '--checkpoint FILE', '--weights FILE.safetensors');
  await expectRejection(runPredictDispatch({ ...flags, checkpoint: 'c', weights: 'w' }, ['x.png'], new Set(['checkpoint', 'weights'])), UsageError,
    'give --checkpoint or --weights, not both');
  await expectRejection(runPredictDispatch({ ...flags, checkpoint: 'c', model: 'densenet121' }, ['x.png'], new Set(['checkpoint', 'model', 'top'])), UsageError,
    '--model, --top go with --weights');
  await expectRejection(runPredictDispatch({ ...flags, weights: join(dir, 'absent.safetensors') }, ['x.png'], new Set(['weights'])), UsageError,
    'absent.safetensors', 'no such file');
  const unknown = join(dir, 'unknown.safetensors');
  await writeSafetensors(unknown, [['foo', { dtype: 'F32', shape: [1], data: [1] }]]);
  await expectRejection(runPredictDispatch({ ...flags, weights: unknown }, ['x.png'], new Set(['weights'])), UsageError, 'matches no preset; give --model');
});

test.run();
