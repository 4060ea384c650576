import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendMetrics, MetricsError, readMetrics, readSummary, writeSummary, type MetricsRecord } from '../src/train/metrics.js';
import { downsample, niceTicks, renderTrainingPlot } from '../src/train/plot.js';

const test = suite('metrics and plot');
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'metrics-test-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const step = (epoch: number, batch: number, stepNo: number, loss: number): MetricsRecord => ({ type: 'step', epoch, batch, step: stepNo, loss, lr: 0.1 });
const epochRec = (epoch: number, testAccuracy: number): MetricsRecord => ({ type: 'epoch', epoch, trainLoss: 1 / epoch, trainAccuracy: 0.5, testLoss: 1.1 / epoch, testAccuracy });

test('appendMetrics creates the directory, writes one line per record in call order; readMetrics reads them back', async () => {
  const path = join(dir, 'run1', 'nested', 'metrics.jsonl');
  const records = [step(1, 1, 1, 2.3), step(1, 2, 2, 2.1), epochRec(1, 0.4), { type: 'note', text: 'a "quoted"\nline' }];
  await Promise.all(records.map((r) => appendMetrics(path, r))); // not awaited one by one: order must still hold
  const text = await readFile(path, 'utf8');
  assert.is(text.split('\n').length, records.length + 1, 'one line each, newline-terminated');
  assert.equal(await readMetrics(path), records);
});

test('appending goes on after the directory was removed', async () => {
  const sub = join(dir, 'gone');
  const path = join(sub, 'metrics.jsonl');
  await appendMetrics(path, step(1, 1, 1, 2));
  await rm(sub, { recursive: true });
  await appendMetrics(path, step(1, 2, 2, 1.5));
  assert.equal(await readMetrics(path), [step(1, 2, 2, 1.5)]);
});

test('non-finite numbers become null; a record needs a type', async () => {
  const path = join(dir, 'nan.jsonl');
  await appendMetrics(path, { type: 'step', epoch: 1, batch: 1, step: 1, loss: NaN });
  assert.is((await readMetrics(path))[0].loss, null);
  try {
    await appendMetrics(path, { loss: 1 } as unknown as MetricsRecord);
    assert.unreachable('no type');
  } catch (e) {
    assert.instance(e, MetricsError);
    assert.match((e as Error).message, /needs a string "type" field/);
  }
});

test('a torn last line is skipped on read and dropped before the next append', async () => {
  const path = join(dir, 'torn.jsonl');
  await writeFile(path, `${JSON.stringify(step(1, 1, 1, 2))}\n{"type":"step","epo`);
  assert.equal(await readMetrics(path), [step(1, 1, 1, 2)]);
  await appendMetrics(path, step(1, 2, 2, 1.9));
  assert.is(await readFile(path, 'utf8'), `${JSON.stringify(step(1, 1, 1, 2))}\n${JSON.stringify(step(1, 2, 2, 1.9))}\n`);
});

test('a damaged line in the middle is an error naming the file and line; a missing file too', async () => {
  const path = join(dir, 'bad.jsonl');
  await writeFile(path, `${JSON.stringify(step(1, 1, 1, 2))}\n{oops\n${JSON.stringify(step(1, 2, 2, 2))}\n`);
  try {
    await readMetrics(path);
    assert.unreachable('bad line');
  } catch (e) {
    assert.instance(e, MetricsError);
    assert.match((e as Error).message, /bad\.jsonl:2: not valid JSON/);
  }
  await writeFile(path, '[1,2]\n');
  try {
    await readMetrics(path);
    assert.unreachable('array line');
  } catch (e) {
    assert.match((e as Error).message, /bad\.jsonl:1: not a JSON object with a string "type" field/);
  }
  try {
    await readMetrics(join(dir, 'absent.jsonl'));
    assert.unreachable('missing');
  } catch (e) {
    assert.match((e as Error).message, /absent\.jsonl: no such file/);
  }
});

test('a resumed run supersedes the log past its checkpoint (rewind), unless asked not to', async () => {
  const path = join(dir, 'resumed.jsonl');
  // Run 1: epochs 1 and 2 (2 batches each), then 1 step of epoch 3 before a crash.
  const first = [step(1, 1, 1, 2), step(1, 2, 2, 1.8), epochRec(1, 0.3), step(2, 1, 3, 1.5), step(2, 2, 4, 1.4), epochRec(2, 0.5), step(3, 1, 5, 1.3)];
  // Run 2 resumes from the checkpoint after epoch 1.
  const second = [step(2, 1, 3, 1.6), step(2, 2, 4, 1.45), epochRec(2, 0.45)];
  for (const r of [...first, ...second]) await appendMetrics(path, r);
  assert.equal(await readMetrics(path), [...first.slice(0, 3), ...second]);
  assert.is((await readMetrics(path, { rewind: false })).length, first.length + second.length);
  // A fresh run in the same directory starts again from step 1: only its records remain.
  await appendMetrics(path, step(1, 1, 1, 2.2));
  assert.equal(await readMetrics(path), [step(1, 1, 1, 2.2)]);
});

test('writeSummary is atomic and pretty; readSummary reads it', async () => {
  const path = join(dir, 'out', 'summary.json');
  await writeSummary(path, { model: 'digits-small', testAccuracy: 0.97 });
  await writeSummary(path, { model: 'digits-small', testAccuracy: 0.98, nan: NaN });
  assert.equal(await readSummary(path), { model: 'digits-small', testAccuracy: 0.98, nan: null });
  assert.match(await readFile(path, 'utf8'), /^{\n {2}"model": "digits-small",\n/);
  assert.equal(await readdir(join(dir, 'out')), ['summary.json'], 'no temporary files');
  await writeFile(join(dir, 'out', 'broken.json'), '{"a":');
  try {
    await readSummary(join(dir, 'out', 'broken.json'));
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /broken\.json: not valid JSON/);
  }
});

// ---- plot ----

/** Crude XML check: every tag is closed in order, attribute values are quoted and hold no '<'. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), 'an svg root with its namespace');
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(svg))) {
    const between = svg.slice(last, m.index);
    assert.not.ok(/[<>]/.test(between), `stray markup before offset ${m.index}: ${between.slice(0, 60)}`);
    assert.not.ok(/&(?!(amp|lt|gt|quot|apos);)/.test(between), `unescaped & near offset ${m.index}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) assert.is(stack.pop(), name, `closing </${name}> at ${m.index}`);
    else if (!selfClose) stack.push(name);
  }
  assert.not.ok(/[<>]/.test(svg.slice(last)), 'nothing after the last tag');
  assert.equal(stack, [], 'all tags closed');
}

function polylines(svg: string): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const m of svg.matchAll(/<polyline[^>]*data-series="([^"]+)"[^>]*points="([^"]*)"/g)) {
    out.set(m[1], m[2].trim().split(/\s+/).map((p) => p.split(',').map(Number) as [number, number]));
  }
  return out;
}

function records(epochs: number, batches: number): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  let n = 0;
  for (let e = 1; e <= epochs; e++) {
    for (let b = 1; b <= batches; b++) out.push(step(e, b, ++n, 2.3 / (1 + n / 10)));
    out.push(epochRec(e, 0.5 + 0.4 * (e / epochs)));
  }
  return out;
}

test('the plot is well-formed SVG with one polyline point per step and per epoch', () => {
  const svg = renderTrainingPlot(records(4, 25), { title: 'densenet <bc> & co' });
  assertWellFormed(svg);
  assert.ok(svg.includes('densenet &lt;bc&gt; &amp; co'), 'the title is escaped');
  const lines = polylines(svg);
  assert.equal([...lines.keys()], ['train-loss-step', 'train-loss', 'test-loss', 'train-accuracy', 'test-accuracy']);
  assert.is(lines.get('train-loss-step')!.length, 100);
  for (const id of ['train-loss', 'test-loss', 'train-accuracy', 'test-accuracy']) assert.is(lines.get(id)!.length, 4, id);
  assert.not.ok(/NaN|Infinity|undefined/.test(svg));
  // Inside the frame; x increases along each series; loss falls, so y (downwards) rises.
  const steps = lines.get('train-loss-step')!;
  for (let i = 1; i < steps.length; i++) {
    assert.ok(steps[i][0] > steps[i - 1][0], 'x increases');
    assert.ok(steps[i][1] > steps[i - 1][1], 'falling loss is drawn lower');
  }
  for (const [x, y] of [...lines.values()].flat()) assert.ok(x >= 72 && x <= 876 && y >= 76 && y <= 568, `${x},${y} inside the panels`);
  // The last step (epoch 4, batch 25) and the epoch-4 points share an x.
  assert.is(steps[99][0], lines.get('train-loss')![3][0]);
  for (const label of ['epoch', 'accuracy (%)', 'cross-entropy loss', 'test accuracy', 'train loss (per step)']) assert.ok(svg.includes(`>${label}</text>`), label);
  assert.match(svg, /after epoch 4: test accuracy 90\.00% \(best 90\.00% at epoch 4\)/);
});

test('one epoch, epoch records only (the trainer history), NaN values and no data at all', () => {
  const one = renderTrainingPlot([{ epoch: 1, trainLoss: 0.5, trainAccuracy: 0.9, testLoss: 0.6, testAccuracy: 0.88, seconds: 3 }]);
  assertWellFormed(one);
  const lines = polylines(one);
  assert.equal([...lines.keys()], ['train-loss', 'test-loss', 'train-accuracy', 'test-accuracy']);
  for (const l of lines.values()) assert.is(l.length, 1);
  assert.is((one.match(/<circle /g) ?? []).length, 4, 'a marker for each single point');
  assert.not.ok(/NaN|Infinity/.test(one));

  const withNaN = records(2, 10);
  withNaN[3].loss = NaN;
  withNaN[4].loss = null;
  withNaN[10].testAccuracy = Infinity;
  const svg = renderTrainingPlot(withNaN);
  assertWellFormed(svg);
  assert.not.ok(/NaN|Infinity/.test(svg));
  assert.is(polylines(svg).get('train-loss-step')!.length, 18, 'the two bad steps are left out');
  assert.is(polylines(svg).get('test-accuracy')!.length, 1);

  const empty = renderTrainingPlot([]);
  assertWellFormed(empty);
  assert.is(polylines(empty).size, 0);
  assert.ok(empty.includes('no data yet'));
  assert.not.ok(/NaN|Infinity/.test(empty));
});

test('many steps are averaged down to maxStepPoints; downsample keeps means exactly', () => {
  const svg = renderTrainingPlot(records(300, 40), { maxStepPoints: 500 });
  assertWellFormed(svg);
  assert.is(polylines(svg).get('train-loss-step')!.length, 500);
  assert.is(polylines(svg).get('test-accuracy')!.length, 300);
  assert.is((svg.match(/<circle /g) ?? []).length, 0, 'no markers beyond 100 epochs');
  const pts: [number, number][] = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 7], [6, 8]];
  assert.equal(downsample(pts, 3), [[0.5, 1.5], [2.5, 3.5], [5, 20 / 3]]);
  assert.is(downsample(pts, 10), pts);
});

test('resume records (with a step, an epoch and the options changed) are read back as written and leave the plot as without them', async () => {
  const path = join(dir, 'with-resume.jsonl');
  const plain = records(2, 4);
  const resume: MetricsRecord = { type: 'resume', step: 6, epoch: 1, from: 'runs/x/last.ckpt', changed: { lr: { from: 0.1, to: 0.01 } } };
  const logged = [...plain.slice(0, 7), resume, ...plain.slice(7)];
  for (const r of logged) await appendMetrics(path, r);
  assert.equal(await readMetrics(path), logged, 'kept in place by the rewind, which only steps and epochs drive');
  assert.is(renderTrainingPlot(logged), renderTrainingPlot(plain));
});

test('niceTicks', () => {
  assert.equal(niceTicks(0, 2.3).values, [0, 0.5, 1, 1.5, 2, 2.5]);
  assert.equal(niceTicks(0, 300, 1).values, [0, 50, 100, 150, 200, 250, 300]);
  assert.equal(niceTicks(0, 3, 1).values, [0, 1, 2, 3]);
  assert.equal(niceTicks(0, 1).values, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.equal(niceTicks(91.3, 97.2).values, [91, 92, 93, 94, 95, 96, 97, 98]);
  assert.equal(niceTicks(5, 5).values, [5, 5.2, 5.4, 5.6, 5.8, 6], 'an empty range widens');
});

test.run();
