// The whole training graph against TensorFlow.js (bench/tfjs_densenet.ts, cpu backend) with the
// same weights, under every memory strategy: step-1 loss and every parameter gradient; every
// parameter and running statistic after three SGD steps on different batches (a BN whose running
// statistics were updated twice, e.g. again during recomputation, shows here); inference logits
// with running statistics. Dropout cannot be reproduced by tfjs: with dropout, the strategies are
// compared with each other.
//
// Tolerances. Both sides compute in float32 in different summation orders through ~15 layers
// (9 BNs): a conv output sums ≤ 9·Cin ≈ 300 products and a BN statistic ≤ N·H·W = 1024 values, so
// one layer's relative rounding error is ~1e-7..1e-6, and BN's division by σ can amplify it a few
// times per layer: we expect ≲ 1e-5 relative, and observe ~1e-6 (DENSENET_TFJS_VERBOSE=1 prints the
// worst errors: loss ≤ 2.4e-7, gradient elements ≤ 2.4e-7 with ‖Δ‖/‖ref‖ ≤ 1.2e-6, parameters after
// three steps ≤ 2.4e-7, logits ≤ 6e-8 on lavapipe).
// - loss (≈ ln 10): atol 1e-5 + rtol 1e-5.
// - gradients: element-wise atol 1e-5 + rtol 1e-3 (rtol for the many elements near zero where
//   cancellation leaves only absolute error), and per tensor ‖ours − tfjs‖₂ ≤ 1e-4·‖tfjs‖₂ + 1e-7,
//   so a wrong gradient of a parameter whose entries are all small cannot hide under atol.
// - parameters and running statistics after three SGD steps (lr 0.1, momentum 0.9): atol 1e-6 +
//   rtol 1e-5. Gradient errors move a weight by ~0.3·1e-6·|g|; what is left is float32 rounding of
//   |p| ≲ 2 (≤ 1 ulp, 1.2e-7, per step and side). Tight enough to catch the classic running-
//   statistics bugs: a second update per step, or the biased variance in running_var (which at
//   N·H·W = 1024 differs by 0.1·σ²/1023 ≈ 1e-4).
// - inference logits: atol 1e-5 + rtol 1e-4.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import { describeDenseNet, denseNetConfig, preset, type ArchitectureSpec, type DenseNetConfig } from '../src/models/index.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';
import type { OptimizerConfig } from '../src/graph/ops/optimizer.js';
import { sgdStep, tfjsInference, tfjsTrainingStep, trainableNames, type ParameterMap } from '../bench/tfjs_densenet.js';
import { assertClose, closeTestGpu, randomArray, seededRandom, testGpu, type Tolerance } from './helpers.js';

const test = suite('densenet vs tfjs');
test.before(async () => { await tf.setBackend('cpu'); });
test.after(closeTestGpu);

const LOSS_TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };
const GRAD_TOL: Tolerance = { atol: 1e-5, rtol: 1e-3 };
const GRAD_NORM_TOL: Tolerance = { atol: 1e-7, rtol: 1e-4 };
const PARAM_TOL: Tolerance = { atol: 1e-6, rtol: 1e-5 };
const LOGITS_TOL: Tolerance = { atol: 1e-5, rtol: 1e-4 };

const SGD = { momentum: 0.9, nesterov: true, weightDecay: 1e-4 };
const OPTIMIZER: OptimizerConfig = { kind: 'sgd', lr: 0.1, ...SGD };
const LR = 0.1;
const STEPS = 3;
const VERBOSE = process.env.DENSENET_TFJS_VERBOSE === '1';

interface Batch { images: Float32Array; labels: Uint32Array }

function batchOf(config: DenseNetConfig, n: number, seed: number): Batch {
  const [c, h, w] = config.inputShape;
  const rng = seededRandom(seed + 1000);
  return { images: randomArray(n * c * h * w, seed), labels: Uint32Array.from({ length: n }, () => Math.floor(rng() * config.classes!)) };
}

/** Worst |a − b|, ‖a − b‖₂, ‖b‖₂ and their ratio. */
function errors(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; diffNorm: number; refNorm: number; norm: number } {
  let abs = 0; let d2 = 0; let b2 = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    abs = Math.max(abs, Math.abs(d));
    d2 += d * d; b2 += b[i] * b[i];
  }
  const diffNorm = Math.sqrt(d2);
  const refNorm = Math.sqrt(b2);
  return { abs, diffNorm, refNorm, norm: refNorm > 0 ? diffNorm / refNorm : diffNorm };
}

/** Tracks the worst error per kind of comparison, for DENSENET_TFJS_VERBOSE. */
class Worst {
  private readonly worst = new Map<string, { abs: number; norm: number; where: string }>();
  note(kind: string, where: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
    const { abs, norm } = errors(a, b);
    const w = this.worst.get(kind);
    if (!w || abs > w.abs) this.worst.set(kind, { abs, norm, where });
  }
  print(title: string): void {
    if (!VERBOSE) return;
    for (const [kind, w] of this.worst) console.log(`  ${title} ${kind}: max |Δ| ${w.abs.toExponential(2)} (${w.where}), ‖Δ‖/‖ref‖ ${w.norm.toExponential(2)}`);
  }
}

function assertGradientsClose(ours: ParameterMap, theirs: ParameterMap, names: string[], what: string, worst: Worst): void {
  assert.equal([...ours.keys()].sort(), [...names].sort(), `${what}: the engine's gradient names are the trainable parameters`);
  for (const name of names) {
    const a = ours.get(name)!;
    const b = theirs.get(name)!;
    worst.note('gradient', name, a, b);
    assertClose(a, b, GRAD_TOL, `${what}: gradient of ${name}`);
    const { diffNorm, refNorm } = errors(a, b);
    assert.ok(diffNorm <= GRAD_NORM_TOL.rtol * refNorm + GRAD_NORM_TOL.atol,
      `${what}: gradient of ${name}: ‖ours − tfjs‖ = ${diffNorm.toExponential(3)} > ${GRAD_NORM_TOL.rtol}·‖tfjs‖ (${refNorm.toExponential(3)}) + ${GRAD_NORM_TOL.atol}`);
  }
}

/**
 * Trains `config` for STEPS steps under `strategy` and follows the same trajectory in tfjs:
 * checks the loss and gradients at every step, then the parameters, running statistics and
 * inference logits at the end.
 */
async function checkAgainstTfjs(config: DenseNetConfig, strategy: MemoryStrategy, batch: number): Promise<void> {
  const gpu = await testGpu();
  const arch = describeDenseNet(config);
  const names = trainableNames(arch);
  const model = DenseNetModel.create(gpu, config, 11);
  const what = `${config.name} ${strategy}`;
  const worst = new Worst();
  let session: TrainingSession | undefined;
  let inference: InferenceSession | undefined;
  try {
    let reference = await model.readParameters();
    assert.equal([...reference.keys()].sort(), arch.parameters.map((p) => p.name).sort(), `${what}: readParameters names every parameter`);
    const velocity: ParameterMap = new Map();
    session = await TrainingSession.create(model, { batch, memory: strategy, optimizer: OPTIMIZER });
    for (let step = 1; step <= STEPS; step++) {
      const { images, labels } = batchOf(config, batch, 100 * step);
      const ours = await session.step(images, labels, LR);
      const theirs = tfjsTrainingStep(arch, reference, images, labels);
      worst.note('loss', `step ${step}`, [ours.loss], [theirs.loss]);
      assertClose([ours.loss], [theirs.loss], LOSS_TOL, `${what} step ${step}: loss`);
      assert.is(ours.correct, correctCount(theirs.logits, labels, config.classes!), `${what} step ${step}: correct predictions`);
      // Step 1 starts from identical weights; later steps from weights that agree to PARAM_TOL, so
      // the gradients are compared at every step with the same tolerances.
      assertGradientsClose(await session.readGradients(), theirs.gradients, names, `${what} step ${step}`, worst);
      reference = sgdStep(arch, reference, theirs.gradients, theirs.running, velocity, LR, SGD);
    }
    const trained = await model.readParameters();
    for (const spec of arch.parameters) {
      worst.note(spec.trainable ? 'parameter' : 'running statistic', spec.name, trained.get(spec.name)!, reference.get(spec.name)!);
      assertClose(trained.get(spec.name)!, reference.get(spec.name)!, PARAM_TOL, `${what}: ${spec.name} after ${STEPS} steps`);
    }

    inference = await InferenceSession.create(model, { batch, memory: strategy });
    const { images } = batchOf(config, batch, 999);
    const logits = await inference.run(images);
    // The engine's own trained parameters, so this checks inference alone.
    const expected = tfjsInference(arch, trained, images);
    worst.note('inference logits', 'logits', logits, expected);
    assertClose(logits, expected, LOGITS_TOL, `${what}: inference logits`);
    worst.print(what);
  } finally {
    inference?.destroy();
    session?.destroy();
    model.close();
  }
}

function correctCount(logits: Float32Array, labels: Uint32Array, classes: number): number {
  let correct = 0;
  labels.forEach((label, i) => {
    const row = logits.subarray(i * classes, (i + 1) * classes);
    if (row.indexOf(Math.max(...row)) === label) correct++;
  });
  return correct;
}

// densenet-bc-tiny: blocks [2, 2, 2], k = 4, 8 initial features, θ = 0.5, [3, 16, 16] → 8 → 4, 10 classes.
const BC_TINY = preset('densenet-bc-tiny');

test('densenet-bc-tiny preset is the shape this file assumes', () => {
  assert.equal(BC_TINY.blocks, [2, 2, 2]);
  assert.is(BC_TINY.bottleneck, true);
  assert.is(BC_TINY.growthRate, 4);
  assert.equal(BC_TINY.inputShape, [3, 16, 16]);
  assert.is(BC_TINY.dropRate, 0);
  assert.is(BC_TINY.stem, 'cifar');
});

for (const strategy of MEMORY_STRATEGIES) {
  test(`densenet-bc-tiny, ${strategy}: loss, every gradient, 3 SGD steps (weights and running statistics) and inference match tfjs`, async () => {
    await checkAgainstTfjs(BC_TINY, strategy, 4);
  });
}

// Non-BC: 3×3 conv straight after norm1, no compression; depth 10 = 3 blocks of 2 layers. 10×10
// input with batch 3 gives odd sizes (5×5 → 2×2 through the floor of the second transition) and
// channel rows that are not multiples of 256 bytes: under `fused` each layer's conv reads the block
// prefix and writes the next channels within one 256-byte block (bound once, src/kernels/binding.ts).
const NON_BC = denseNetConfig({ name: 'densenet-10-4-test', depth: 10, growthRate: 4, initialFeatures: 6, bottleneck: false, inputShape: [3, 10, 10], classes: 5 });

for (const strategy of ['fused', 'shared'] as const) {
  test(`non-BC densenet (depth 10, k 4, 10×10, batch 3), ${strategy}: matches tfjs`, async () => {
    assert.equal(NON_BC.blocks, [2, 2, 2]);
    await checkAgainstTfjs(NON_BC, strategy, 3);
  });
}

test('with dropout 0.2, every strategy gives the same loss and gradients over two steps', async () => {
  const gpu = await testGpu();
  const config = denseNetConfig({ ...BC_TINY, name: 'densenet-bc-tiny-dropout', dropRate: 0.2 });
  const arch: ArchitectureSpec = describeDenseNet(config);
  const names = trainableNames(arch);
  const batch = 4;
  const results = new Map<MemoryStrategy, { loss: number; gradients: ParameterMap }[]>();
  let initial: ParameterMap | undefined;
  for (const strategy of MEMORY_STRATEGIES) {
    const model = DenseNetModel.create(gpu, config, 23);
    const session = await TrainingSession.create(model, { batch, memory: strategy, optimizer: OPTIMIZER, seed: 5 });
    try {
      initial ??= await model.readParameters();
      const steps = [];
      for (let step = 1; step <= 2; step++) {
        const { images, labels } = batchOf(config, batch, 300 + step);
        const { loss } = await session.step(images, labels, LR);
        steps.push({ loss, gradients: await session.readGradients() });
      }
      results.set(strategy, steps);
    } finally {
      session.destroy();
      model.close();
    }
  }
  // Dropout must be active: the same weights and batch without dropout give another loss.
  const first = batchOf(config, batch, 301);
  const withoutDropout = tfjsTrainingStep(describeDenseNet({ ...config, dropRate: 0 }), initial!, first.images, first.labels);
  const naive = results.get('naive')!;
  assert.ok(Math.abs(naive[0].loss - withoutDropout.loss) > 10 * (LOSS_TOL.atol + LOSS_TOL.rtol * withoutDropout.loss),
    `dropout seems inactive: loss ${naive[0].loss} equals the loss without dropout ${withoutDropout.loss}`);
  const worst = new Worst();
  for (const strategy of MEMORY_STRATEGIES.filter((s) => s !== 'naive')) {
    results.get(strategy)!.forEach((r, i) => {
      const what = `dropout ${strategy} vs naive, step ${i + 1}`;
      worst.note('loss', what, [r.loss], [naive[i].loss]);
      assertClose([r.loss], [naive[i].loss], LOSS_TOL, `${what}: loss`);
      assertGradientsClose(r.gradients, naive[i].gradients, names, what, worst);
    });
  }
  worst.print('dropout strategies vs naive');
});

test.run();
