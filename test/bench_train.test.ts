import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTrainBenchmark, TRAIN_IMPLS, trainProblem, type TrainRow } from '../bench/train.js';
import { BudgetExceeded, type StepRunner } from '../bench/train_impls.js';
import { measureSteps } from '../bench/train_measure.js';
import { fillRatios, formatTrainTable, lossAgreement } from '../bench/train_report.js';
import { initialParameters } from '../bench/train_tfjs.js';
import { DenseNetModel } from '../src/models/model.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('bench train');
test.after(closeTestGpu);

const isPositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

test('tiny run: every implementation timed, rows of the documented shape, losses agree over 3 steps, JSON written', async () => {
  const gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-'));
  const json = join(dir, 'train.json');
  const lines: string[] = [];
  try {
    const { rows, header } = await runTrainBenchmark({
      models: ['densenet-bc-tiny'], batches: [4], steps: 2, budgetSeconds: 600, json, gpu, command: 'test', log: (l) => lines.push(l),
    });
    assert.equal(rows.map((r) => r.impl), [...TRAIN_IMPLS]);
    for (const r of rows) {
      assert.is(r.notRunReason, undefined, `${r.impl}: ${r.notRunReason}`);
      assert.is(r.model, 'densenet-bc-tiny');
      assert.is(r.batch, 4);
      assert.ok(isPositive(r.imagesPerSec), `${r.impl}: images/s ${r.imagesPerSec}`);
      assert.is(r.steps, 2);
      assert.is(r.samplesMs.length, 2);
      // images/s is the batch over the median step time, and the spread brackets it.
      assert.ok(Math.abs(r.imagesPerSec! - 4000 / r.medianMs!) < 1e-9 * r.imagesPerSec!);
      assert.ok(r.minImagesPerSec! <= r.imagesPerSec! && r.imagesPerSec! <= r.maxImagesPerSec!);
      assert.ok(isPositive(r.warmupMs) && isPositive(r.setupMs));
      assert.is(r.losses.length, 3, 'warm-up + 2 timed steps');
    }
    const tfjs = rows.find((r) => r.impl === 'tfjs-webgpu')!;
    for (const r of rows) assert.ok(Math.abs(r.ratioVsTfjsWebgpu! - r.imagesPerSec! / tfjs.imagesPerSec!) < 1e-12, `${r.impl}: ratio`);
    assert.is(tfjs.ratioVsTfjsWebgpu, 1);
    for (const r of rows.filter((x) => x.impl !== 'tfjs-cpu')) assert.ok(isPositive(r.peakBytes), `${r.impl}: peak bytes ${r.peakBytes}`);
    // Same parameters, batch and optimizer: the losses of all six agree step by step, through two
    // SGD updates, so every row timed the same network and the same update.
    const losses = rows.map((r) => r.losses);
    for (let step = 0; step < 3; step++) {
      const values = losses.map((l) => l[step]);
      const spread = (Math.max(...values) - Math.min(...values)) / Math.abs(values[0]);
      assert.ok(spread < 2e-5, `step ${step}: losses ${values.join(', ')}`);
    }
    assert.ok(losses[0][2] < losses[0][0], 'training on one batch lowers its loss');

    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { header: Record<string, unknown>; rows: Record<string, unknown>[] };
    for (const key of ['adapter', 'versions', 'command']) assert.ok(key in parsed.header, `header has "${key}"`);
    assert.is(parsed.header.command, 'test');
    assert.is((parsed.header.versions as Record<string, string>).tfjsBackendWebgpu, '4.22.0');
    assert.is(parsed.rows.length, 6);
    for (const [i, p] of parsed.rows.entries()) {
      for (const key of ['model', 'batch', 'impl', 'imagesPerSec', 'ratioVsTfjsWebgpu']) assert.ok(key in p, `row ${i} has "${key}"`);
      assert.is(p.imagesPerSec, rows[i].imagesPerSec);
    }
    assert.ok(header.notes.some((n) => /wasm.*Conv2DBackpropFilter/.test(n)), 'the wasm limitation is stated');
    const text = lines.join('\n');
    assert.match(text, /\| densenet-bc-tiny \| 4 +\| ours-fused/);
    assert.match(text, /losses over their first 3 steps agree/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.not.throws(() => gpu.arena.free(gpu.zeros('after', 'workspace', 4)), 'the lent device is still open');
});

test('budget: a warm-up over the budget gives a not-run row with the reason and the measured warm-up time', async () => {
  const gpu = await testGpu();
  const { rows } = await runTrainBenchmark({
    models: ['densenet-bc-tiny'], batches: [2], impls: ['ours-fused', 'tfjs-cpu'], budgetSeconds: 1e-4, gpu, log: () => {},
  });
  assert.equal(rows.map((r) => r.impl), ['ours-fused', 'tfjs-cpu']);
  for (const r of rows) {
    assert.is(r.imagesPerSec, null);
    assert.is(r.ratioVsTfjsWebgpu, null);
    assert.is(r.steps, 0);
    assert.ok(isPositive(r.warmupMs), `${r.impl}: warm-up time ${r.warmupMs}`);
  }
  // The GPU step runs to the end and is then found over budget; tfjs cpu is stopped between kernels.
  assert.match(rows[0].notRunReason!, /the warm-up step took \d+\.\d s, over the 0\.0 s budget/);
  assert.match(rows[1].notRunReason!, /did not finish within the 0\.0 s budget: stopped after/);
  const table = formatTrainTable(rows);
  assert.match(table, /ours-fused +\| not run/);
  assert.match(table, /- densenet-bc-tiny batch 2 tfjs-cpu: the warm-up step did not finish/);
});

/** A runner whose steps take the given times on a fake clock. */
function fakeRunner(clock: { t: number }, stepMs: number[], log: string[]): StepRunner {
  let i = 0;
  return {
    async step() {
      const ms = stepMs[Math.min(i++, stepMs.length - 1)];
      if (ms < 0) throw new Error('device lost');
      clock.t += ms;
      return 2 - i / 10;
    },
    peakBytes: () => 1234,
    async close() { log.push('closed'); },
  };
}

test('measureSteps: budget rule, minimum steps, errors, and the runner is always closed', async () => {
  const clock = { t: 0 };
  const now = () => clock.t;
  const log: string[] = [];
  // Warm-up 10, steps 10: 5 steps wanted, budget 35 → after 2 steps (spent 30, next would end at 40) it stops.
  let m = await measureSteps(async () => fakeRunner(clock, [10], log), { budgetMs: 35, steps: 5, minSteps: 2, now });
  assert.equal(m.samplesMs, [10, 10]);
  assert.equal(m.losses.length, 3);
  assert.is(m.peakBytes, 1234);
  // A budget that is spent still gives minSteps timed steps.
  m = await measureSteps(async () => fakeRunner(clock, [10], log), { budgetMs: 12, steps: 5, minSteps: 2, now });
  assert.equal(m.samplesMs, [10, 10]);
  // Room for all.
  m = await measureSteps(async () => fakeRunner(clock, [10], log), { budgetMs: 1000, steps: 5, minSteps: 2, now });
  assert.is(m.samplesMs.length, 5);
  // Warm-up over the budget.
  m = await measureSteps(async () => fakeRunner(clock, [5000, 1], log), { budgetMs: 4000, steps: 5, minSteps: 2, now });
  assert.equal(m.samplesMs, []);
  assert.is(m.warmupMs, 5000);
  assert.match(m.notRunReason!, 'the warm-up step took 5.0 s, over the 4.0 s budget');
  // A failing step and a failing build.
  m = await measureSteps(async () => fakeRunner(clock, [5, -1], log), { budgetMs: 100, steps: 3, minSteps: 2, now });
  assert.match(m.notRunReason!, 'timed step 1 failed: device lost');
  assert.equal(m.samplesMs, []);
  m = await measureSteps(async () => { throw new Error('out of memory\nmore'); }, { budgetMs: 100, steps: 3, minSteps: 2, now });
  assert.is(m.notRunReason, 'could not be built: out of memory');
  // A stopped warm-up.
  const stopped: StepRunner = { ...fakeRunner(clock, [1], log), async step() { clock.t += 7; throw new BudgetExceeded(); } };
  m = await measureSteps(async () => stopped, { budgetMs: 5, steps: 3, minSteps: 2, now });
  assert.is(m.warmupMs, 7);
  assert.match(m.notRunReason!, 'did not finish within the 0.0 s budget: stopped after 0.0 s');
  assert.is(log.filter((l) => l === 'closed').length, 6, 'every built runner was closed');
});

test('ratios, loss agreement and the table', () => {
  const row = (impl: TrainRow['impl'], imagesPerSec: number | null, losses: number[]): TrainRow => ({
    model: 'm', batch: 16, impl, imagesPerSec, ratioVsTfjsWebgpu: null, medianMs: imagesPerSec && 16000 / imagesPerSec, minMs: null, maxMs: null,
    minImagesPerSec: imagesPerSec, maxImagesPerSec: imagesPerSec, steps: 3, samplesMs: [], warmupMs: 1, setupMs: 1, losses, peakBytes: 3 * 2 ** 20,
    ...(imagesPerSec === null ? { notRunReason: 'too slow' } : {}),
  });
  const rows = [row('ours-fused', 6, [2, 1.5]), row('tfjs-webgpu', 2, [2, 1.5 * (1 + 1e-6)]), row('tfjs-cpu', null, [2])];
  fillRatios(rows);
  assert.equal(rows.map((r) => r.ratioVsTfjsWebgpu), [3, 1, null]);
  const agreement = lossAgreement(rows, 'm', 16)!;
  assert.is(agreement.steps, 1, 'the steps every row took');
  assert.is(agreement.maxRelDiff, 0);
  assert.equal(agreement.perStep, [0]);
  assert.ok(Math.abs(lossAgreement(rows.slice(0, 2), 'm', 16)!.maxRelDiff - 1e-6 / (1 + 1e-6)) < 1e-12);
  const table = formatTrainTable(rows);
  assert.match(table, /\| m +\| 16 +\| ours-fused +\| 6\.00 \(6\.00–6\.00\)/);
  assert.match(table, /3\.00×/);
  assert.match(table, /3\.0 MiB/);
  assert.match(table, /- m batch 16 tfjs-cpu: too slow/);
});

test('the tfjs side starts from the parameters DenseNetModel.create writes for the same seed', async () => {
  const gpu = await testGpu();
  const p = trainProblem('densenet-bc-tiny', 2, 7);
  const model = DenseNetModel.create(gpu, p.config, 7);
  try {
    const onGpu = await model.readParameters();
    const onCpu = initialParameters(p.arch, 7);
    assert.equal([...onCpu.keys()], [...onGpu.keys()]);
    for (const [name, v] of onCpu) assert.equal(Array.from(v), Array.from(onGpu.get(name)!), name);
  } finally {
    model.close();
  }
});

test.run();
