// Fine-tuning on the GPU (digits-tiny, tiny batches): a session with --freeze features leaves every
// feature parameter and running statistic bit for bit as it was while the classifier changes, and
// its loss is that of eval-mode features (an inference session's logits); then the whole path: a
// run exported by `export`, fine-tuned from it with a new classifier and frozen features, resumed
// (and refused a --freeze change), and weights for another architecture refused before any GPU work.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { preset } from '../src/models/index.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { classifierRange } from '../src/models/densenet_graph.js';
import { softmaxCrossEntropyReference } from '../src/kernels/softmax_cross_entropy.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { OptionsError, type TrainOptions } from '../src/train/options.js';
import { train } from '../src/train/trainer.js';
import { exportTorchvisionWeights, WeightsError } from '../src/io/torchvision.js';
import { fineTuneWeightsReader } from '../src/cli/finetune.js';
import { closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('fine-tuning: frozen features, --weights, resume');
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'densenet-finetune-')); });
test.after(async () => { await closeTestGpu(); await rm(root, { recursive: true, force: true }); });

const isClassifier = (name: string) => name.startsWith('classifier.');
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('--freeze features: feature parameters and running statistics bit-identical after steps, the classifier changes, the loss is eval-mode', async () => {
  const gpu = await testGpu();
  const config = { ...preset('digits-tiny'), dropRate: 0.2 }; // dropout must be off in frozen features too
  const model = DenseNetModel.create(gpu, config, 3);
  const batch = 8;
  const session = await TrainingSession.create(model, { batch, memory: 'fused', seed: 1, freeze: 'features',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 } });
  const inference = await InferenceSession.create(model, { batch, memory: 'fused' });
  try {
    const before = await model.readParameters();
    const images = randomArray(batch * 28 * 28, 11);
    const labels = Uint32Array.from({ length: batch }, (_, i) => (i * 3) % 10);
    const logits = await inference.run(images);
    const expected = softmaxCrossEntropyReference(logits, labels, batch, 10).loss;
    const first = await session.step(images, labels, 0.1);
    // The frozen step's loss is the loss of inference logits (running statistics, no dropout), to float32 accuracy.
    assert.ok(Math.abs(first.loss - expected) <= 1e-5 + 1e-5 * Math.abs(expected), `loss ${first.loss}, eval-mode ${expected}`);
    for (let s = 0; s < 2; s++) await session.step(randomArray(batch * 28 * 28, 20 + s), labels, 0.1);
    const grads = await session.readGradients();
    assert.equal([...grads.keys()].sort(), ['classifier.bias', 'classifier.weight'], 'gradients for the classifier only');
    const after = await model.readParameters();
    let frozen = 0;
    for (const [name, value] of before) {
      if (isClassifier(name)) {
        assert.not.ok(sameBits(value, after.get(name)!), `${name} did not change`);
      } else {
        assert.ok(sameBits(value, after.get(name)!), `${name} changed under --freeze features`);
        frozen++;
      }
    }
    assert.ok(frozen > 30, `${frozen} frozen tensors checked`);
    const state = await session.readOptimizerState();
    // SGD velocity over the classifier's (256-byte aligned) range alone.
    assert.equal([...state].map(([n, v]) => [n, v.length]), [['optimizer.velocity', classifierRange(model.layout).elements]]);
    assert.ok(classifierRange(model.layout).elements < session.trainedCount + 128);
  } finally {
    inference.destroy();
    session.destroy();
    model.close();
  }
  await closeTestGpu();
});

function options(outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: 'digits-tiny', dataset: 'mnist', epochs: 1, batch: 16, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true,
    weightDecay: 1e-4, schedule: 'constant', augment: false, seed: 5, memory: 'fused', outDir, limit: 64, freeze: 'none', ...extra,
  };
}

test('train → export → fine-tune with a new classifier and frozen features → resume; --freeze change and another architecture refused', async () => {
  const base = join(root, 'base');
  await train(options(base), {}, () => undefined, { progressStream: sink });
  const exported = join(root, 'base.safetensors');
  const baseCheckpoint = await readCheckpoint(join(base, 'last.ckpt'));
  await exportTorchvisionWeights({ ...baseCheckpoint, name: 'base' }, exported);
  const baseTensors = baseCheckpoint.tensors;

  const tuned = join(root, 'tuned');
  const lines: string[] = [];
  const ft = options(tuned, { weights: exported, freeze: 'features', seed: 9 });
  await train(ft, {}, (l) => lines.push(l), { progressStream: sink, readWeights: fineTuneWeightsReader(exported) });
  const log = lines.join('\n');
  assert.match(log, /fine-tuning from .*base\.safetensors: \d+ tensors loaded \(every layer but the classifier\); a new classifier for 10 classes/);
  assert.match(log, /features frozen \(eval mode; [\d,]+ classifier parameters train\)/, log);
  const checkFeatures = async (file: string) => {
    const c = await readCheckpoint(file);
    assert.is(c.header.options && (c.header.options as TrainOptions).freeze, 'features');
    for (const [name, value] of baseTensors) {
      if (name.startsWith('optimizer.')) continue;
      if (isClassifier(name)) assert.not.ok(sameBits(value, c.tensors.get(name)!), `${name}: the classifier is new and trained`);
      else assert.ok(sameBits(value, c.tensors.get(name)!), `${name} differs from the exported weights`);
    }
    const velocity = c.tensors.get('optimizer.velocity')!;
    assert.ok(velocity.length < 2000, `optimizer state of the classifier only (${velocity.length} values)`);
  };
  await checkFeatures(join(tuned, 'last.ckpt'));

  // Resume continues the frozen run; changing --freeze is refused by name.
  try {
    await train({ ...ft, resume: join(tuned, 'last.ckpt'), freeze: 'none', epochs: 2 }, {}, () => undefined, { progressStream: sink });
    assert.unreachable('--freeze changed on resume');
  } catch (e) {
    assert.instance(e, OptionsError);
    assert.match((e as Error).message, /--resume cannot change this option: --freeze \(features in the checkpoint, none asked\)/);
  }
  const resumed = await train({ ...ft, resume: join(tuned, 'last.ckpt'), epochs: 2 }, {}, () => undefined, { progressStream: sink });
  assert.is(resumed.epochs, 2);
  await checkFeatures(join(tuned, 'last.ckpt'));

  // Another architecture: refused with the tensor, both shapes and the model, before the run directory or the GPU.
  const wrong = join(root, 'wrong');
  const wrongLines: string[] = [];
  try {
    await train(options(wrong, { model: 'digits-small', weights: exported }), {}, (l) => wrongLines.push(l), { progressStream: sink, readWeights: fineTuneWeightsReader(exported) });
    assert.unreachable('digits-tiny weights accepted for digits-small');
  } catch (e) {
    assert.instance(e, WeightsError);
    assert.match((e as Error).message, /do not fit model "digits-small".*\n(.*\n)*\s+shape mismatch features\.conv0\.weight: file \[16, 1, 3, 3\], model \[24, 1, 3, 3\]/);
  }
  assert.not.ok(existsSync(wrong), 'nothing written');
  assert.equal(wrongLines, [], 'no adapter opened');
});

test.run();
