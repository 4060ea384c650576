// The --out directory of a run, without the GPU: an earlier run is found and described, refused or
// (with --overwrite) deleted; temporary files of dead processes are removed and a live one's kept;
// --out that cannot be a directory gets a message, not an errno; the metrics log is rewound to a
// checkpoint; and a resume may change some options and refuses the others by name.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCheckpoint } from '../src/train/checkpoint.js';
import { readMetrics, rewindMetricsLog } from '../src/train/metrics.js';
import { OptionsError, type TrainOptions } from '../src/train/options.js';
import { resumeOptionChanges } from '../src/train/resume_options.js';
import { findExistingRun, outDirError, prepareOutDir, prepareRunDir, removeStaleTempFiles } from '../src/train/run_dir.js';

const test = suite('run directory');
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'densenet-rundir-')); });
test.after(async () => { await rm(root, { recursive: true, force: true }); });

function options(outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: 'digits-tiny', dataset: 'mnist', epochs: 2, batch: 16, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true,
    weightDecay: 1e-4, schedule: 'step', augment: false, seed: 7, memory: 'fused', outDir, limit: 64, ...extra,
  };
}

/** A pid that belonged to a process that has exited (a child we ran to completion). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  assert.ok(r.pid && r.pid > 0);
  return r.pid!;
}

test('an empty directory, or one with unrelated files, holds no run; any run file is a run, described from its checkpoint', async () => {
  const dir = join(root, 'find');
  await mkdir(dir, { recursive: true });
  assert.is(await findExistingRun(dir), undefined, 'empty');
  assert.is(await findExistingRun(join(root, 'missing')), undefined, 'missing');
  await writeFile(join(dir, 'notes.txt'), 'mine');
  assert.is(await findExistingRun(dir), undefined, 'unrelated files');
  await writeCheckpoint(join(dir, 'last.ckpt'), {
    header: { config: { name: 'digits-tiny' }, options: { dataset: 'mnist', epochs: 6 }, progress: { epoch: 2 }, stepsTaken: 250 },
    tensors: new Map([['w', new Float32Array([1, 2])]]),
  });
  const run = await findExistingRun(dir);
  assert.equal(run?.files, ['last.ckpt']);
  assert.is(run?.description, 'model digits-tiny on mnist, 2 of 6 epochs done (step 250, from last.ckpt)');
  await writeFile(join(dir, 'summary.json'), JSON.stringify({ model: 'digits-fast', dataset: 'mnist', epochs: 3, testAccuracy: 0.9812, status: 'completed' }));
  assert.is((await findExistingRun(dir))?.description, 'model digits-fast on mnist, 3 epochs done, test accuracy 98.12%, completed');
});

test('a run in --out is refused, naming it and the choices, and nothing changes; --overwrite deletes its files only, and says so', async () => {
  const dir = join(root, 'refuse');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'metrics.jsonl'), '{"type":"step","epoch":1,"batch":1,"step":1,"loss":2}\n');
  await writeFile(join(dir, 'best.ckpt'), 'old');
  await writeFile(join(dir, 'notes.txt'), 'mine');
  const lines: string[] = [];
  await prepareRunDir(options(dir), undefined, (l) => lines.push(l)).then(
    () => assert.unreachable('a run is there'),
    (e: Error) => {
      assert.instance(e, OptionsError);
      assert.match(e.message, /already holds a run \(nothing in it tells which model; metrics\.jsonl, best\.ckpt\)/);
      assert.match(e.message, /It has no last\.ckpt to --resume from/);
      assert.match(e.message, /another --out/);
      assert.match(e.message, /--overwrite \(deletes metrics\.jsonl, best\.ckpt\)/);
    },
  );
  assert.equal((await readdir(dir)).sort(), ['best.ckpt', 'metrics.jsonl', 'notes.txt'], 'nothing changed');
  await prepareRunDir(options(dir, { overwrite: true }), undefined, (l) => lines.push(l));
  assert.equal(await readdir(dir), ['notes.txt'], 'the run files are gone, the user\'s file stays');
  assert.match(lines.join('\n'), /--overwrite: deleted the earlier run in .*refuse \(nothing in it tells which model; metrics\.jsonl, best\.ckpt\)/);
  // Resuming the run that lives in --out is no clash; --overwrite would delete the run being continued.
  await writeFile(join(dir, 'last.ckpt'), 'x');
  await prepareRunDir(options(dir, { resume: join(dir, 'last.ckpt') }), undefined, () => undefined);
  await prepareRunDir(options(dir, { resume: join(dir, 'last.ckpt'), overwrite: true }), undefined, () => undefined).then(
    () => assert.unreachable('overwrite + resume in place'), (e: Error) => assert.match(e.message, /--overwrite would delete the run that --resume/));
});

test('a resume into a new --out starts its log from the checkpoint\'s run, rewound; the old run\'s log stays', async () => {
  const from = join(root, 'resume-from');
  await mkdir(from);
  const log = [1, 2, 3].map((s) => JSON.stringify({ type: 'step', epoch: 1, batch: s, step: s, loss: s })).join('\n');
  await writeFile(join(from, 'metrics.jsonl'), `${log}\n`);
  const to = join(root, 'resume-to');
  const dropped = await prepareRunDir(options(to, { resume: join(from, 'last.ckpt') }), { step: 2, epochs: 0 }, () => undefined);
  assert.is(dropped, 1);
  assert.equal((await readMetrics(join(to, 'metrics.jsonl'))).map((r) => r.step), [1, 2]);
  assert.is(await readFile(join(from, 'metrics.jsonl'), 'utf8'), `${log}\n`);
});

test('temporary files of dead processes are removed, a live process\'s are kept, and the removal is reported', async () => {
  const dir = join(root, 'temp');
  await mkdir(dir, { recursive: true });
  const dead = deadPid();
  const live = process.ppid;
  const names = [`last.ckpt.tmp-${dead}-a1b2c3d4e5f6`, `summary.json.tmp-${dead}-00ff00ff00ff`, `best.ckpt.tmp-${live}-0123456789ab`, `last.ckpt.tmp-${process.pid}-abcdefabcdef`, 'last.ckpt.tmp-notes'];
  for (const n of names) await writeFile(join(dir, n), 'partial');
  assert.equal(await removeStaleTempFiles(dir), [`last.ckpt.tmp-${dead}-a1b2c3d4e5f6`, `summary.json.tmp-${dead}-00ff00ff00ff`]);
  assert.equal((await readdir(dir)).sort(), [`best.ckpt.tmp-${live}-0123456789ab`, `last.ckpt.tmp-${process.pid}-abcdefabcdef`, 'last.ckpt.tmp-notes'].sort());
  await writeFile(join(dir, `last.ckpt.tmp-${dead}-ffffffffffff`), 'partial');
  const lines: string[] = [];
  await prepareRunDir(options(dir), undefined, (l) => lines.push(l));
  assert.match(lines.join('\n'), new RegExp(`removed 1 temporary file left by killed runs in .*: last\\.ckpt\\.tmp-${dead}-ffffffffffff`));
});

test('an --out that is a file, or lies under one, or cannot be written, gets a message that names it and the fix', async () => {
  const file = join(root, 'a-file');
  await writeFile(file, 'x');
  for (const out of [file, join(file, 'sub')]) {
    await prepareOutDir(out).then(() => assert.unreachable(out), (e: Error) => {
      assert.instance(e, OptionsError);
      assert.match(e.message, /is a file, not a directory; give --out a directory/);
      assert.ok(e.message.includes(file), e.message);
    });
  }
  // Tests run as root, where permissions cannot deny a write: the mapping of the error codes is checked directly.
  const denied = Object.assign(new Error("EACCES: permission denied, mkdir '/x/run'"), { code: 'EACCES' });
  assert.is(outDirError('/x/run', denied).message, 'train: --out /x/run: cannot write there (permission denied); give --out a directory you can write to');
  const readOnly = Object.assign(new Error('EROFS'), { code: 'EROFS' });
  assert.match(outDirError('/x/run', readOnly).message, /read-only file system/);
  await prepareOutDir(join(root, 'new', 'deep'));
  assert.equal(await readdir(join(root, 'new', 'deep')), [], 'made, and the write probe removed');
});

test('rewinding the metrics log to a checkpoint keeps each step once and drops what was logged after it', async () => {
  const path = join(root, 'rewind', 'metrics.jsonl');
  await mkdir(join(root, 'rewind'));
  const step = (s: number, loss: number) => JSON.stringify({ type: 'step', epoch: Math.ceil(s / 4), batch: ((s - 1) % 4) + 1, step: s, loss });
  // Steps 1-6 and epoch 1; a kill; a resume from step 4 that logged 5 and 6 again and was killed; then step 7 torn.
  const lines = [1, 2, 3, 4].map((s) => step(s, s)).concat(JSON.stringify({ type: 'epoch', epoch: 1, trainLoss: 2.5 }), step(5, 5), step(6, 6),
    JSON.stringify({ type: 'resume', step: 4, epoch: 1, changed: {} }), step(5, 50), step(6, 60), JSON.stringify({ type: 'epoch', epoch: 2 }));
  await writeFile(path, `${lines.join('\n')}\n{"type":"step","epo`);
  const dropped = await rewindMetricsLog(path, path, { step: 5, epochs: 1 });
  const raw = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(raw.filter((r) => r.type === 'step').map((r) => [r.step, r.loss]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 50]]);
  assert.equal(raw.filter((r) => r.type === 'epoch').map((r) => r.epoch), [1]);
  assert.is(raw.filter((r) => r.type === 'resume').length, 1, 'the resume record at step 4 is history before the checkpoint');
  assert.is(dropped, lines.length + 1 - raw.length, 'reports the lines dropped (the torn one included)');
  // Into a new --out: the source stays as it was.
  const copy = join(root, 'rewind-copy', 'metrics.jsonl');
  await rewindMetricsLog(path, copy, { step: 2, epochs: 0 });
  assert.equal((await readMetrics(copy)).map((r) => r.step), [1, 2]);
  assert.is((await readMetrics(path)).length, raw.length);
  assert.is(await rewindMetricsLog(join(root, 'none.jsonl'), join(root, 'none2.jsonl'), { step: 1, epochs: 0 }), 0, 'no log: nothing to do');
});

test('a resume may change epochs, lr, schedule, optimizer settings, memory, augmentation and --out, and refuses the rest by name', () => {
  const saved = options('runs/a');
  assert.equal(resumeOptionChanges(saved, { ...saved, resume: 'runs/a/last.ckpt', overwrite: false }), {}, 'resume/overwrite are not run options');
  assert.equal(resumeOptionChanges(saved, { ...saved, lr: 0.01, epochs: 4, memory: 'recompute', outDir: 'runs/b', augment: true }), {
    lr: { from: 0.05, to: 0.01 }, epochs: { from: 2, to: 4 }, memory: { from: 'fused', to: 'recompute' }, augment: { from: false, to: true }, outDir: { from: 'runs/a', to: 'runs/b' },
  });
  try {
    resumeOptionChanges(saved, { ...saved, batch: 32, seed: 1, lr: 0.01 });
    assert.unreachable('batch and seed');
  } catch (e) {
    assert.instance(e, OptionsError);
    assert.match((e as Error).message, /--resume cannot change these options: --batch \(16 in the checkpoint, 32 asked\): the checkpoint recorded the data order/);
    assert.match((e as Error).message, /--seed \(7 in the checkpoint, 1 asked\)/);
    assert.not.match((e as Error).message, /--lr \(/, 'lr may change');
  }
  assert.throws(() => resumeOptionChanges(saved, { ...saved, optimizer: 'adam' }), /--optimizer .*optimizer's state/);
  assert.throws(() => resumeOptionChanges(saved, { ...saved, limit: 128 }), /--limit \(64 in the checkpoint, 128 asked\)/);
});

test.run();
