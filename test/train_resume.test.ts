import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isEpochRecord, isStepRecord, readMetrics, type MetricsRecord } from '../src/train/metrics.js';
import { readCheckpointHeader } from '../src/train/checkpoint.js';
import type { TrainOptions } from '../src/train/options.js';
import { train, TrainingStopped } from '../src/train/trainer.js';

const test = suite('train: resume, interrupt, NaN');
const quiet = () => undefined;
const sink = new Writable({ write(_c, _e, cb) { cb(); } });

function options(outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: 'digits-tiny', dataset: 'mnist', epochs: 2, batch: 16, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true,
    weightDecay: 1e-4, schedule: 'step', dropout: 0.1, augment: false, seed: 7, memory: 'fused', outDir, limit: 64, ...extra,
  };
}

async function stepLosses(dir: string): Promise<number[]> {
  return (await readMetrics(join(dir, 'metrics.jsonl'))).filter(isStepRecord).map((r) => r.loss as number);
}

/** Every record of a metrics log as written, without readMetrics' rewind. */
async function rawRecords(dir: string): Promise<MetricsRecord[]> {
  return (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as MetricsRecord);
}

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' }).pid!;
}

let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'densenet-resume-')); });
test.after(async () => { await rm(root, { recursive: true, force: true }); });

test('a run interrupted mid-epoch and resumed gives exactly the losses of an uninterrupted run', async () => {
  // Dropout is on, so the resumed run must also restore the step count behind the dropout seeds.
  const whole = join(root, 'whole');
  const summary = await train(options(whole), {}, quiet, { progressStream: sink });
  assert.is(summary.epochs, 2);
  const expected = await stepLosses(whole);
  assert.is(expected.length, 8, '2 epochs of 4 batches');

  const split = join(root, 'split');
  const controller = new AbortController();
  const stopped = await train(options(split), {}, quiet, { progressStream: sink, signal: controller.signal, onStep: (step) => { if (step === 3) controller.abort(); } });
  assert.match(stopped.stoppedEarly ?? '', /interrupted at epoch 1, batch 3/);
  // Nothing was evaluated: summary.json says so instead of "testAccuracy: 0", and no plot or best checkpoint exists.
  const stoppedJson = JSON.parse(await readFile(join(split, 'summary.json'), 'utf8'));
  assert.equal([stoppedJson.status, stoppedJson.epochs, stoppedJson.steps, stoppedJson.testAccuracy, stoppedJson.bestTestAccuracy], ['interrupted', 0, 3, null, null]);
  assert.equal((await readdir(split)).sort(), ['last.ckpt', 'metrics.jsonl', 'summary.json']);

  // As after a kill -9 after that checkpoint: the log holds a step and an epoch the checkpoint does not, and a dead writer's temporary file is left.
  await appendFile(join(split, 'metrics.jsonl'), [{ type: 'step', epoch: 1, batch: 4, step: 4, loss: 99 }, { type: 'epoch', epoch: 1, trainLoss: 99 }]
    .map((r) => `${JSON.stringify(r)}\n`).join(''));
  const stale = `last.ckpt.tmp-${deadPid()}-0123456789ab`;
  await writeFile(join(split, stale), 'partial');
  const lines: string[] = [];
  const resumeStarted = performance.now();
  const final = await train(options(split, { resume: join(split, 'last.ckpt') }), {}, (l) => lines.push(l), { progressStream: sink });
  const resumeSeconds = (performance.now() - resumeStarted) / 1000;
  const raw = await rawRecords(split);
  assert.equal(raw.filter(isStepRecord).map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8], 'metrics.jsonl itself holds each step once');
  assert.equal(raw.filter(isStepRecord).map((r) => r.loss), expected, 'every step loss is bit-identical');
  assert.equal(raw.filter((r) => r.type === 'resume'), [{ type: 'resume', step: 3, epoch: 0, from: join(split, 'last.ckpt'), changed: {} }]);
  assert.match(lines.join('\n'), /metrics\.jsonl rewound to the checkpoint \(dropped 2 lines logged after it\)/);
  assert.match(lines.join('\n'), new RegExp(`removed 1 temporary file left by killed runs in .*: ${stale}`));
  assert.not.ok((await readdir(split)).includes(stale), 'the dead writer\'s temporary file is gone');

  // The interrupted epoch's record covers all its steps: equal to the uninterrupted run's (sums of the same losses in the same order).
  const epochs = async (dir: string) => (await rawRecords(dir)).filter(isEpochRecord).map((r) => [r.epoch, r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy]);
  assert.equal(await epochs(split), await epochs(whole));
  const a = JSON.parse(await readFile(join(whole, 'summary.json'), 'utf8'));
  const b = JSON.parse(await readFile(join(split, 'summary.json'), 'utf8'));
  assert.is(b.testAccuracy, a.testAccuracy);
  assert.is(b.status, 'completed');
  for (const key of ['model', 'dataset', 'status', 'epochs', 'epochsPlanned', 'steps', 'testAccuracy', 'bestTestAccuracy', 'seconds', 'imagesPerSec', 'peakGpuBytes']) {
    assert.ok(key in a, `summary.json has ${key}`);
  }
  // Time and throughput cover both parts: the first part's seconds are carried (it took seconds: device, compile, 3 steps).
  assert.ok(final.seconds > resumeSeconds + 0.5 * stopped.seconds, `seconds ${final.seconds} cover the first part (${stopped.seconds} s) and the resumed one (${resumeSeconds} s)`);
  const totals = ((await readCheckpointHeader(join(split, 'last.ckpt')))!.progress as { totals: { trainImages: number } }).totals;
  assert.is(totals.trainImages, 8 * 16, 'images trained over the whole run: 8 steps of 16');
});

test('interrupted after the last batch of an epoch, the resume evaluates that epoch with the sums of all its steps', async () => {
  const dir = join(root, 'edge');
  const first = new AbortController();
  await train(options(dir), {}, quiet, { progressStream: sink, signal: first.signal, onStep: (step) => { if (step === 4) first.abort(); } });
  // The resume trains no step of epoch 1 (its 4 batches are done), evaluates it, and is stopped in epoch 2.
  const second = new AbortController();
  await train(options(dir, { resume: join(dir, 'last.ckpt') }), {}, quiet, { progressStream: sink, signal: second.signal, onStep: () => second.abort() });
  const epochOne = async (d: string) => (await rawRecords(d)).filter(isEpochRecord).filter((r) => r.epoch === 1).map((r) => [r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy]);
  const got = await epochOne(dir);
  assert.equal(got, await epochOne(join(root, 'whole')), 'equal to the uninterrupted run of the first test');
  assert.ok(Number.isFinite(got[0][0] as number), 'not 0/0');
});

test('--overwrite replaces a run; a resume applies a new --lr and records it; a NaN stop says so in summary.json and leaves the checkpoint', async () => {
  const dir = join(root, 'nan');
  await mkdir(dir);
  await writeFile(join(dir, 'metrics.jsonl'), Array.from({ length: 10 }, (_, i) => `${JSON.stringify({ type: 'step', epoch: 1, batch: i + 1, step: i + 1, loss: 5 })}\n`).join(''));
  await writeFile(join(dir, 'best.ckpt'), 'an older run');
  const lines: string[] = [];
  await train(options(dir, { epochs: 1, lr: 0.01, overwrite: true }), {}, (l) => lines.push(l), { progressStream: sink });
  assert.match(lines.join('\n'), /--overwrite: deleted the earlier run in .*nan \(nothing in it tells which model; metrics\.jsonl, best\.ckpt\)/);
  assert.equal((await rawRecords(dir)).map((r) => r.type), ['step', 'step', 'step', 'step', 'epoch'], 'only the new run\'s records');
  const before = await readFile(join(dir, 'last.ckpt'));
  const mtime = (await stat(join(dir, 'last.ckpt'))).mtimeMs;
  lines.length = 0;
  try {
    // Another memory strategy too: the checkpoint's optimizer state does not depend on it.
    await train(options(dir, { epochs: 2, lr: 1e30, memory: 'naive', resume: join(dir, 'last.ckpt') }), {}, (l) => lines.push(l), { progressStream: sink });
    assert.unreachable('lr 1e30 must blow up');
  } catch (e) {
    assert.instance(e, TrainingStopped);
    assert.match((e as Error).message, /the loss became (NaN|Infinity|-Infinity) at epoch 2, batch \d+ \(step \d+\)/);
    assert.ok((e as Error).message.includes(`--resume ${join(dir, 'last.ckpt')} --lr 1e+29`), (e as Error).message);
  }
  assert.match(lines.join('\n'), /changed: epochs 1 → 2, lr 0\.01 → 1e\+30, memory fused → naive \(recorded in metrics\.jsonl\)/);
  const resume = (await rawRecords(dir)).find((r) => r.type === 'resume');
  assert.equal(resume?.changed, { epochs: { from: 1, to: 2 }, lr: { from: 0.01, to: 1e30 }, memory: { from: 'fused', to: 'naive' } });
  const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8'));
  assert.equal([summary.status, summary.epochs, summary.epochsPlanned], ['diverged', 1, 2]);
  assert.is(typeof summary.testAccuracy, 'number', 'epoch 1 was evaluated');
  assert.ok((await readFile(join(dir, 'last.ckpt'))).equals(before), 'last.ckpt unchanged');
  assert.is((await stat(join(dir, 'last.ckpt'))).mtimeMs, mtime);
  // The run in `dir` is protected: starting again there without --resume or --overwrite is refused before the GPU is opened
  // (the bogus backend would fail otherwise), and an option the checkpoint depends on is refused by name.
  await train(options(dir, { epochs: 1 }), { backend: 'no-such-backend' }, quiet, { progressStream: sink }).then(
    () => assert.unreachable('a run is there'),
    (e: Error) => {
      assert.match(e.message, /--out .*nan already holds a run \(model digits-tiny on mnist, 1 epoch done, test accuracy \d+\.\d+%, diverged;/);
      assert.match(e.message, /--resume .*last\.ckpt.*another --out.*--overwrite/);
    },
  );
  await train(options(dir, { batch: 8, resume: join(dir, 'last.ckpt') }), { backend: 'no-such-backend' }, quiet, { progressStream: sink }).then(
    () => assert.unreachable('another batch size'),
    (e: Error) => assert.match(e.message, /--resume cannot change this option: --batch \(16 in the checkpoint, 8 asked\): the checkpoint recorded the data order/),
  );
});

test('resuming a checkpoint of another model, or a corrupt one, is refused before training', async () => {
  const dir = join(root, 'mismatch');
  await train(options(dir, { epochs: 1 }), {}, quiet, { progressStream: sink });
  await train(options(join(root, 'other'), { model: 'digits-small', resume: join(dir, 'last.ckpt') }), {}, quiet, { progressStream: sink }).then(
    () => assert.unreachable('another model'),
    (e: Error) => assert.match(e.message, /checkpoint .*last\.ckpt is for model "digits-tiny", not the "digits-small"/),
  );
  const bytes = await readFile(join(dir, 'last.ckpt'));
  bytes[bytes.length >> 1] ^= 0xff;
  await writeFile(join(root, 'corrupt.ckpt'), bytes);
  await train(options(join(root, 'c'), { resume: join(root, 'corrupt.ckpt') }), {}, quiet, { progressStream: sink }).then(
    () => assert.unreachable('corrupt'),
    (e: Error) => assert.match(e.message, /corrupt\.ckpt.*(checksum|corrupt)/i),
  );
});

test.run();
