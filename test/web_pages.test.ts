// The pages in a real browser: Debian's chromium, headless, driven by playwright-core, WebGPU on
// its SwiftShader adapter (--enable-unsafe-webgpu). The Digits page's logits and one training step
// of the Train page equal Node's (Dawn on this machine's adapter) on the same weights and batch; a
// browser without a WebGPU adapter, or without navigator.gpu, shows the message, not an exception.
// Screenshots go to $WEB_SCREENSHOTS (default dist/screenshots/).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { openDevice, type Gpu } from '../src/gpu/device.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { configFromWeights, exportTorchvisionWeights, matchTorchvisionWeights } from '../src/io/torchvision.js';
import { describeDenseNet } from '../src/models/architecture.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { loadMnist } from '../src/train/data/mnist.js';
import { normalize } from '../src/train/data/core.js';

const test = suite('web pages');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.WEB_SCREENSHOTS ?? 'dist/screenshots';
/** The flags this machine needs (no network, no sandbox as root, a fresh profile), plus WebGPU where asked. */
const FLAGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

interface WebScript { buildPages(): Promise<void>; servePages(port: number): Promise<Server> }
let server: Server;
let base = '';
let browser: Browser;
let gpu: Gpu;
const digits = loadMnist({ seed: 0 });
const N = 8;

/** Playwright starts every launch on a new, empty profile of its own (it refuses --user-data-dir in args). */
async function launch(webgpu: boolean): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...(webgpu ? ['--enable-unsafe-webgpu'] : [])] });
}

/** A page with its uncaught exceptions collected (a page must never throw one). */
async function open(b: Browser, path: string): Promise<{ page: Page; errors: string[] }> {
  const page = await b.newPage({ viewport: { width: 1100, height: 860 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base + path);
  return { page, errors };
}

test.before(async () => {
  // uvu reports a failing hook only as failed tests: print why.
  try {
    await setUp();
  } catch (e) {
    console.error(`web pages: set-up failed: ${(e as Error).message}`);
    throw e;
  }
});

async function setUp(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium is not installed at ${CHROMIUM}: the browser tests cannot run. Install Debian's package: apt-get install -y chromium ` +
      '(scripts/setup.sh and .ci/run do it as root), or set CHROMIUM_PATH');
  }
  mkdirSync(SHOTS, { recursive: true });
  const web = (await import(pathToFileURL('scripts/web.mjs').href)) as WebScript;
  await web.buildPages();
  server = await web.servePages(0);
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  browser = await launch(true);
  gpu = await openDevice();
}

test.after(async () => {
  await browser?.close();
  server?.close();
  gpu?.close();
});

/** |a − b| ≤ tol · max(1, largest |b| of the row): logits are compared relative to the row's scale. */
function worstRelative(a: ArrayLike<number>, b: ArrayLike<number>, row: number): number {
  let worst = 0;
  for (let r = 0; r < b.length / row; r++) {
    let scale = 1;
    for (let j = 0; j < row; j++) scale = Math.max(scale, Math.abs(b[r * row + j]));
    for (let j = 0; j < row; j++) worst = Math.max(worst, Math.abs(a[r * row + j] - b[r * row + j]) / scale);
  }
  return worst;
}

test('Digits: the page\'s logits for 8 test digits equal Node\'s on the same weights (1e-4 relative); drawing shows a top-3; a picked .safetensors loads, a broken file is refused', async () => {
  const { page, errors } = await open(browser, 'digits/');
  await page.evaluate(() => (globalThis as any).digitsPage.ready);
  assert.match(await page.textContent('#adapter') ?? '', /^adapter: .+\((software|integrated|discrete|unknown)/);
  assert.ok(await page.evaluate(() => (globalThis as any).digitsPage.loaded()), `default model loaded: ${await page.textContent('#problem')}`);
  assert.match(await page.textContent('#model') ?? '', /digits-fast .*test accuracy \d+\.\d\d%/);

  const per = 28 * 28;
  const raw = digits.test.images.subarray(0, N * per);
  const pageLogits = await page.evaluate(([images, n]) => (globalThis as any).digitsPage.logits(images, n), [Array.from(raw), N] as const) as number[];

  const checkpoint = await readCheckpoint('web/model/digits.ckpt');
  const model = DenseNetModel.create(gpu, checkpoint.header.config as never, 0);
  model.writeParameters(new Map([...checkpoint.tensors].filter(([n]) => !n.startsWith('optimizer.'))));
  const session = await InferenceSession.create(model, { batch: N });
  const nodeLogits = await session.run(normalize(raw, [1, 28, 28], checkpoint.header.mean as number[], checkpoint.header.std as number[]));
  session.destroy();
  model.close();

  assert.is(pageLogits.length, N * 10);
  const worst = worstRelative(pageLogits, nodeLogits, 10);
  console.log(`  digits: page logits against Node's, worst ${worst.toExponential(2)} of the row's scale (limit 1e-4)`);
  assert.ok(worst <= 1e-4, `page logits differ from Node's by ${worst.toExponential(2)} relative (limit 1e-4)`);
  const argmax = (a: ArrayLike<number>, i: number) => { let best = 0; for (let j = 1; j < 10; j++) if (a[i * 10 + j] > a[i * 10 + best]) best = j; return best; };
  const right = Array.from({ length: N }, (_, i) => argmax(pageLogits, i) === digits.test.labels[i]).filter(Boolean).length;
  assert.ok(right >= N - 1, `the default model reads only ${right} of ${N} test digits right`);

  // A hand-drawn 7: three rows of predictions, the first a 7.
  const pad = (await page.locator('#pad').boundingBox())!;
  await page.mouse.move(pad.x + 80, pad.y + 60);
  await page.mouse.down();
  await page.mouse.move(pad.x + 200, pad.y + 60, { steps: 8 });
  await page.mouse.move(pad.x + 120, pad.y + 240, { steps: 12 });
  await page.mouse.up();
  await page.waitForFunction("document.querySelectorAll('#predictions .pred').length === 3", undefined, { timeout: 60_000 });
  await page.waitForTimeout(500);
  assert.is((await page.textContent('#predictions .pred.first .digit'))?.trim(), '7');
  await page.screenshot({ path: join(SHOTS, 'web-digits.png') });

  // The visitor's own file: an exported .safetensors loads and predicts the same; a broken file is refused, the model kept.
  const dir = mkdtempSync(join(tmpdir(), 'densenet-wgsl-web-'));
  try {
    const exported = join(dir, 'mine.safetensors');
    await exportTorchvisionWeights({ ...checkpoint, name: 'digits.ckpt' }, exported);
    await page.setInputFiles('#file', exported);
    await page.waitForFunction("/^mine\\.safetensors: digits-fast .*from a safetensors/.test(document.getElementById('model').textContent)", undefined, { timeout: 60_000 });
    const again = await page.evaluate(([images, n]) => (globalThis as any).digitsPage.logits(images, n), [Array.from(raw), N] as const) as number[];
    assert.ok(worstRelative(again, nodeLogits, 10) <= 1e-4, 'the exported weights give the same logits');
    const broken = join(dir, 'broken.ckpt');
    writeFileSync(broken, readFileSync('web/model/digits.ckpt').subarray(0, 1000));
    await page.setInputFiles('#file', broken);
    await page.waitForSelector('#problem:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#problem') ?? '', /broken\.ckpt was not loaded: .*truncated/);
    assert.match(await page.textContent('#model') ?? '', /^mine\.safetensors: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(errors, []);
  await page.close();
});

test('Train: one training step in the page gives Node\'s loss and updated weights (same seed, batch, lr); the page trains, stops, and its download is a model Node reads', async () => {
  const { page, errors } = await open(browser, 'train/');
  await page.evaluate(() => (globalThis as any).trainPage.ready);
  const per = 28 * 28;
  const images = normalize(digits.train.images.subarray(0, N * per), [1, 28, 28], digits.mean, digits.std);
  const labels = digits.train.labels.subarray(0, N);
  const step = { model: 'digits-fast', seed: 5, lr: 0.1 };
  const fromPage = await page.evaluate((o) => (globalThis as any).trainPage.oneStep(o), { ...step, images: Array.from(images), labels: Array.from(labels) }) as
    { loss: number; correct: number; params: Record<string, number[]> };

  const model = DenseNetModel.create(gpu, { ...preset('digits-fast'), classes: 10 }, step.seed);
  const initial = await model.readParameters();
  const session = await TrainingSession.create(model, { batch: N, memory: 'fused', optimizer: { kind: 'sgd', lr: step.lr, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }, seed: step.seed });
  const r = await session.step(images, labels, step.lr);
  const after = await model.readParameters();
  session.destroy();
  model.close();

  assert.ok(Math.abs(fromPage.loss - r.loss) <= 1e-4 * Math.abs(r.loss), `loss: page ${fromPage.loss}, Node ${r.loss}`);
  assert.is(fromPage.correct, r.correct);
  let moved = 0;
  let worst = 0;
  let worstName = '';
  for (const [name, node] of after) {
    const got = fromPage.params[name];
    assert.ok(got && got.length === node.length, `parameter ${name} from the page`);
    const init = initial.get(name)!;
    // Each value within 1e-4 of its own update's size plus 1e-6 · max|w|: float sums in another order, not another step.
    let scale = 0;
    for (let i = 0; i < node.length; i++) scale = Math.max(scale, Math.abs(node[i]));
    for (let i = 0; i < node.length; i++) {
      moved = Math.max(moved, Math.abs(node[i] - init[i]));
      const err = Math.abs(got[i] - node[i]) / (1e-4 * Math.abs(node[i] - init[i]) + 1e-6 * scale + 1e-12);
      if (err > worst) { worst = err; worstName = `${name}[${i}]: page ${got[i]}, Node ${node[i]}, before ${init[i]}`; }
    }
  }
  console.log(`  train step: loss page ${fromPage.loss} Node ${r.loss}; weights at ${worst.toFixed(3)} of the tolerance, largest update ${moved.toExponential(2)}`);
  assert.ok(moved > 1e-4, `the step moved no weight (largest change ${moved})`);
  assert.ok(worst <= 1, `updated weights differ beyond tolerance (×${worst.toFixed(2)}): ${worstName}`);

  // The page itself: start training, see steps and images/s, stop, download enabled.
  await page.fill('#batch', '16'); // small steps: the test needs a few, not speed
  await page.click('#start');
  await page.waitForFunction("/images\\/s/.test(document.getElementById('stats').textContent) && /batch ([3-9]|[0-9]{2,})\\//.test(document.getElementById('stats').textContent)", undefined, { timeout: 240_000 });
  await page.click('#stop');
  await page.waitForFunction("/stopped after \\d+ steps/.test(document.getElementById('epoch-results').textContent)", undefined, { timeout: 60_000 });
  assert.is(await page.isVisible('#epoch-results'), true);
  assert.is(await page.isEnabled('#download'), true);
  // The download is a safetensors file Node reads back as the page's model (config recorded, every tensor fitting).
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const dir = mkdtempSync(join(tmpdir(), 'densenet-wgsl-web-'));
  try {
    const file = join(dir, download.suggestedFilename());
    await download.saveAs(file);
    assert.match(file, /digits-fast-tab\.safetensors$/);
    const contents = await readSafetensors(file);
    const config = configFromWeights(contents);
    assert.is(config?.name, 'digits-fast');
    assert.is(matchTorchvisionWeights(describeDenseNet(config!), contents, file).values.size, describeDenseNet(config!).parameters.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await page.screenshot({ path: join(SHOTS, 'web-train.png') });
  assert.equal(errors, []);
  await page.close();
});

test('Benchmark: the page runs bench ops (small shapes), a bench train step against tfjs-webgpu and bench profile, and fills the tables; the JSON record names the adapter', async () => {
  const { page, errors } = await open(browser, 'bench/');
  await page.evaluate(() => (globalThis as any).benchPage.ready);
  await page.fill('#reps', '1');
  const r = await page.evaluate(() => (globalThis as any).benchPage.run()) as { rows: number; complete: boolean };
  assert.equal(r, { rows: 8, complete: true });
  const cells = await page.$$eval('#results tbody tr', (trs) => trs.map((tr: any) => Array.from(tr.querySelectorAll('td'), (td: any) => String(td.textContent ?? ''))));
  assert.is(cells.length, 8);
  for (const row of cells) {
    assert.match(row[2] + ' ' + row[3], /^\d+\.\d{3} \d+\.\d{3}$/, `timings of ${row.join(' | ')}`);
    assert.match(row[4], /^\d+\.\d\d×$/, `ratio of ${row.join(' | ')}`);
  }
  // The training step of bench train, on a tiny problem with one timed step (the page's own choices are larger).
  const t = await page.evaluate(() => (globalThis as any).benchPage.runTrain({ model: 'digits-tiny', batch: 2, steps: 1 })) as { rows: number; complete: boolean };
  assert.equal(t, { rows: 2, complete: true });
  const trainCells = await page.$$eval('#train-results tbody tr', (trs) => trs.map((tr: any) => Array.from(tr.querySelectorAll('td'), (td: any) => String(td.textContent ?? ''))));
  assert.equal(trainCells.map((r) => r[0]), ['ours-fused', 'tfjs-webgpu']);
  for (const row of trainCells) assert.match(row[3], /^\d+\.\d\d$/, `images/s of ${row.join(' | ')}`);
  // Same parameters and batch: the first losses agree (they are printed to 5 decimals).
  assert.ok(Math.abs(Number(trainCells[0][6]) - Number(trainCells[1][6])) <= 2e-5, `first losses ${trainCells[0][6]} and ${trainCells[1][6]}`);
  // bench profile of a tiny training step: every launch timed, the roles add up to the launches' sum.
  const p = await page.evaluate(() => (globalThis as any).benchPage.profileStep({ model: 'digits-tiny', batch: 2, mode: 'train', steps: 1 })) as
    { launches: number; launchSumMs: number; byRole: [string, number, number][] };
  assert.ok(p.launches > 50, `${p.launches} launches`);
  assert.is(p.byRole.reduce((s, r) => s + r[1], 0), p.launches);
  assert.ok(Math.abs(p.byRole.reduce((s, r) => s + r[2], 0) - p.launchSumMs) <= 1e-9 * p.launchSumMs && p.launchSumMs > 0, `roles sum to the launches' ${p.launchSumMs} ms`);
  assert.match(await page.textContent('#profile-report') ?? '', 'launches timed one by one');
  const record = await page.evaluate(() => (globalThis as any).benchPage.record()) as
    { adapter: { class: string }; browser: string; ops: { rows: unknown[] }; train: { rows: unknown[] }; profile: { header: { model: string } } };
  assert.ok(record.adapter.class && record.browser && record.ops.rows.length === 8 && record.train.rows.length === 2 && record.profile.header.model === 'digits-tiny',
    'the JSON record holds the adapter, the browser, both tables and the profile');
  assert.is(await page.isEnabled('#download'), true);
  await page.screenshot({ path: join(SHOTS, 'web-bench.png'), fullPage: true });
  assert.equal(errors, []);
  await page.close();
});

test('a browser without a WebGPU adapter, or without navigator.gpu, shows the message on every page, no exception', async () => {
  const plain = await launch(false);
  try {
    for (const path of ['digits/', 'train/', 'bench/']) {
      const { page, errors } = await open(plain, path);
      await page.waitForSelector('#problem:not([hidden])', { timeout: 30_000 });
      assert.match(await page.textContent('#problem') ?? '', /WebGPU is not available: no WebGPU adapter was found/);
      assert.is(await page.textContent('#adapter'), 'no WebGPU adapter');
      if (path === 'digits/') await page.screenshot({ path: join(SHOTS, 'web-no-webgpu.png') });
      assert.equal(errors, [], path);
      await page.close();
    }
  } finally {
    await plain.close();
  }
  const context = await browser.newContext();
  await context.addInitScript("Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined })");
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base + 'digits/');
  await page.waitForSelector('#problem:not([hidden])', { timeout: 30_000 });
  assert.match(await page.textContent('#problem') ?? '', /this browser has no WebGPU \(navigator\.gpu is missing\)/);
  assert.equal(errors, []);
  await context.close();
});

test.run();
