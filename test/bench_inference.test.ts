// The inference benchmark (bench/inference.ts) at tiny scale: a small imagenet-stem DenseNet-BC at
// batches 1 and 3, one rep: rows of the documented shape, all three sides (ours, tfjs-webgpu,
// ONNX Runtime CPU) timed, their outputs agree (which is what makes the times comparable), the
// JSON file, and the table with its verdict lines.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInferenceBenchmark } from '../bench/inference.js';
import { denseNetConfig } from '../src/models/index.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('bench inference');
test.after(closeTestGpu);

const isPositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

test('tiny run: every side timed, outputs agree, images/s and ratios consistent, JSON written', async () => {
  const gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'bench-inference-'));
  const json = join(dir, 'rows.json');
  const lines: string[] = [];
  const model = denseNetConfig({ name: 'tiny-imagenet-bench', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5,
    stem: 'imagenet', inputShape: [3, 48, 48], classes: 7 });
  try {
    const rows = await runInferenceBenchmark({ model, batches: [1, 3], reps: 1, warmup: 1, json, gpu, log: (l) => lines.push(l) });
    assert.equal(rows.map((r) => r.batch), [1, 3]);
    for (const r of rows) {
      assert.is(r.oursError, undefined);
      assert.is(r.tfjsError, undefined);
      assert.is(r.ortError, undefined);
      assert.ok(isPositive(r.oursMs) && isPositive(r.tfjsMs) && isPositive(r.ortMs), `batch ${r.batch}: ${r.oursMs} / ${r.tfjsMs} / ${r.ortMs} ms`);
      assert.ok(Math.abs(r.ratio! - r.tfjsMs! / r.oursMs!) < 1e-12, 'ratio = tfjs / ours');
      assert.ok(Math.abs(r.ortRatio! - r.ortMs! / r.oursMs!) < 1e-12, 'ortRatio = ort / ours');
      assert.ok(Math.abs(r.oursImagesPerSec! - r.batch / (r.oursMs! / 1000)) < 1e-9);
      assert.ok(Math.abs(r.ortImagesPerSec! - r.batch / (r.ortMs! / 1000)) < 1e-9);
      assert.ok(r.maxRelDiff !== null && r.maxRelDiff < 1e-4, `batch ${r.batch}: ours and tfjs differ by ${r.maxRelDiff}`);
      assert.ok(r.ortMaxRelDiff !== null && r.ortMaxRelDiff < 1e-4, `batch ${r.batch}: ours and ONNX Runtime differ by ${r.ortMaxRelDiff}`);
      assert.ok(isPositive(r.oursPeakBytes) && isPositive(r.gflopPerImage));
    }
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>[];
    assert.is(parsed.length, 2);
    assert.is(parsed[1].tfjsMs, rows[1].tfjsMs);
    assert.is(parsed[1].ortMs, rows[1].ortMs);
    const text = lines.join('\n');
    assert.match(text, /same GPUDevice as ours/);
    assert.match(text, /ort: onnxruntime-node 1\.30\.0, CPU execution provider, \d+ threads? \(intraOpNumThreads = all cores\)/);
    assert.match(text, /model\s+batch\s+ours ms\s+tfjs ms\s+ort ms\s+ours img\/s\s+tfjs img\/s\s+ort img\/s\s+tfjs\/ours\s+ort\/ours/);
    assert.match(text, /batch 3: ONNX Runtime on the CPU is \d+\.\d× (faster|slower) than ours; ours is \d+\.\d× (faster|slower) than tfjs-webgpu/);
    assert.match(text, gpu.profile.class === 'software' ? /The adapter is software/ : /run on the GPU, ONNX Runtime on the CPU/, 'the table says what the ratio means here');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.not.throws(() => gpu.zeros('after', 'workspace', 4));
});

test('bad options are refused before any work', async () => {
  await runInferenceBenchmark({ batches: [0], log: () => {} }).then(() => assert.unreachable('batch 0'), (e: Error) => assert.match(e.message, /batches must be whole numbers/));
  await runInferenceBenchmark({ reps: 0, log: () => {} }).then(() => assert.unreachable('0 reps'), (e: Error) => assert.match(e.message, /reps must be/));
});

test.run();
