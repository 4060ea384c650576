// The command line as a user runs it: the main job shortened, eval, predict, summary, and the
// errors for bad input (each names the problem and exits non-zero without a stack trace).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { isStepRecord, readMetrics } from '../src/train/metrics.js';
import { loadMnist } from '../src/train/data/mnist.js';

const test = suite('cli');
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'densenet-cli-')); });
test.after(async () => { await rm(root, { recursive: true, force: true }); });

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('the main job, shortened (480 digits, one epoch), trains: the loss falls and summary.json is complete', async () => {
  const out = join(root, 'run');
  const r = cli('train', '--limit', '480', '--batch', '32', '--epochs', '1', '--out', out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /done: 1 epochs, test accuracy/);
  const losses = (await readMetrics(join(out, 'metrics.jsonl'))).filter(isStepRecord).map((s) => s.loss as number);
  assert.is(losses.length, 15);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.1, `loss falls: ${losses.map((l) => l.toFixed(2)).join(' ')}`);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
  for (const key of ['model', 'dataset', 'epochs', 'testAccuracy', 'bestTestAccuracy', 'seconds', 'imagesPerSec', 'peakGpuBytes']) assert.ok(key in summary, key);
  assert.is(summary.model, 'digits-fast');
  assert.ok(summary.peakGpuBytes > 0 && summary.imagesPerSec > 0);
  assert.match(await readFile(join(out, 'plot.svg'), 'utf8'), /<svg[\s\S]*<polyline/);
});

test('eval prints accuracy and a confusion matrix; predict gives the top 5 classes of a PNG', async () => {
  const checkpoint = join(root, 'run', 'last.ckpt');
  const e = cli('eval', '--checkpoint', checkpoint);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /mnist test set: \d+ images, accuracy \d+\.\d+%/);
  assert.match(e.out, /truth\\pred/);
  const { test: digits } = loadMnist({ limit: 100 });
  const png = new PNG({ width: 28, height: 28 });
  for (let i = 0; i < 28 * 28; i++) {
    const v = Math.round(digits.images[i] * 255);
    png.data.set([v, v, v, 255], i * 4);
  }
  const file = join(root, 'digit.png');
  await writeFile(file, PNG.sync.write(png));
  const p = cli('predict', '--checkpoint', checkpoint, file);
  assert.is(p.code, 0, p.err);
  assert.match(p.out, new RegExp(`digit\\.png: (\\d \\d+\\.\\d%, ){4}\\d \\d+\\.\\d%`));
});

test('summary prints the layer table, the exact parameter count and memory per strategy', () => {
  const r = cli('summary', '--model', 'densenet-bc-100-12');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /parameters: 769,162/);
  for (const s of ['naive', 'shared', 'recompute', 'fused']) assert.match(r.out, new RegExp(`\\n${s}\\s`));
});

test('bad input: each error names the problem and the fix, exits non-zero, and prints no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['train', '--epoch', '3'], /unknown flag --epoch \(flags: .*--epochs/],
    [['train', '--dataset', 'cifar10', '--data-dir', join(root, 'nope')], /--data-dir .*nope does not exist/],
    [['train', '--dataset', 'cifar10'], /needs --data-dir/],
    [['train', '--model', 'densenet-bc-100-12'], /takes images of \[3, 32, 32\] but mnist images are \[1, 28, 28\]/],
    [['train', '--model', 'no-such-model'], /no-such-model/],
    [['train', '--lr', 'fast'], /--lr must be a number/],
    [['eval'], /--checkpoint FILE is required/],
    [['predict', '--checkpoint', join(root, 'run', 'last.ckpt'), join(root, 'missing.png')], /missing\.png/],
    [['bench', 'nothing'], /"bench" takes: /],
  ];
  const corrupt = join(root, 'corrupt.ckpt');
  const bytes = await readFile(join(root, 'run', 'last.ckpt'));
  bytes[100] ^= 0x55;
  await writeFile(corrupt, bytes);
  cases.push([['eval', '--checkpoint', corrupt], /corrupt\.ckpt.*(checksum|corrupt)/i]);
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.ok(r.code !== 0, `${args.join(' ')} exits non-zero`);
    assert.match(r.err, message, `${args.join(' ')}: ${r.err}`);
    assert.not.match(r.err, /\n\s+at /, `${args.join(' ')} prints no stack trace: ${r.err}`);
  }
});

test.run();
