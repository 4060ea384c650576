// ONNX Runtime against the engine: the same random weights go into the engine's GPU model and,
// through `export`, into an .onnx file; the engine's logits come from its WGSL kernels
// (InferenceSession), ONNX Runtime's from its CPU execution provider on the file. They must agree
// to max |ort − engine| / max |engine| ≤ 1e-4 (float32 sums in different orders; measured ~1e-6).
// Covered: the digits model (strided stem) from a checkpoint, at two batch sizes and with the graph
// unoptimized; DenseNet-BC-100-12 (cifar stem) from safetensors; DenseNet-121 at 224×224 (imagenet
// stem with max pool; ~12 s of lavapipe at batch 1); a non-BC feature extractor with dropout.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runExport } from '../src/cli/export.js';
import { encodeDenseNetOnnx } from '../src/io/onnx/densenet_onnx.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { torchvisionStateDict } from '../src/io/torchvision.js';
import { denseNetConfig, describeDenseNet, preset, type DenseNetConfig } from '../src/models/index.js';
import { writeCheckpoint } from '../src/train/checkpoint.js';
import { closeTestGpu, testGpu } from './helpers.js';
import { engineOutput, maxRelativeError, ortRun, randomDenseNetParams, randomInput } from './onnx_helpers.js';

const test = suite('onnx runtime vs engine');
const TOLERANCE = 1e-4;
let dir = '';
const quiet = () => {};
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'onnx-runtime-test-')); });
test.after(async () => {
  await closeTestGpu();
  await rm(dir, { recursive: true, force: true });
});

/** Checks and reports the error; a NaN or constant output would pass a relative check, so the scale must be sane too. */
function agree(what: string, ort: ArrayLike<number>, engine: ArrayLike<number>): number {
  const err = maxRelativeError(ort, engine);
  let scale = 0;
  for (let i = 0; i < engine.length; i++) scale = Math.max(scale, Math.abs(engine[i]));
  console.log(`  ${what}: max relative error ${err.toExponential(2)} (outputs' scale ${scale.toPrecision(3)}, ${engine.length} values)`);
  assert.ok(scale > 1e-3 && scale < 1e4, `${what}: engine outputs' scale ${scale}`);
  assert.ok(err <= TOLERANCE, `${what}: ONNX Runtime and the engine differ by ${err} of the outputs' scale (tolerance ${TOLERANCE})`);
  return err;
}

const imagesOf = (config: DenseNetConfig, batch: number, seed: number) => randomInput(batch * config.inputShape.reduce((a, b) => a * b, 1), seed);

test('digits model (digits-fast) from a checkpoint: batch 4 and batch 1, optimized and as written, softmax output; a changed weight is caught', async () => {
  const gpu = await testGpu();
  const config = preset('digits-fast');
  const params = randomDenseNetParams(config, 21);
  const checkpoint = join(dir, 'digits.ckpt');
  await writeCheckpoint(checkpoint, { header: { format: 'densenet-wgsl-training-v1', config, stepsTaken: 1, mean: [0.13], std: [0.31] }, tensors: params });
  const file = join(dir, 'digits.onnx');
  await runExport({ checkpoint, out: file, softmax: true }, quiet);

  const batch = 4;
  const images = imagesOf(config, batch, 22);
  const engine = await engineOutput(gpu, config, params, images, batch);
  const dims = [batch, ...config.inputShape];
  const ort = await ortRun(file, images, dims);
  assert.equal(ort.logits.dims, [batch, 10]);
  agree('digits-fast, batch 4', ort.logits.data, engine);
  agree('digits-fast, batch 4, graph unoptimized', (await ortRun(file, images, dims, { graphOptimizationLevel: 'disabled' })).logits.data, engine);
  const perImage = images.length / batch;
  for (let i = 0; i < batch; i++) {
    const one = await ortRun(file, images.slice(i * perImage, (i + 1) * perImage), [1, ...config.inputShape]);
    assert.ok(maxRelativeError(one.logits.data, engine.subarray(i * 10, (i + 1) * 10)) <= TOLERANCE, `image ${i} alone at batch 1`);
  }
  // Softmax of the engine's logits, computed here in float64.
  for (let i = 0; i < batch; i++) {
    const row = [...engine.subarray(i * 10, (i + 1) * 10)];
    const max = Math.max(...row);
    const sum = row.reduce((s, v) => s + Math.exp(v - max), 0);
    row.forEach((v, j) => assert.ok(Math.abs(ort.probabilities.data[i * 10 + j] - Math.exp(v - max) / sum) < 1e-5, `probability ${i},${j}`));
  }

  // The comparison can fail: norm5's running variance ×4 in the file only.
  const changed = new Map(params);
  changed.set('features.norm5.running_var', params.get('features.norm5.running_var')!.map((v) => 4 * v));
  const wrong = await ortRun(encodeDenseNetOnnx(config, changed), images, dims);
  const err = maxRelativeError(wrong.logits.data, engine);
  assert.ok(err > 100 * TOLERANCE, `a changed BN variance should show, error ${err}`);
});

test('DenseNet-BC-100-12 from safetensors (export --weights --model)', async () => {
  const gpu = await testGpu();
  const config = preset('densenet-bc-100-12');
  const params = randomDenseNetParams(config, 31);
  const weights = join(dir, 'bc100.safetensors');
  await writeSafetensors(weights, torchvisionStateDict(describeDenseNet(config), params));
  const file = join(dir, 'bc100.onnx');
  await runExport({ weights, model: 'densenet-bc-100-12', out: file }, quiet);
  const batch = 2;
  const images = imagesOf(config, batch, 32);
  const engine = await engineOutput(gpu, config, params, images, batch);
  agree('densenet-bc-100-12, batch 2', (await ortRun(file, images, [batch, ...config.inputShape])).logits.data, engine);
});

test('DenseNet-121 at 224×224 (imagenet stem, max pool), batch 1', async () => {
  const gpu = await testGpu();
  const config = preset('densenet121');
  const params = randomDenseNetParams(config, 41);
  const images = imagesOf(config, 1, 42);
  const t0 = performance.now();
  const engine = await engineOutput(gpu, config, params, images, 1);
  const t1 = performance.now();
  const ort = await ortRun(encodeDenseNetOnnx(config, params), images, [1, ...config.inputShape]);
  console.log(`  densenet121 at 224: engine ${((t1 - t0) / 1000).toFixed(1)} s (build, compile, run), ONNX Runtime ${((performance.now() - t1) / 1000).toFixed(1)} s (encode, load, run)`);
  agree('densenet121, batch 1', ort.logits.data, engine);
});

test('other input sizes than the one trained at (height, width are dynamic): ONNX Runtime equals the engine built at that size', async () => {
  const gpu = await testGpu();
  // A cifar stem (3×3 conv, two 2×2 transitions) at 40×36, and an imagenet stem (7×7/2 conv, 3×3/2
  // max pool with padding, transitions) at odd 57×45: every pool and padding meets an odd size.
  const cases: [DenseNetConfig, [number, number]][] = [
    [denseNetConfig({ name: 'cifar-stem-sizes', blocks: [2, 2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, inputShape: [3, 32, 32], classes: 5 }), [40, 36]],
    [denseNetConfig({ name: 'imagenet-stem-sizes', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5, stem: 'imagenet', inputShape: [3, 48, 48], classes: 5 }), [57, 45]],
  ];
  for (const [trained, [h, w]] of cases) {
    const params = randomDenseNetParams(trained, 61);
    const file = encodeDenseNetOnnx(trained, params);
    const other = { ...trained, inputShape: [3, h, w] as [number, number, number] };
    const batch = 2;
    const images = imagesOf(other, batch, 62);
    const ort = await ortRun(file, images, [batch, 3, h, w]);
    assert.equal(ort.logits.dims, [batch, 5]);
    agree(`${trained.name} trained at ${trained.inputShape.slice(1).join('×')}, run at ${h}×${w}`, ort.logits.data, await engineOutput(gpu, other, params, images, batch));
  }
});

test('a non-BC feature extractor with dropout: output "features" equals the engine\'s pooled features', async () => {
  const gpu = await testGpu();
  const config = denseNetConfig({ name: 'tiny-plain-features', blocks: [2, 3], growthRate: 4, initialFeatures: 6, bottleneck: false, dropRate: 0.2, inputShape: [3, 12, 12], classes: null });
  const params = randomDenseNetParams(config, 51);
  const batch = 3;
  const images = imagesOf(config, batch, 52);
  const channelMajor = await engineOutput(gpu, config, params, images, batch); // [features, batch]
  const features = describeDenseNet(config).features;
  const engine = new Float32Array(batch * features);
  for (let f = 0; f < features; f++) for (let i = 0; i < batch; i++) engine[i * features + f] = channelMajor[f * batch + i];
  const ort = await ortRun(encodeDenseNetOnnx(config, params), images, [batch, ...config.inputShape]);
  assert.equal(ort.features.dims, [batch, features]);
  agree('tiny non-BC feature extractor with dropout, batch 3', ort.features.data, engine);
});

test.run();
