// --max-binding / DENSENET_WGSL_MAX_BINDING_MIB: the cap on the storage-binding size the engine uses.
// Checked: validation, `info` reporting it, every binding (and the flat optimizer's chunks) reading
// the capped size, a model that fits training unchanged, and one that does not refused by op name.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { UsageError } from '../src/base/usage_error.js';
import { openDevice, type Gpu } from '../src/gpu/device.js';
import { bindingCapBytes, MAX_BINDING_ENV } from '../src/gpu/profile.js';
import { bindOperands } from '../src/kernels/binding.js';
import { flatChunks } from '../src/kernels/optimizer_flat.js';
import { tensor } from '../src/kernels/tensor.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { TrainingSession } from '../src/models/session.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('max binding');
const MiB = 2 ** 20;
let capped: Gpu | undefined;
test.after(async () => {
  capped?.close();
  await closeTestGpu();
});
/** One device with a 1 MiB binding cap for the whole file. */
const cappedGpu = async () => (capped ??= await openDevice({ maxBindingMiB: 1 }));

const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

test('the cap is a positive number of MiB up to the adapter\'s limit; anything else is a UsageError naming the source', () => {
  const limit = 128 * MiB;
  assert.is(bindingCapBytes(undefined, limit, '--max-binding'), undefined);
  assert.is(bindingCapBytes('', limit, 'ENV'), undefined, 'an empty environment variable is no cap');
  assert.is(bindingCapBytes(1, limit, '--max-binding'), MiB);
  assert.is(bindingCapBytes('0.5', limit, 'ENV'), MiB / 2);
  assert.is(bindingCapBytes(128, limit, '--max-binding'), limit, 'the adapter\'s own limit is allowed');
  assert.is(bindingCapBytes(1.0001, limit, '--max-binding')! % 256, 0, 'rounded down to 256-byte multiples');
  for (const [value, pattern] of [
    [0, /--max-binding must be a positive number of MiB.*got "0"/], [-1, /must be a positive/], ['abc', /ENV must be a positive.*"abc"/],
    [Number.NaN, /must be a positive/], [1e-6, /below one 256-byte binding/], [129, /--max-binding 129 is above this adapter's maxStorageBufferBindingSize \(128 MiB\)/],
  ] as [number | string, RegExp][]) {
    const source = typeof value === 'string' ? 'ENV' : '--max-binding';
    assert.throws(() => bindingCapBytes(value, limit, source), (e: Error) => e instanceof UsageError && pattern.test(e.message), `${value}`);
  }
});

test('`info --max-binding 1` reports the cap; the environment variable does the same; bad values exit 2 with the message alone', () => {
  const flag = cli(['info', '--max-binding', '1']);
  assert.is(flag.status, 0, flag.stderr);
  assert.match(flag.stdout, /maxStorageBufferBindingSize \d+ MiB, capped to 1 MiB \(1048576 bytes\)/);
  assert.match(flag.stdout, /class: \w+ \(/, 'the profile\'s class is printed');
  const env = cli(['info'], { [MAX_BINDING_ENV]: '0.5' });
  assert.is(env.status, 0, env.stderr);
  assert.match(env.stdout, /capped to 0\.5 MiB \(524288 bytes\)/);
  const none = cli(['info'], { [MAX_BINDING_ENV]: '' });
  assert.not.match(none.stdout, /capped/, 'no cap: nothing capped is reported');
  for (const [args, env, pattern] of [
    [['info', '--max-binding', '0'], {}, /--max-binding must be a positive number of MiB/],
    [['info', '--max-binding', '100000'], {}, /--max-binding 100000 is above this adapter's maxStorageBufferBindingSize/],
    [['info'], { [MAX_BINDING_ENV]: 'lots' }, /DENSENET_WGSL_MAX_BINDING_MIB must be a positive number of MiB .*"lots"/],
  ] as [string[], Record<string, string>, RegExp][]) {
    const r = cli(args, env);
    assert.is(r.status, 2, `${args.join(' ')}: usage errors exit 2 (${r.stderr})`);
    assert.match(r.stderr, pattern);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('under a 1 MiB cap, gpu.limits, the binding rule and the flat optimizer\'s chunks all read the capped size', async () => {
  const gpu = await cappedGpu();
  assert.is(gpu.limits.maxStorageBufferBindingSize, MiB);
  assert.is(gpu.profile.limits.maxStorageBufferBindingSize, MiB);
  assert.is(gpu.profile.limits.bindingCapBytes, MiB);
  assert.ok(gpu.device.limits.maxStorageBufferBindingSize > MiB, 'the device itself keeps its limit (else the cap proves nothing)');
  const buffer = gpu.zeros('big', 'workspace', MiB / 4 + 64);
  bindOperands(gpu.limits, 'test.fits', { x: { ref: tensor(buffer, [MiB / 4]), written: true } });
  assert.throws(() => bindOperands(gpu.limits, 'test.over', { x: { ref: tensor(buffer, [MiB / 4 + 64]), written: true } }),
    (e: Error) => /^test\.over: "x" \[\d+\] needs 1048832 bytes of buffer "big" in one binding but the binding cap is 1048576 bytes \(1 MiB, --max-binding/.test(e.message),
    'refused, naming the op, the operand, its size and the cap');
  const chunks = flatChunks(gpu.limits, 'test.flat', { p: { ref: tensor(buffer, [MiB / 4 + 64]), written: true } }, MiB / 4 + 64);
  assert.is(chunks.length, 2, 'the flat optimizer splits an over-cap parameter buffer into chunks of the capped size');
  gpu.arena.free(buffer);
});

const config = preset('densenet-bc-tiny');
const [C, H, W] = config.inputShape;
const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };

interface Run { losses: number[]; gradients: Map<string, Float32Array>; launches: number }

/**
 * `steps` training steps of densenet-bc-tiny (seed 7, fixed data), and the parameter gradients of
 * the first step: both runs compute them from the same parameters and data. (Later steps' gradients
 * may differ by more than rounding: a pre-activation within rounding of zero can take the other side
 * of a ReLU once the parameters have moved, which changes a sum by one whole term.)
 */
async function train(gpu: Gpu, batch: number, steps: number, memory: MemoryStrategy): Promise<Run> {
  const model = DenseNetModel.create(gpu, config, 7);
  const session = await TrainingSession.create(model, { batch, memory, optimizer: sgd });
  const labels = Uint32Array.from({ length: batch }, (_, i) => (i * 7) % 10);
  const losses: number[] = [];
  let gradients = new Map<string, Float32Array>();
  try {
    for (let s = 0; s < steps; s++) {
      losses.push((await session.step(randomArray(batch * C * H * W, 100 + s), labels, 0.1)).loss);
      if (s === 0) gradients = await session.readGradients();
    }
    return { losses, gradients, launches: session.executable.launchCount };
  } finally {
    session.destroy();
    model.close();
  }
}

test('a small DenseNet-BC that fits under a 1 MiB cap trains with the same losses as without it', async () => {
  // densenet-bc-tiny at batch 4: its largest binding is far below 1 MiB, so no kernel changes.
  const free = await train(await testGpu(), 4, 3, 'fused');
  const under = await train(await cappedGpu(), 4, 3, 'fused');
  assert.ok(free.losses.every(Number.isFinite) && free.losses[2] !== free.losses[0], `the losses move: ${free.losses}`);
  assert.is(under.launches, free.launches, 'nothing is chunked: the same launches');
  // Same kernels, same data: equal to float rounding of the sum order (stated: ≤ 1e-6 relative).
  for (let i = 0; i < free.losses.length; i++) assert.ok(Math.abs(under.losses[i] - free.losses[i]) <= 1e-6 * Math.abs(free.losses[i]), `step ${i}: ${under.losses[i]} vs ${free.losses[i]}`);
});

// batch 128: one channel of the first block is 128·16·16·4 bytes = 128 KiB, so its 16 channels
// (2 MiB), the bottlenecks and their gradients exceed the 1 MiB cap and every op over them chunks.
const BIG_BATCH = 128;

for (const memory of MEMORY_STRATEGIES) {
  test(`${memory}: densenet-bc-tiny at batch ${BIG_BATCH}, over the 1 MiB cap, trains in channel chunks with the same losses (≤ 1e-5 relative) and gradients`, async () => {
    const free = await train(await testGpu(), BIG_BATCH, 2, memory);
    const under = await train(await cappedGpu(), BIG_BATCH, 2, memory);
    assert.ok(under.launches > free.launches, `chunked ops add launches (${under.launches} vs ${free.launches})`);
    assert.ok(free.losses.every(Number.isFinite) && free.losses[1] !== free.losses[0], `the losses move: ${free.losses}`);
    // Chunks add partial sums in another order (split-K over channel chunks): float rounding only.
    for (let i = 0; i < free.losses.length; i++) {
      assert.ok(Math.abs(under.losses[i] - free.losses[i]) <= 1e-5 * Math.abs(free.losses[i]), `step ${i}: ${under.losses[i]} vs ${free.losses[i]}`);
    }
    // Stated: within 1e-5 of the parameter's largest gradient plus 1e-4 relative (measured here: ≤ 2e-6 of the largest).
    assert.is(under.gradients.size, free.gradients.size);
    for (const [name, g] of free.gradients) {
      const scale = Math.max(...g.map(Math.abs));
      assertClose(under.gradients.get(name)!, g, { atol: 1e-5 * scale, rtol: 1e-4 }, `${memory}: step 1's gradient of ${name}`);
    }
  });
}

test('one channel larger than the cap is refused naming the op and the operand, before any step', async () => {
  const gpu = await cappedGpu();
  // batch 2048: one channel of the images (and of every activation) is 2048·16·16·4 bytes = 2 MiB.
  const model = DenseNetModel.create(gpu, config, 7);
  const liveBefore = gpu.arena.liveBytes;
  try {
    await TrainingSession.create(model, { batch: 2048, memory: 'fused', optimizer: sgd, precompile: false });
    assert.unreachable('a 2 MiB channel under a 1 MiB cap must be refused');
  } catch (e) {
    const message = (e as Error).message;
    assert.match(message, /^graph: op "[^"]+" could not be built: [\w.]+: one channel of "\w+" \[\d+, 2048, \d+, \d+\] is \d+ bytes of buffer "[^"]+", and channel chunks cannot split it, but the binding cap is 1048576 bytes/);
    assert.match(message, /use a smaller batch/);
  }
  assert.is(gpu.arena.liveBytes, liveBefore, 'nothing of the refused session stays allocated');
  model.close();
});

test.run();
