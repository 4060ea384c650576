// Time to the first step on a machine that has never run the engine: the default model's distinct
// GPU programs are pinned (each costs seconds of driver compile when the shader cache is empty), and
// with an empty cache the warm-up compiles every program the first step uses, on helper devices
// too, so that the step itself compiles nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setImmediate as realImmediate } from 'node:timers';
import { join } from 'node:path';
import { openDevice } from '../src/gpu/device.js';
import { quietPolling, type CompiledPipeline } from '../src/gpu/warmup.js';
import { compileProgressPrinter } from '../src/cli/compile_progress.js';
import { DEFAULT_DIGITS_PRESET, preset } from '../src/models/index.js';
import { DenseNetModel } from '../src/models/model.js';
import { TrainingSession } from '../src/models/session.js';
import { closeTestGpu, testGpu } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };

/** Bytes under the driver's shader cache (Mesa: $XDG_CACHE_HOME/mesa_shader_cache*); it grows with each compile. */
function cacheBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

// Child mode: with an empty shader cache, warm up digits-tiny, then take one step; print what happened.
if (process.env.COLD_START_CACHE) {
  const cache = process.env.COLD_START_CACHE;
  const gpu = await openDevice();
  const model = DenseNetModel.create(gpu, preset('digits-tiny'), 1);
  const compiled: CompiledPipeline[] = [];
  const session = await TrainingSession.create(model, { batch: 8, memory: 'fused', optimizer: sgd, onCompile: (_k, _n, c) => { if (c) compiled.push(c); } });
  // The driver writes cache entries on a thread of its own: let the last ones land.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const afterWarmup = cacheBytes(cache);
  const started = performance.now();
  const { loss } = await session.step(new Float32Array(8 * 28 * 28).fill(0.5), new Uint32Array(8), 0.1);
  const stepMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const afterStep = cacheBytes(cache);
  console.log(JSON.stringify({ software: gpu.profile.isSoftware, compiled, afterWarmup, afterStep, stepMs, loss }));
  session.destroy(); model.close(); gpu.close();
  process.exit(0);
}

const test = suite('cold start: pipelines of the default model, and a first step that compiles nothing');
let root = '';
test.before(async () => { root = await mkdtemp(join(tmpdir(), 'densenet-cold-')); });
test.after(async () => { await closeTestGpu(); await rm(root, { recursive: true, force: true }); });

test(`the default model (${DEFAULT_DIGITS_PRESET}, software kernels) needs 35 distinct GPU programs, by kernel as pinned here`, async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, preset(DEFAULT_DIGITS_PRESET), 1);
  // Build only: no compile is needed to count them.
  const session = await TrainingSession.create(model, { batch: 64, memory: 'fused', optimizer: sgd, kernels: 'software', precompile: false });
  const launches = (session.executable as unknown as { opLaunches: { program: { spec: { name: string; key: string } } }[][] }).opLaunches.flat();
  const programs = new Set(launches.map((l) => l.program));
  const byKernel: Record<string, number> = {};
  for (const p of programs) byKernel[p.spec.name] = (byKernel[p.spec.name] ?? 0) + 1;
  const list = [...programs].map((p) => `${p.spec.name} ${p.spec.key}`).sort().join('\n');
  // A new tile or variant in the default model adds seconds to every first run: change this on purpose only.
  assert.equal(byKernel, {
    'conv2d': 7, 'conv2d.backwardInput': 7, 'conv2d.backwardFilter': 5,
    'batchNorm.statistics': 1, 'batchNorm.forward': 1, 'batchNorm.updateRunning': 1, 'batchNorm.affine': 1,
    'batchNorm.backward.reduce': 1, 'batchNorm.backward.data': 2,
    'avgPool2x2.forward': 1, 'avgPool2x2.backward': 1, 'globalAvgPool.forward': 1, 'globalAvgPool.backward': 1,
    'linear.forward': 1, 'linear.backwardInput': 1, 'linear.backwardParams': 1, 'softmaxCrossEntropy': 1, 'sgd.update': 1,
  }, list);
  assert.is(programs.size, 35, list);
  session.destroy(); model.close();
});

test('with an empty shader cache the warm-up compiles everything (on helper devices too): the first step adds nothing to the cache', async () => {
  const cache = await mkdtemp(join(root, 'cache-'));
  const r = spawnSync(process.execPath, [process.argv[1]], {
    encoding: 'utf8', timeout: 600_000,
    env: { ...process.env, XDG_CACHE_HOME: cache, COLD_START_CACHE: cache, DENSENET_WGSL_COMPILE_DEVICES: '2' },
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    software: boolean; compiled: CompiledPipeline[]; afterWarmup: number; afterStep: number; stepMs: number; loss: number;
  };
  assert.ok(Number.isFinite(result.loss), `a finite loss: ${result.loss}`);
  assert.ok(result.compiled.length > 10, `${result.compiled.length} programs compiled`);
  // The cache is where the test looks: the warm-up filled it.
  assert.ok(result.afterWarmup > 0, 'the warm-up wrote the shader cache');
  assert.is(result.afterStep, result.afterWarmup, `the first step compiled nothing (cache ${result.afterWarmup} → ${result.afterStep} bytes; step ${result.stepMs.toFixed(0)} ms)`);
  if (result.software) {
    const where = result.compiled.map((c) => c.where);
    assert.ok(where.includes('helper'), `a helper device compiled some programs, loaded from the cache by the main one: ${where.join(', ')}`);
    assert.ok(where.includes('main'), 'the main device compiled some itself');
  }
  const seconds = result.compiled.reduce((a, c) => a + c.ms, 0) / 1000;
  console.log(`  ${result.compiled.length} programs, ${seconds.toFixed(1)} s of compile (wall-clock, summed over devices); first step ${result.stepMs.toFixed(0)} ms`);
});

test('--verbose: one line per program (time, kernel, key, where), the progress line redrawn after it on a terminal', () => {
  const chunks: string[] = [];
  let now = 0;
  const report = compileProgressPrinter({ isTTY: true, write: (t: string) => chunks.push(t) }, () => now, { listing: true });
  report(0, 2);
  now = 3000;
  report(1, 2, { name: 'conv2d', key: '{"rows":8}', ms: 2500, where: 'helper' });
  now = 4000;
  report(2, 2, { name: 'relu.forward', key: '', ms: 900, where: 'main' });
  assert.equal(chunks, [
    'compiling 2 GPU programs… 0/2',
    '\r\x1b[K    2.50 s  conv2d {"rows":8} (helper)\n', '\r\x1b[Kcompiling 2 GPU programs… 1/2',
    '\r\x1b[K    0.90 s  relu.forward \n', '\r\x1b[Kcompiled 2 GPU programs in 4.0 s\n',
  ]);
  const plain: string[] = [];
  const quiet = compileProgressPrinter({ isTTY: false, write: (t: string) => plain.push(t) }, () => now);
  quiet(0, 1); quiet(1, 1, { name: 'conv2d', key: 'k', ms: 5, where: 'main' });
  assert.ok(!plain.join('').includes('conv2d'), 'no listing without --verbose');
});

test("quietPolling: the global setImmediate is a timer meanwhile (Dawn's poll), restored when the last of overlapping calls ends", async () => {
  const real = globalThis.setImmediate;
  let release!: () => void;
  const outer = quietPolling(() => new Promise<void>((resolve) => { release = resolve; }));
  assert.is.not(globalThis.setImmediate, real, 'replaced');
  // A real immediate queued after it runs first: the replaced one waits on a timer (the next loop turn).
  const order: string[] = [];
  await Promise.all([
    new Promise<void>((resolve) => globalThis.setImmediate(() => { order.push('replaced'); resolve(); })),
    new Promise<void>((resolve) => realImmediate(() => { order.push('real'); resolve(); })),
  ]);
  assert.equal(order, ['real', 'replaced']);
  await quietPolling(async () => { assert.is.not(globalThis.setImmediate, real); });
  assert.is.not(globalThis.setImmediate, real, 'still replaced while the outer call runs');
  release();
  await outer;
  assert.is(globalThis.setImmediate, real, 'restored');
  await quietPolling(async () => { throw new Error('x'); }).catch(() => undefined);
  assert.is(globalThis.setImmediate, real, 'restored after a throw');
});

test.run();
