import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MEMORY_CATEGORIES } from '../src/gpu/arena.js';
import { kernelClass } from '../src/gpu/profile.js';
import { MEMORY_STRATEGIES } from '../src/models/densenet_graph.js';
import { planDenseNetMemory } from '../src/models/memory_plan.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('densenet training');
test.after(closeTestGpu);

const config = preset('densenet-bc-tiny');
const N = 4;
const [C, H, W] = config.inputShape;
const images = (seed: number) => randomArray(N * C * H * W, seed);
const labels = Uint32Array.from({ length: N }, (_, i) => (i * 3) % 10);
const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };

test('no leak and no compilation after the first step: arena bytes after step 1 equal those after step 50', async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, config, 1);
  const session = await TrainingSession.create(model, { batch: N, memory: 'fused', optimizer: sgd });
  await session.step(images(1), labels, 0.05);
  const after1 = gpu.arena.report();
  const buffers1 = gpu.arena.liveBuffers;
  const pipelines = gpu.pipelines.pipelinesCreated;
  let last = { loss: NaN, correct: 0 };
  for (let i = 2; i <= 50; i++) last = await session.step(images(i % 3), labels, 0.05);
  const after50 = gpu.arena.report();
  assert.is(after50.liveBytes, after1.liveBytes, 'live bytes');
  assert.is(after50.peakBytes, after1.peakBytes, 'peak bytes');
  assert.is(gpu.arena.liveBuffers, buffers1, 'live buffer count');
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'no pipeline created after step 1');
  assert.ok(Number.isFinite(last.loss) && last.loss < 0.5, `50 steps on 3 batches fit them (loss ${last.loss})`);
  session.destroy();
  model.close();
  assert.is(gpu.arena.liveBytes, 0, 'closing frees everything');
});

test('the planned bytes of every category equal what the arena measures, under every strategy', async () => {
  const gpu = await testGpu();
  for (const memory of MEMORY_STRATEGIES) {
    gpu.arena.resetPeak();
    const model = DenseNetModel.create(gpu, config, 2);
    const session = await TrainingSession.create(model, { batch: N, memory, optimizer: sgd });
    await session.step(images(5), labels, 0.1);
    const planned = planDenseNetMemory(config, { batch: N, strategy: memory, training: true, optimizer: sgd, kernels: kernelClass(gpu) });
    const measured = gpu.arena.report();
    for (const category of MEMORY_CATEGORIES.filter((c) => c !== 'uniforms')) {
      assert.is(measured.byCategory[category].peakBytes, planned.byCategory[category], `${memory}: ${category}`);
    }
    session.destroy();
    model.close();
  }
});

test('inference allocates no gradient or optimizer memory and agrees across strategies', async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, config, 3);
  const training = await TrainingSession.create(model, { batch: N, memory: 'shared', optimizer: sgd });
  for (let i = 0; i < 3; i++) await training.step(images(i), labels, 0.1); // running statistics move away from 0/1
  training.destroy();
  gpu.arena.resetPeak();
  const outputs: Float32Array[] = [];
  for (const memory of MEMORY_STRATEGIES) {
    const inference = await InferenceSession.create(model, { batch: N, memory });
    outputs.push(await inference.run(images(9)));
    inference.destroy();
  }
  const report = gpu.arena.report();
  assert.is(report.byCategory.gradients.peakBytes, 0);
  assert.is(report.byCategory.optimizer.peakBytes, 0);
  for (const out of outputs.slice(1)) out.forEach((v, i) => assert.ok(Math.abs(v - outputs[0][i]) <= 1e-5 + 1e-4 * Math.abs(outputs[0][i]), `logit ${i}`));
  model.close();
});

test('bad input is refused before anything is submitted, naming the problem', async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, config, 4);
  const session = await TrainingSession.create(model, { batch: N, memory: 'fused', optimizer: sgd });
  await session.step(images(1), new Uint32Array([0, 1, 2, 10]), 0.1).then(
    () => assert.unreachable('label 10 of 10 classes'), (e: Error) => assert.match(e.message, /label/i));
  await session.step(images(1).subarray(1), labels, 0.1).then(
    () => assert.unreachable('short batch'), (e: Error) => assert.match(e.message, /batches of 4 images of \[3, 16, 16\]/));
  await session.step(images(1), labels, NaN).then(
    () => assert.unreachable('NaN lr'), (e: Error) => assert.match(e.message, /learning rate/));
  assert.is(session.stepsTaken, 0, 'no step was taken');
  await TrainingSession.create(model, { batch: 1, memory: 'fused', optimizer: sgd }).then(
    () => assert.unreachable('batch 1'), (e: Error) => assert.match(e.message, /batch >= 2/));
  await TrainingSession.create(model, { batch: N, memory: 'bogus' as never, optimizer: sgd }).then(
    () => assert.unreachable('bad strategy'), (e: Error) => assert.match(e.message, /naive, shared, recompute, fused/));
  session.destroy();
  model.close();
});

test.run();
