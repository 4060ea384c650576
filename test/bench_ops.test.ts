import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatOpsTable, runOpsBenchmark, type OpsRow } from '../bench/ops.js';
import { cnhwToNhwc, hwioToOihw, nhwcToCnhw, oihwToHwio, opCases, workOf } from '../bench/ops_spec.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('bench ops');
test.after(closeTestGpu);

const isPositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

test('tiny run (wall-clock): all eight rows of the documented shape, each timed on both sides with outputs that agree, JSON written', async () => {
  const gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'bench-ops-'));
  const json = join(dir, 'rows.json');
  const lines: string[] = [];
  try {
    // Wall-clock: Dawn quantizes GPU timestamps to 65.5 µs, so a tiny kernel can honestly time as 0.
    const rows = await runOpsBenchmark({ scale: 'tiny', reps: 1, warmup: 1, timing: 'wall-clock', wallClock: false, json, gpu, log: (l) => lines.push(l) });
    assert.is(rows.length, 8, 'four ops × two passes');
    assert.equal(rows.map((r) => `${r.op}/${r.pass}`), [
      'conv3x3/forward', 'conv3x3/backward', 'conv1x1/forward', 'conv1x1/backward',
      'batchnorm/forward', 'batchnorm/backward', 'avgpool/forward', 'avgpool/backward',
    ]);
    for (const r of rows) {
      assert.ok(r.oursMs === null || isPositive(r.oursMs), `${r.op} ${r.pass}: oursMs ${r.oursMs}`);
      assert.ok(r.tfjsMs === null || isPositive(r.tfjsMs), `${r.op} ${r.pass}: tfjsMs ${r.tfjsMs}`);
      if (r.oursMs === null) assert.ok(r.oursError, `${r.op} ${r.pass}: no time and no reason`);
      if (r.tfjsMs === null) assert.ok(r.tfjsError, `${r.op} ${r.pass}: no tfjs time and no reason`);
      if (r.oursMs !== null && r.tfjsMs !== null) assert.ok(Math.abs(r.ratio! - r.tfjsMs / r.oursMs) < 1e-12, 'ratio = tfjs / ours');
      assert.ok(isPositive(r.flops ?? r.bytes), `${r.op} ${r.pass}: flops or bytes`);
      assert.is(r.method, 'wall-clock');
    }
    // Every row is timed on both sides, and the cross-check is what makes the times comparable:
    // both sides computed the same outputs.
    for (const r of rows) {
      assert.ok(isPositive(r.oursMs) && isPositive(r.tfjsMs), `${r.op} ${r.pass}: ours ${r.oursMs} ms (${r.oursError ?? 'no error'}), tfjs ${r.tfjsMs} ms (${r.tfjsError ?? 'no error'})`);
      assert.ok(r.maxRelDiff !== null && r.maxRelDiff < 1e-4, `${r.op} ${r.pass}: ours and tfjs differ by ${r.maxRelDiff}`);
    }

    const parsed = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>[];
    assert.ok(Array.isArray(parsed) && parsed.length === rows.length, 'the JSON file is an array with one entry per row');
    for (const [i, p] of parsed.entries()) {
      for (const key of ['op', 'pass', 'oursMs', 'tfjsMs', 'ratio']) assert.ok(key in p, `row ${i} has "${key}"`);
      assert.is(p.oursMs, rows[i].oursMs);
      assert.is(p.tfjsMs, rows[i].tfjsMs);
    }
    const text = lines.join('\n');
    assert.match(text, /adapter: /);
    assert.match(text, /@tensorflow\/tfjs-backend-webgpu 4\.22\.0 \(same GPUDevice as ours\)/);
    assert.match(text, /tfjs\/ours/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The device we lent is still usable: the benchmark neither closed it nor left tfjs's buffers on it.
  assert.not.throws(() => gpu.zeros('after', 'workspace', 4));
});

test('tiny run (GPU timestamps where the adapter has them): finite times, per-kernel breakdown on both sides', async () => {
  const gpu = await testGpu();
  const rows = await runOpsBenchmark({ scale: 'tiny', reps: 2, warmup: 1, ops: ['conv1x1'], wallClock: true, gpu, log: () => {} });
  assert.equal(rows.map((r) => `${r.op}/${r.pass}`), ['conv1x1/forward', 'conv1x1/backward']);
  for (const r of rows) {
    assert.is(r.method, gpu.hasTimestamps ? 'timestamp-query' : 'wall-clock');
    for (const v of [r.oursMs, r.tfjsMs, r.oursMinMs, r.tfjsMaxMs]) assert.ok(typeof v === 'number' && Number.isFinite(v) && v >= 0, `${r.op} ${r.pass}: ${v}`);
    assert.is(r.oursSamples.length, 2);
    assert.is(r.tfjsSamples.length, 2);
    assert.ok(isPositive(r.oursWallMs) && isPositive(r.tfjsWallMs), 'wall-clock medians');
    assert.ok(r.maxRelDiff !== null && r.maxRelDiff < 1e-4, `ours and tfjs differ by ${r.maxRelDiff}`);
  }
  assert.equal(rows[1].oursParts!.map((p) => p.name), ['forward', 'backwardInput', 'backwardFilter']);
  assert.ok(rows[1].tfjsParts!.some((p) => /Conv2DDerFilter/.test(p.name)), `tfjs programs: ${rows[1].tfjsParts!.map((p) => p.name)}`);
});

test('layout conversions round-trip, and the work of a pass is counted as documented', () => {
  const [C, N, H, W] = [3, 2, 4, 5];
  const x = Float32Array.from({ length: C * N * H * W }, (_, i) => i);
  const nhwc = cnhwToNhwc(x, C, N, H, W);
  assert.is(nhwc[1], x[N * H * W], 'NHWC element 1 is channel 1 of pixel 0');
  assert.equal(Array.from(nhwcToCnhw(nhwc, C, N, H, W)), Array.from(x));
  const w = Float32Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => i);
  assert.equal(Array.from(hwioToOihw(oihwToHwio(w, 4, 3, 3), 4, 3, 3)), Array.from(w));
  const full = opCases('full');
  assert.is(workOf(full.conv3x3, 'forward').flops, 2 * 16 * 32 * 32 * 12 * 48 * 9);
  assert.is(workOf(full.conv1x1, 'backward').flops, 3 * 2 * 16 * 32 * 32 * 48 * 120);
  assert.is(workOf(full.avgpool, 'forward').bytes, 4 * 16 * 48 * (32 * 32 + 16 * 16));
});

test('the table shows a missing tfjs time with its reason, and rejects unknown ops', async () => {
  const row: OpsRow = {
    op: 'avgpool', pass: 'forward', oursMs: 2, tfjsMs: null, ratio: null, method: 'wall-clock', bytes: 4e6, shape: 'x',
    oursMinMs: 1.5, oursMaxMs: 3, tfjsMinMs: null, tfjsMaxMs: null, oursWallMs: null, tfjsWallMs: null,
    oursSamples: [2], tfjsSamples: [], maxRelDiff: null, tfjsError: 'no such kernel',
  };
  const table = formatOpsTable([row]);
  assert.match(table, /2\.000 \(1\.500–3\.000\)/);
  assert.match(table, /2\.00 GB\/s/);
  assert.match(table, /avgpool forward: tfjs did not run: no such kernel/);
  await runOpsBenchmark({ ops: ['conv5x5'], log: () => {} }).then(
    () => assert.unreachable('should throw'),
    (e: Error) => assert.match(e.message, 'unknown op "conv5x5"; the ops are conv3x3, conv1x1, batchnorm, avgpool'),
  );
});

test.run();
