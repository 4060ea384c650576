import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isStepRecord, readMetrics } from '../src/train/metrics.js';
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
  await train(options(split, { resume: join(split, 'last.ckpt') }), {}, quiet, { progressStream: sink });
  const resumed = await stepLosses(split);
  assert.equal(resumed, expected, 'every step loss is bit-identical');
  const a = JSON.parse(await readFile(join(whole, 'summary.json'), 'utf8'));
  const b = JSON.parse(await readFile(join(split, 'summary.json'), 'utf8'));
  assert.is(b.testAccuracy, a.testAccuracy);
  for (const key of ['model', 'dataset', 'epochs', 'testAccuracy', 'bestTestAccuracy', 'seconds', 'imagesPerSec', 'peakGpuBytes']) {
    assert.ok(key in a, `summary.json has ${key}`);
  }
});

test('a loss that turns NaN stops the run, names the step, and leaves the last checkpoint untouched', async () => {
  const dir = join(root, 'nan');
  await train(options(dir, { epochs: 1, lr: 0.01 }), {}, quiet, { progressStream: sink });
  const before = await readFile(join(dir, 'last.ckpt'));
  const mtime = (await stat(join(dir, 'last.ckpt'))).mtimeMs;
  try {
    await train(options(dir, { epochs: 2, lr: 1e30, resume: join(dir, 'last.ckpt') }), {}, quiet, { progressStream: sink });
    assert.unreachable('lr 1e30 must blow up');
  } catch (e) {
    assert.instance(e, TrainingStopped);
    assert.match((e as Error).message, /the loss became (NaN|Infinity|-Infinity) at epoch 2, batch \d+ \(step \d+\)/);
  }
  assert.ok((await readFile(join(dir, 'last.ckpt'))).equals(before), 'last.ckpt unchanged');
  assert.is((await stat(join(dir, 'last.ckpt'))).mtimeMs, mtime);
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
