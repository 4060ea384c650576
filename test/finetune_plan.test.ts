// Fine-tuning without a GPU: the planned memory of a step with --freeze features (no gradients,
// optimizer state or kept activations for the features), the frozen graph's ops (eval-mode batch
// norm: no batch statistics, no running updates, no dropout), and the option checks: unknown
// --freeze parts, the fine-tuning learning rate, --freeze on resume, weights for another model.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planDenseNetMemory } from '../src/models/memory_plan.js';
import { buildDenseNetGraph, checkFreeze, classifierRange, MEMORY_STRATEGIES } from '../src/models/densenet_graph.js';
import { describeDenseNet, preset } from '../src/models/index.js';
import { parameterOffsets } from '../src/models/model.js';
import { checkTrainOptions, defaultLearningRate, OptionsError, type TrainOptions } from '../src/train/options.js';
import { resumeOptionChanges } from '../src/train/resume_options.js';
import { parseFlags } from '../src/cli/args.js';
import { TRAIN_FLAGS, trainOptionsFromFlags } from '../src/cli/train.js';
import { fineTuneWeightsReader } from '../src/cli/finetune.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { torchvisionStateDict, WeightsError } from '../src/io/torchvision.js';
import type { ArenaBuffer } from '../src/gpu/arena.js';

const test = suite('fine-tuning: plan and options');
const root = mkdtempSync(join(tmpdir(), 'finetune-plan-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

for (const strategy of MEMORY_STRATEGIES) {
  test(`${strategy}: --freeze features plans fewer bytes: gradients and optimizer state of the classifier only, fewer activations`, () => {
    const config = preset('digits-tiny');
    const full = planDenseNetMemory(config, { batch: 16, strategy, training: true });
    const frozen = planDenseNetMemory(config, { batch: 16, strategy, training: true, freeze: 'features' });
    const arch = describeDenseNet(config);
    const classifier = arch.parameters.filter((p) => p.name.startsWith('classifier.')).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    // SGD velocity for the classifier alone (256-byte aligned), against one for every parameter.
    assert.ok(frozen.byCategory.optimizer <= Math.ceil((classifier * 4) / 256) * 256 + 256, `optimizer ${frozen.byCategory.optimizer} B for ${classifier} classifier parameters`);
    assert.ok(full.byCategory.optimizer > 20 * frozen.byCategory.optimizer, `optimizer ${full.byCategory.optimizer} vs ${frozen.byCategory.optimizer}`);
    assert.ok(frozen.byCategory.gradients < full.byCategory.gradients / 20, `gradients ${frozen.byCategory.gradients} vs ${full.byCategory.gradients}`);
    assert.ok(frozen.byCategory.activations < full.byCategory.activations, `activations ${frozen.byCategory.activations} vs ${full.byCategory.activations}`);
    assert.ok(frozen.totalBytes < full.totalBytes / 2, `total ${frozen.totalBytes} vs ${full.totalBytes}`);
    // The parameters themselves are the same buffers either way.
    assert.is(frozen.byCategory.parameters, full.byCategory.parameters);
  });
}

/** The frozen training graph of digits-fast (dropout on, to see it gone from the features). */
function frozenGraph(freeze: 'none' | 'features') {
  const config = { ...preset('digits-fast'), dropRate: 0.2 };
  const arch = describeDenseNet(config);
  const { offsets, trainableElements, runningElements } = parameterOffsets(arch);
  const stand = (bytes: number) => ({ buffer: undefined as unknown as GPUBuffer, bytes, label: 'p', category: 'parameters' }) as ArenaBuffer;
  const layout = { trainable: { buffer: stand(trainableElements * 4), offset: 0, shape: [trainableElements] }, running: { buffer: stand(runningElements * 4), offset: 0, shape: [runningElements] }, offsets };
  return { built: buildDenseNetGraph(arch, layout, { batch: 8, strategy: 'fused', training: true, freeze }), layout };
}

test('frozen features run as in inference: no batch statistics, running updates or dropout; backward only for the classifier', () => {
  const { built, layout } = frozenGraph('features');
  const names = built.graph.ops.map((o) => o.name);
  assert.not.ok(names.some((n) => n.endsWith('.statistics')), 'no batch statistics');
  assert.not.ok(names.some((n) => n.endsWith('.running')), 'no running-statistics update');
  assert.not.ok(names.some((n) => n.includes('dropout')), 'no dropout');
  const backward = built.graph.ops.filter((o) => o.phase === 'backward').map((o) => o.name);
  assert.equal(backward, ['classifier.backward']);
  const range = classifierRange(layout);
  assert.is(built.gradients!.shape[0], range.elements);
  assert.is(built.gradientsOffset, range.offset);
  const optimizerState = built.graph.storages.filter((s) => s.category === 'optimizer');
  assert.equal(optimizerState.map((s) => s.elements), [range.elements]);
  // The unfrozen graph, for contrast, has all of them.
  const full = frozenGraph('none').built.graph.ops.map((o) => o.name);
  assert.ok(full.some((n) => n.endsWith('.statistics')) && full.some((n) => n.endsWith('.running')) && full.some((n) => n.includes('dropout')));
});

function flags(...args: string[]): TrainOptions {
  return trainOptionsFromFlags(parseFlags('train', args, TRAIN_FLAGS).flags);
}

test('--freeze: an unknown part names the valid ones; lr defaults lower when fine-tuning', () => {
  assert.throws(() => checkFreeze('head'), /unknown --freeze part "head": use one of none, features/);
  assert.throws(() => checkTrainOptions(flags('--freeze', 'classifier')), (e: Error) => e instanceof OptionsError && /--freeze part "classifier": use one of none, features/.test(e.message));
  assert.is(flags().lr, 0.1);
  assert.is(flags('--weights', 'w.safetensors').lr, 0.01);
  assert.is(flags('--weights', 'w.safetensors', '--optimizer', 'adam').lr, 1e-4);
  assert.is(flags('--weights', 'w.safetensors', '--lr', '0.3').lr, 0.3);
  assert.is(defaultLearningRate('adamw', true), 1e-4);
  assert.throws(() => checkTrainOptions(flags('--keep-classifier')), /--keep-classifier keeps the classifier of --weights FILE/);
  assert.throws(() => checkTrainOptions(flags('--weights', 'runs/x/last.ckpt')), /expected a \.safetensors file.*--resume/);
});

test('resume: --freeze and --weights cannot change (the optimizer state covers only what trains); an old checkpoint counts as --freeze none', () => {
  const saved = flags('--weights', 'w.safetensors', '--freeze', 'features');
  assert.throws(() => resumeOptionChanges(saved, { ...saved, freeze: 'none' }), /--resume cannot change this option: --freeze \(features in the checkpoint, none asked\): the checkpoint's optimizer state covers only/);
  assert.throws(() => resumeOptionChanges(saved, { ...saved, weights: 'other.safetensors' }), /--weights/);
  assert.equal(resumeOptionChanges(saved, { ...saved, epochs: 9 }), { epochs: { from: saved.epochs, to: 9 } });
  const old = { ...flags() } as Partial<TrainOptions>;
  delete old.freeze;
  delete old.keepClassifier;
  delete old.svhnExtra;
  assert.equal(resumeOptionChanges(old as TrainOptions, flags()), {});
});

test('weights for another architecture or class count: every tensor named with both shapes and the model, and what to pass', async () => {
  const tiny = preset('digits-tiny');
  const arch = describeDenseNet(tiny);
  const values = new Map(arch.parameters.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]));
  const file = join(root, 'tiny.safetensors');
  await writeSafetensors(file, torchvisionStateDict(arch, values), { 'densenet_wgsl.config': JSON.stringify(tiny) });
  const read = fineTuneWeightsReader(file);
  // The features fit; a new classifier for 3 classes is not in the file and is not asked for.
  const ok = await read({ ...tiny, classes: 3 }, false);
  assert.not.ok([...ok.values.keys()].some((n) => n.startsWith('classifier.')));
  assert.is(ok.values.size, arch.parameters.length - 2);
  assert.match(ok.summary, 'a new classifier for 3 classes');
  const kept = await read(tiny, true);
  assert.ok(kept.values.has('classifier.weight'));
  try {
    await read({ ...tiny, classes: 3 }, true);
    assert.unreachable('a classifier of 10 classes kept for 3');
  } catch (e) {
    assert.instance(e, WeightsError);
    assert.match((e as Error).message, /shape mismatch classifier\.weight: file \[10, \d+\], model \[3, \d+\]/);
    assert.match((e as Error).message, 'drop --keep-classifier');
  }
  try {
    await read(preset('digits-small'), false);
    assert.unreachable('digits-tiny weights loaded into digits-small');
  } catch (e) {
    assert.instance(e, WeightsError);
    const m = (e as Error).message;
    assert.match(m, /^train: --weights .*tiny\.safetensors do not fit model "digits-small" \(.*\); the file holds weights for model "digits-tiny" \(pass --model digits-tiny\); nothing was loaded:\n/);
    assert.match(m, /shape mismatch features\.conv0\.weight: file \[16, 1, 3, 3\], model \[24, 1, 3, 3\]/);
    assert.match(m, 'the file holds weights for model "digits-tiny" (pass --model digits-tiny)');
  }
});

test.run();
