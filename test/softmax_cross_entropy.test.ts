import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; see batchnorm.test.ts.
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import type { Gpu } from '../src/gpu/device.js';
import { checkLabels, softmaxCrossEntropy, softmaxCrossEntropyReference } from '../src/kernels/softmax_cross_entropy.js';
import { ShapeError, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, finiteDifference, randomArray, seededRandom, testGpu } from './helpers.js';
import { Layout } from './pool_layout.js';

const test = suite('softmaxCrossEntropy');
test.before(async () => { await tf.setBackend('cpu'); });
test.after(closeTestGpu);

// f32 exp/log over ≤ 10 classes against float64.
const lossTol = { atol: 1e-5, rtol: 1e-5 };
const gradTol = { atol: 1e-6, rtol: 1e-5 };

/** Labels that equal the row's argmax about half the time, so `correct` is neither 0 nor N. */
function labelsFor(logits: Float32Array, n: number, k: number, seed: number): Uint32Array {
  const rng = seededRandom(seed);
  return Uint32Array.from({ length: n }, (_, s) => {
    if (rng() < 0.5) return Math.floor(rng() * k);
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[s * k + j] > logits[s * k + best]) best = j;
    return best;
  });
}

interface Result { loss: number; dlogits: Float32Array; correct: number | undefined }

/**
 * Runs the kernel with logits, dlogits, loss (and correct) at offsets inside larger buffers
 * (or all packed into one), labels at an offset in a u32 buffer; checks nothing else was written.
 */
async function runGpu(gpu: Gpu, logitsInit: Float32Array | undefined, labels: Uint32Array, k: number,
  opts: { packed?: boolean; withCorrect?: boolean; seed?: number } = {}): Promise<{ result: Result; logits: Float32Array }> {
  const n = labels.length;
  const withCorrect = opts.withCorrect ?? true;
  const layout = new Layout(gpu, opts.packed ?? false, [[n, k], [n, k], [1], ...(withCorrect ? [[1]] : [])], opts.seed ?? 1);
  const [logits, dlogits, loss, correct] = layout.refs;
  if (logitsInit) gpu.write(logits.buffer, logitsInit, logits.offset);
  const labelBuf = gpu.upload('labels', 'io', Uint32Array.from([7, 7, ...labels, 7]));
  const launches = await softmaxCrossEntropy(gpu, { logits, labels: tensor(labelBuf, [n], 2), loss, dlogits, ...(withCorrect ? { correct } : {}) });
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  const result = {
    loss: (await layout.read(2))[0], dlogits: await layout.read(1), correct: withCorrect ? (await layout.read(3))[0] : undefined,
  };
  const logitsUsed = logitsInit ?? layout.initial(0);
  if (logitsInit) gpu.write(logits.buffer, layout.initial(0), logits.offset); // restore the sentinels before checking
  await layout.expectRestUntouched('softmaxCrossEntropy');
  layout.free();
  gpu.arena.free(labelBuf);
  return { result, logits: logitsUsed };
}

function expectMatches(got: Result, want: ReturnType<typeof softmaxCrossEntropyReference>, what: string): void {
  assertClose([got.loss], [want.loss], lossTol, `${what} loss`);
  assertClose(got.dlogits, want.dlogits, gradTol, `${what} dlogits`);
  if (got.correct !== undefined) assert.is(got.correct, want.correct, `${what} correct count`);
}

test('loss, dlogits and the correct count match the reference, for N below and above one workgroup', async () => {
  const gpu = await testGpu();
  for (const [i, [n, k]] of [[3, 7], [150, 10], [1000, 3]].entries()) {
    const logits = randomArray(n * k, 10 + i, 4);
    const labels = labelsFor(logits, n, k, 20 + i);
    const want = softmaxCrossEntropyReference(logits, labels, n, k);
    assert.ok(want.correct > 0 && want.correct < n, 'labels both hit and miss the argmax');
    const { result } = await runGpu(gpu, logits, labels, k, { seed: 30 + i });
    expectMatches(result, want, `N=${n} K=${k}`);
  }
});

test('every operand packed into one buffer at unaligned offsets; correct is optional', async () => {
  const gpu = await testGpu();
  const [n, k] = [5, 6];
  const logits = randomArray(n * k, 40, 3);
  const labels = labelsFor(logits, n, k, 41);
  const want = softmaxCrossEntropyReference(logits, labels, n, k);
  expectMatches((await runGpu(gpu, logits, labels, k, { packed: true })).result, want, 'packed');
  const without = (await runGpu(gpu, logits, labels, k, { withCorrect: false })).result;
  assert.is(without.correct, undefined);
  expectMatches(without, want, 'without correct');
});

test('huge logits (±1000) stay finite: the max is subtracted before exp', async () => {
  const gpu = await testGpu();
  const [n, k] = [4, 5];
  const logits = Float32Array.from([
    1000, -1000, 999, 0, 998,
    -1000, -1000, -1000, -1000, -999,
    -1000, 1000, 1000, -1000, 0,
    1000, -1000, -1000, -1000, -1000,
  ]);
  const labels = Uint32Array.from([2, 4, 1, 1]);
  const want = softmaxCrossEntropyReference(logits, labels, n, k);
  const { result } = await runGpu(gpu, logits, labels, k);
  assert.ok(Number.isFinite(result.loss) && result.dlogits.every(Number.isFinite), 'finite loss and gradient');
  assert.ok(want.loss > 400, 'the case has a loss of hundreds (sample 3 is 2000 nats off)');
  expectMatches(result, want, '±1000');
  assert.is(result.correct, 2, 'samples 1 and 2 are correct (sample 2 ties classes 1 and 2: the first maximum wins)');
});

test('a label ≥ K gives a NaN loss on the GPU, reads nothing out of bounds, and checkLabels names it', async () => {
  const gpu = await testGpu();
  const [n, k] = [4, 6];
  const logits = randomArray(n * k, 50, 2);
  const labels = Uint32Array.from([1, 6, 3, 0]);
  const { result } = await runGpu(gpu, logits, labels, k);
  assert.ok(Number.isNaN(result.loss), `loss is NaN, got ${result.loss}`);
  const valid = softmaxCrossEntropyReference(logits, labels, n, k);
  assert.ok(Number.isNaN(valid.loss), 'the reference agrees');
  // The bad sample's gradient row is 0 and it is not counted; the others are as usual.
  assertClose(result.dlogits, valid.dlogits, gradTol, 'dlogits with a bad label');
  assert.ok(result.dlogits.subarray(k, 2 * k).every((v) => v === 0), 'the bad row is zero');
  assert.is(result.correct, valid.correct);
  assert.throws(() => checkLabels(labels, k), /label 6 at index 1 is not a class index in \[0, 6\)/);
  assert.not.throws(() => checkLabels(Uint32Array.from([0, 5, 2]), k));
});

test('matches tf.losses.softmaxCrossEntropy and its gradient', async () => {
  const gpu = await testGpu();
  const [n, k] = [8, 10];
  const logits = randomArray(n * k, 60, 5);
  const labels = labelsFor(logits, n, k, 61);
  const { result } = await runGpu(gpu, logits, labels, k);
  tf.tidy(() => {
    const onehot = tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), k);
    const lossOf = (l: tf.Tensor) => tf.losses.softmaxCrossEntropy(onehot, l); // mean over the batch by default
    const l = tf.tensor2d(logits, [n, k]);
    assertClose([result.loss], lossOf(l).dataSync(), lossTol, 'loss vs tfjs');
    assertClose(result.dlogits, tf.grad(lossOf)(l).dataSync(), gradTol, 'dlogits vs tfjs');
    const argmax = tf.argMax(l, 1).dataSync();
    assert.is(result.correct, argmax.filter((a, i) => a === labels[i]).length, 'correct vs tf.argMax');
  });
});

test('the reference dlogits match finite differences of the reference loss', () => {
  const [n, k] = [3, 5];
  const logits = randomArray(n * k, 70, 3);
  const labels = Uint32Array.from([4, 0, 2]);
  const numeric = finiteDifference((l) => softmaxCrossEntropyReference(l, labels, n, k).loss, logits);
  assertClose(softmaxCrossEntropyReference(logits, labels, n, k).dlogits, numeric, { atol: 1e-8, rtol: 1e-6 }, 'finite differences');
});

test('shape errors name the op, the operand and both shapes, before anything is compiled or recorded', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'activations', 256);
  const out = gpu.zeros('out', 'gradients', 256);
  const labelBuf = gpu.upload('labels', 'io', new Uint32Array(8));
  const [pipelines, bytes] = [gpu.pipelines.pipelinesCreated, gpu.arena.liveBytes];
  const refuses = async (call: Promise<unknown>, message: string | RegExp) => {
    await call.then(
      () => assert.unreachable(`should throw ${message}`),
      (e: Error) => { assert.ok(e instanceof ShapeError, `${e.message} is a ShapeError`); assert.match(e.message, message); },
    );
  };
  const logits = tensor(buf, [4, 10]);
  const ok = { logits, labels: tensor(labelBuf, [4]), loss: tensor(out, [1]), dlogits: tensor(out, [4, 10], 8) };
  await refuses(softmaxCrossEntropy(gpu, { ...ok, logits: tensor(buf, [40]) }), 'softmaxCrossEntropy: "logits" has shape [40], expected [N, K]');
  await refuses(softmaxCrossEntropy(gpu, { ...ok, labels: tensor(labelBuf, [5]) }), 'softmaxCrossEntropy: "labels" has shape [5], expected [4]');
  await refuses(softmaxCrossEntropy(gpu, { ...ok, loss: tensor(out, [2]) }), 'softmaxCrossEntropy: "loss" has shape [2], expected [1]');
  await refuses(softmaxCrossEntropy(gpu, { ...ok, dlogits: tensor(out, [10, 4], 8) }), 'softmaxCrossEntropy: "dlogits" has shape [10, 4], expected [4, 10]');
  await refuses(softmaxCrossEntropy(gpu, { ...ok, correct: tensor(out, [1, 1], 100) }), 'softmaxCrossEntropy: "correct" has shape [1, 1], expected [1]');
  await refuses(softmaxCrossEntropy(gpu, { ...ok, correct: tensor(out, [1], 20) }), /"dlogits" \(elements \[8, 48\)\) and "correct" \(elements \[20, 21\)\) overlap/);
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'nothing was compiled');
  assert.is(gpu.arena.liveBytes, bytes, 'no launch (uniform buffer) was created');
  for (const b of [buf, out, labelBuf]) gpu.arena.free(b);
});

test.run();
