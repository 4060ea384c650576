// bench profile (bench/profile.ts, profile_report.ts): timing a step launch by launch must run the
// very step a user's run does (same losses, same weights after, bit for bit); every launch's time is
// attributed to the op that recorded it and the tables add up; the GEMM work it rates is the
// architecture's multiply-add count, counted independently (models/architecture.ts); the CLI
// refuses bad flags before any GPU work.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProfile } from '../bench/profile.js';
import { groupBy, opTimes, roleOf, type ProfiledOp } from '../bench/profile_report.js';
import { PassTimer } from '../src/gpu/timing.js';
import { describeDenseNet, flattenLayers, layerMultiplyAdds, multiplyAdds } from '../src/models/architecture.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { TrainingSession } from '../src/models/session.js';
import { closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('bench profile');
test.after(closeTestGpu);

const MODEL = 'densenet-bc-tiny';
const BATCH = 4;
const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };

test('a step timed whole or launch by launch is the same step: losses and weights equal bit for bit', async () => {
  const gpu = await testGpu();
  const config = preset(MODEL);
  const [c, h, w] = config.inputShape;
  const images = randomArray(BATCH * c * h * w, 3);
  const labels = Uint32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  const plain = DenseNetModel.create(gpu, config, 9);
  const timed = DenseNetModel.create(gpu, config, 9);
  const a = await TrainingSession.create(plain, { batch: BATCH, memory: 'fused', optimizer: sgd });
  const b = await TrainingSession.create(timed, { batch: BATCH, memory: 'fused', optimizer: sgd });
  const whole = new PassTimer(gpu.device, 1, false);
  const perLaunch = new PassTimer(gpu.device, b.executable.launchCount, true);
  try {
    for (const timer of [undefined, whole, perLaunch, perLaunch]) {
      const expected = await a.step(images, labels, 0.1);
      b.submit(images, labels, 0.1, timer);
      const got = await b.result();
      assert.equal(got, expected, `step with ${timer ? (timer.perLaunch ? 'a per-launch' : 'a whole-step') : 'no'} timer`);
      if (timer) {
        const ms = await timer.read();
        assert.is(ms.length, timer.passes);
        assert.ok(ms.every((t) => Number.isFinite(t) && t >= 0), `times ${ms.slice(0, 5)}`);
        assert.ok(ms.reduce((s, t) => s + t, 0) > 0, 'the GPU took some time');
      }
    }
    const pa = await plain.readParameters();
    const pb = await timed.readParameters();
    for (const [name, values] of pa) assert.equal(pb.get(name), values, `parameter ${name} after 4 steps`);
  } finally {
    whole.destroy();
    perLaunch.destroy();
    a.destroy(); b.destroy();
    plain.close(); timed.close();
  }
});

test('PassTimer: more passes than one query set holds (4,096 timestamps), reused, and misuse named', async () => {
  const gpu = await testGpu();
  const passes = 2100; // 4,200 timestamps: two query sets, the second resolved at its 256-byte-aligned offset
  const timer = new PassTimer(gpu.device, passes, true);
  try {
    for (let round = 0; round < 2; round++) {
      gpu.device.pushErrorScope('validation'); // a resolve at a bad offset would leave zeros, not fail a read
      const encoder = gpu.device.createCommandEncoder();
      for (let i = 0; i < passes; i++) timer.beginPass(encoder).end();
      assert.throws(() => timer.beginPass(encoder), /more than the 2100 passes/);
      timer.finish(encoder);
      gpu.device.queue.submit([encoder.finish()]);
      assert.is(await gpu.device.popErrorScope(), null, 'recording and resolving are valid');
      const ms = await timer.read();
      assert.is(ms.length, passes);
      assert.ok(ms.every((t) => Number.isFinite(t) && t >= 0 && t < 1000), `round ${round}: ${ms.filter((t) => !(t >= 0 && t < 1000)).slice(0, 3)}`);
    }
    const encoder = gpu.device.createCommandEncoder();
    timer.beginPass(encoder).end();
    assert.throws(() => timer.finish(encoder), /1 of 2100 passes were recorded/);
  } finally {
    timer.destroy();
  }
});

test('launch times are attributed to their ops in order; groups add up', () => {
  const ops: ProfiledOp[] = [
    { name: 'features.denseblock1.denselayer1.conv1', phase: 'forward', kernels: ['conv2d'], flops: 2e6, bytes: 4e6 },
    { name: 'features.denseblock2.denselayer7.conv1', phase: 'forward', kernels: ['conv2d'], flops: 6e6, bytes: 4e6 },
    { name: 'features.denseblock1.denselayer1.conv1.bn.backward', phase: 'backward', kernels: ['bn.reduce', 'bn.data'], bytes: 8e6 },
    { name: 'sgd', phase: 'update', kernels: [], bytes: 1e6 },
  ];
  // Three steps; each launch's median is the middle value: [1, 3, 2, 5], and the two-launch op gets 2 + 5.
  const times = opTimes(ops, [[1, 3, 1, 9], [0, 4, 2, 5], [2, 3, 3, 4]]);
  assert.equal(times.map((t) => t.ms), [1, 3, 7, 0]);
  const byRole = groupBy(times, (t) => roleOf(t.name));
  assert.equal(byRole.map((g) => [g.name, g.launches, g.ms]), [
    ['denseblock.denselayer.conv1.bn.backward', 2, 7], ['denseblock.denselayer.conv1', 2, 4], ['sgd', 0, 0]]);
  const conv = byRole[1];
  assert.ok(Math.abs(conv.gflops! - 8e6 / (4 * 1e6)) < 1e-12, `GFLOP/s ${conv.gflops}`);
  assert.ok(Math.abs(conv.gbps! - 8e6 / (4 * 1e6)) < 1e-12, `GB/s ${conv.gbps}`);
  assert.is(byRole[0].gflops, null, 'no GEMM op, no GFLOP/s');
  assert.is(byRole[2].gbps, null, 'no time, no rate');
  assert.ok(Math.abs(byRole.reduce((s, g) => s + g.share, 0) - 1) < 1e-12);
  assert.throws(() => opTimes(ops, [[1, 2, 3]]), /3 launch times for 4 launches/);
  assert.is(roleOf('features.transition2.conv.backwardFilter'), 'transition.conv.backwardFilter');
});

async function profile(mode: 'train' | 'inference', json?: string, trace?: string) {
  const lines: string[] = [];
  const report = await runProfile({ model: MODEL, batch: BATCH, mode, memory: 'fused', steps: 1, top: 5, json, trace, gpu: await testGpu(), log: (l) => lines.push(l) });
  return { report, text: lines.join('\n') };
}

function checkSums(r: Awaited<ReturnType<typeof profile>>['report']) {
  const h = r.header;
  assert.is(r.byPhase.reduce((s, g) => s + g.launches, 0), h.launches);
  assert.is(r.byKernel.reduce((s, g) => s + g.launches, 0), h.launches);
  assert.is(r.byRole.reduce((s, g) => s + g.launches, 0), h.launches);
  for (const groups of [r.byPhase, r.byKernel, r.byRole]) {
    const ms = groups.reduce((s, g) => s + g.ms, 0);
    assert.ok(Math.abs(ms - h.launchSumMs) <= 1e-9 * h.launchSumMs, `groups sum to ${ms} ms, launches to ${h.launchSumMs} ms`);
    assert.ok(groups.every((g, i) => g.ms >= 0 && (i === 0 || groups[i - 1].ms >= g.ms)), 'largest first');
  }
  assert.ok(h.gpuStepMs > 0 && h.wallMs > 0 && h.launchSumMs > 0);
}

test('training profile: phases, sums, GEMM work = 3 passes over every conv but the stem (no input gradient there)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-profile-'));
  try {
    const json = join(dir, 'profile.json');
    const trace = join(dir, 'trace.json');
    const { report, text } = await profile('train', json, trace);
    checkSums(report);
    assert.equal(report.byPhase.map((g) => g.name).sort(), ['backward', 'forward', 'update']);
    const config = preset(MODEL);
    const stem = layerMultiplyAdds(flattenLayers(describeDenseNet(config))[0]);
    const expected = (2 * BATCH * (3 * multiplyAdds(config) - stem)) / 1e9;
    assert.ok(Math.abs(report.header.gflopPerStep - expected) <= 1e-12 * expected, `${report.header.gflopPerStep} GFLOP, expected ${expected}`);
    assert.ok(report.header.submitMs !== null && report.header.submitMs > 0);
    assert.match(text, /launches timed one by one/);
    assert.match(text, /layer role/);
    const saved = JSON.parse(readFileSync(json, 'utf8'));
    assert.is(saved.header.launches, report.header.launches);
    assert.ok(saved.ops.some((op: { name: string; kernels: string[] }) => op.name.endsWith('conv2.backwardFilter') && op.kernels.length > 0));
    // The Chrome trace: one complete event per launch, on its phase's track, one after another in time.
    const events = JSON.parse(readFileSync(trace, 'utf8')).traceEvents as { name: string; cat: string; ph: string; ts: number; dur: number; tid: number }[];
    const launches = events.filter((e) => e.ph === 'X');
    assert.is(launches.length, report.header.launches);
    assert.equal(events.filter((e) => e.ph === 'M').length, 3, 'forward, backward and update tracks are named');
    assert.equal([...new Set(launches.map((e) => e.tid))].sort(), [1, 2, 3]);
    assert.is(launches[0].ts, 0);
    for (let i = 1; i < launches.length; i++) {
      assert.ok(launches[i - 1].ts + launches[i - 1].dur <= launches[i].ts + 1e-3, `launch ${i} (${launches[i].name}) starts before launch ${i - 1} ends`);
    }
    assert.ok(launches.some((e) => e.name.endsWith('conv2.backwardFilter') && e.cat.startsWith('conv2d.backwardFilter')));
    const lastStepMs = launches.reduce((s, e) => s + e.dur, 0) / 1000;
    assert.ok(lastStepMs > 0 && lastStepMs <= launches[launches.length - 1].ts / 1000 + launches[launches.length - 1].dur / 1000 + 1e-6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inference profile: forward only, GEMM work = the architecture\'s multiply-adds', async () => {
  const { report } = await profile('inference');
  checkSums(report);
  assert.equal(report.byPhase.map((g) => g.name), ['forward']);
  const expected = (2 * BATCH * multiplyAdds(preset(MODEL))) / 1e9;
  assert.ok(Math.abs(report.header.gflopPerStep - expected) <= 1e-12 * expected, `${report.header.gflopPerStep} GFLOP, expected ${expected}`);
  assert.is(report.header.submitMs, null);
});

test('CLI: bad flags are named before any GPU work', () => {
  for (const [args, message] of [
    [['--mode', 'eval'], /--mode must be train or inference, got "eval"/],
    [['--memory', 'tiny'], /--memory must be one of naive, shared, recompute, fused/],
    [['--batch', '1'], /--batch must be a whole number >= 2/],
    [['--model', 'densenet-999'], /densenet-999/],
    [['--steps', '0'], /--steps must be a whole number >= 1/],
    [['--trace', 'trace.txt'], /--trace trace\.txt/],
  ] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, ['dist/cli.js', 'bench', 'profile', ...args], { encoding: 'utf8', env: { ...process.env, DENSENET_WGSL_BACKEND: 'no-such-backend' } });
    assert.is(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test.run();
