// The command line as a user runs it: the main job shortened, eval, predict, summary, and the
// errors for bad input (each names the problem and exits non-zero without a stack trace).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { isStepRecord, readMetrics } from '../src/train/metrics.js';
import { loadMnist } from '../src/train/data/mnist.js';
import { resumeOptions, trainOptionsFromFlags, TRAIN_FLAGS } from '../src/cli/train.js';
import { parseFlags } from '../src/cli/args.js';

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
  assert.match(r.out, /done: 1 of 1 epochs, test accuracy/);
  assert.match(r.out, /\(--limit 480 cuts the test set in proportion\)/);
  assert.ok(r.out.includes(`results in ${out} (summary.json, metrics.jsonl, plot.svg, last.ckpt, best.ckpt)`), r.out);
  const losses = (await readMetrics(join(out, 'metrics.jsonl'))).filter(isStepRecord).map((s) => s.loss as number);
  assert.is(losses.length, 15);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.1, `loss falls: ${losses.map((l) => l.toFixed(2)).join(' ')}`);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
  for (const key of ['model', 'dataset', 'status', 'epochs', 'testAccuracy', 'bestTestAccuracy', 'seconds', 'imagesPerSec', 'peakGpuBytes']) assert.ok(key in summary, key);
  assert.is(summary.status, 'completed');
  assert.is(summary.model, 'digits-fast');
  assert.ok(summary.peakGpuBytes > 0 && summary.imagesPerSec > 0);
  assert.match(await readFile(join(out, 'plot.svg'), 'utf8'), /<svg[\s\S]*<polyline/);
});

test('eval prints accuracy and a confusion matrix; predict gives the top 5 classes of a PNG', async () => {
  const checkpoint = join(root, 'run', 'last.ckpt');
  const e = cli('eval', '--checkpoint', checkpoint);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /mnist test set: \d+ images, top-1 accuracy \d+\.\d+%, top-5 accuracy \d+\.\d+%/);
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

test('Ctrl-C after a step exits 130 and names only the files it wrote; a loss that turns NaN exits 1', async () => {
  const out = join(root, 'sigint');
  // 40 steps: the interrupt lands long before the epoch ends.
  const child = spawn(process.execPath, ['dist/cli.js', 'train', '--model', 'digits-tiny', '--limit', '640', '--batch', '16', '--epochs', '1', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise<number | null>((resolve) => {
    const poll = setInterval(() => {
      // The first step line in the metrics log: the run is past its set-up.
      void readFile(join(out, 'metrics.jsonl'), 'utf8').then((text) => {
        if (text.includes('"type":"step"')) { clearInterval(poll); child.kill('SIGINT'); }
      }, () => undefined);
    }, 100);
    child.on('close', (c) => { clearInterval(poll); resolve(c); });
  });
  assert.is(code, 130, `exit code after Ctrl-C: ${stderr}`);
  assert.match(stdout, /interrupted at epoch 1, batch \d+: saved /);
  assert.match(stdout, /interrupted: 0 of 1 epochs, no epoch finished, nothing evaluated/);
  const files = /results in .* \(([^)]*)\)/.exec(stdout)?.[1].split(', ') ?? [];
  assert.equal(files, ['summary.json', 'metrics.jsonl', 'last.ckpt'], 'no plot.svg or best.ckpt: none was written');
  for (const f of files) assert.ok(existsSync(join(out, f)), f);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
  assert.equal([summary.status, summary.testAccuracy], ['interrupted', null]);

  const nan = cli('train', '--model', 'digits-tiny', '--limit', '64', '--batch', '16', '--epochs', '1', '--lr', '1e30', '--out', join(root, 'nan'));
  assert.is(nan.code, 1, nan.err);
  assert.match(nan.err, /the loss became (NaN|Infinity|-Infinity) at epoch 1, .*no checkpoint: start again with a lower --lr \(e\.g\. 1e\+29\) and --overwrite/);
  assert.not.match(nan.err, /\n\s+at /);
});

test('--resume takes the checkpoint\'s options but those given, and writes into the checkpoint\'s directory unless --out is given', () => {
  const saved = trainOptionsFromFlags(parseFlags('train', ['--model', 'digits-tiny', '--batch', '16', '--lr', '0.05', '--no-augment', '--out', 'runs/a'], TRAIN_FLAGS).flags);
  const resumeWith = (...argv: string[]) => {
    const { flags, given } = parseFlags('train', ['--resume', 'elsewhere/a/last.ckpt', ...argv], TRAIN_FLAGS);
    return resumeOptions(saved, trainOptionsFromFlags(flags), given);
  };
  const plain = resumeWith();
  assert.equal({ ...plain, resume: undefined, overwrite: undefined, outDir: 'runs/a' }, { ...saved, resume: undefined, overwrite: undefined }, 'nothing given: the checkpoint\'s options (not the defaults)');
  assert.is(plain.outDir, join('elsewhere', 'a'));
  const changed = resumeWith('--lr', '0.01', '--augment', '--out', 'runs/b', '--batch', '32');
  assert.equal([changed.lr, changed.augment, changed.outDir, changed.batch, changed.model], [0.01, true, 'runs/b', 32, 'digits-tiny'], 'given flags win (train() then refuses --batch)');
});

test('without --out, a new run goes to the first runs/MODEL-DATASET(-N) that holds no run, and says so', async () => {
  const cwd = join(root, 'default-out');
  await mkdir(join(cwd, 'runs', 'digits-tiny-mnist'), { recursive: true });
  await writeFile(join(cwd, 'runs', 'digits-tiny-mnist', 'summary.json'), '{"model":"digits-tiny"}');
  // --backend none stops the run at the GPU, after the directory is chosen and made.
  const r = spawnSync(process.execPath, [join(process.cwd(), 'dist', 'cli.js'), 'train', '--model', 'digits-tiny', '--backend', 'none'], { cwd, encoding: 'utf8' });
  assert.ok(r.status !== 0);
  assert.match(r.stdout, /runs.digits-tiny-mnist holds an earlier run \(kept\); this run writes to runs.digits-tiny-mnist-2/);
  assert.ok(existsSync(join(cwd, 'runs', 'digits-tiny-mnist-2')));
  assert.is(await readFile(join(cwd, 'runs', 'digits-tiny-mnist', 'summary.json'), 'utf8'), '{"model":"digits-tiny"}');
});

test('train --help says --limit also cuts the test set, and lists --overwrite', () => {
  const r = cli('train', '--help');
  assert.is(r.code, 0);
  assert.match(r.out, /--limit <number>\s+use only this many training images, and a proportional share of the test images/);
  assert.match(r.out, /--overwrite\s+delete the run already in --out/);
});

test('bad input: each error names the problem and the fix, exits non-zero, and prints no stack trace', async () => {
  const aFile = join(root, 'a-file');
  await writeFile(aFile, 'not a directory');
  const stringDepth = join(root, 'string-depth.json');
  await writeFile(stringDepth, JSON.stringify({ depth: '40', stem: 'strided', inputShape: [1, 28, 28] }));
  await mkdir(join(root, 'empty-out'), { recursive: true });
  const cases: [string[], RegExp][] = [
    [['train', '--batch', '100000', '--backend', 'none'], /--batch 100000 is larger than the training set \(8000 mnist images\); use --batch 64 or less/],
    [['train', '--out', aFile, '--backend', 'none'], /--out .*a-file: it is a file, not a directory/],
    [['train', '--out', join(aFile, 'sub'), '--backend', 'none'], /--out .*a-file.sub: .*a-file is a file, not a directory/],
    [['train', '--model', stringDepth], /"depth" must be a number, got string "40"/],
    // The run of the first test: kept, with the ways on named, before the GPU is opened (--backend none would fail there).
    [['train', '--out', join(root, 'run'), '--backend', 'none'], /already holds a run \(model digits-fast on mnist, 1 epoch done.*--resume .*last\.ckpt.*--overwrite/],
    [['train', '--resume', join(root, 'run', 'last.ckpt'), '--batch', '64', '--backend', 'none'], /--resume cannot change this option: --batch \(32 in the checkpoint, 64 asked\)/],
    [['train', '--resume', join(root, 'run', 'last.ckpt'), '--out', join(root, 'sigint'), '--backend', 'none'], /--out .*sigint already holds a run/],
    [['train', '--epoch', '3'], /unknown flag --epoch \(flags: .*--epochs/],
    [['train', '--dataset', 'cifar10', '--data-dir', join(root, 'nope')], /--data-dir .*nope does not exist/],
    [['train', '--dataset', 'cifar10'], /needs --data-dir/],
    [['train', '--model', 'densenet-bc-100-12'], /takes images of \[3, 32, 32\] but mnist images are \[1, 28, 28\]/],
    [['train', '--model', 'no-such-model'], /no-such-model/],
    [['train', '--lr', 'fast'], /--lr must be a number/],
    [['eval'], /give --checkpoint FILE/],
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
