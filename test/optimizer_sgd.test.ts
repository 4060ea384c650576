import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sgdReference, sgdUpdate, type SgdHyper } from '../src/kernels/optimizer_sgd.js';
import { ShapeError, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('optimizer_sgd');
test.after(closeTestGpu);

// f32 state on the GPU against float64 in the reference, over 5 steps with |p| ≲ 2, |v| ≲ 5:
// a few roundings of values of that size per step.
const tol = { atol: 2e-6, rtol: 1e-6 };
const schedule = [0.1, 0.1, 0.05, 0.02, 0.2];
const n = 1037;

interface Config { name: string; hyper: Omit<SgdHyper, 'lr'>; chunkElements?: number; velocityWithParams?: boolean; velocityAt?: number }
const configs: Config[] = [
  { name: 'plain', hyper: { momentum: 0, nesterov: false, weightDecay: 0 } },
  { name: 'plain, weight decay', hyper: { momentum: 0, nesterov: false, weightDecay: 0.05 }, chunkElements: 256 },
  { name: 'momentum', hyper: { momentum: 0.9, nesterov: false, weightDecay: 0 } },
  { name: 'momentum, chunked, velocity packed with params', hyper: { momentum: 0.9, nesterov: false, weightDecay: 0 }, chunkElements: 300, velocityWithParams: true },
  // Velocity starts right where params end (element 1101): the two share a 256-byte block and are bound once (binding.ts).
  { name: 'momentum, velocity right after params', hyper: { momentum: 0.9, nesterov: false, weightDecay: 0 }, velocityWithParams: true, velocityAt: 64 + n },
  { name: 'nesterov', hyper: { momentum: 0.9, nesterov: true, weightDecay: 0 } },
  { name: 'momentum, weight decay', hyper: { momentum: 0.8, nesterov: false, weightDecay: 0.05 } },
  { name: 'nesterov, weight decay', hyper: { momentum: 0.9, nesterov: true, weightDecay: 0.05 }, chunkElements: 512 },
];

test('SGD variants: 5 steps on the GPU match the float64 reference, lr rewritten per step', async () => {
  const gpu = await testGpu();
  for (const cfg of configs) {
    const useMomentum = cfg.hyper.momentum > 0;
    // params at element 64 of a packed buffer with live neighbours on both sides; velocity either in
    // its own buffer or packed after params (by default at 1152, the next multiple of 64 past params' end).
    const vAt = cfg.velocityAt ?? 1152;
    const packed = randomArray(Math.max(1152, cfg.velocityWithParams ? vAt + n : 0) + 50, 11);
    if (cfg.velocityWithParams) packed.fill(0, vAt, vAt + n);
    const paramsBuf = gpu.upload('parameters', 'parameters', packed);
    const gradsBuf = gpu.zeros('gradients', 'gradients', 128 + n);
    const velocityBuf = cfg.velocityWithParams ? paramsBuf : gpu.zeros('velocity', 'optimizer', n);
    const params = tensor(paramsBuf, [n], 64);
    const grads = tensor(gradsBuf, [n], 128);
    const velocity = useMomentum ? tensor(velocityBuf, [n], cfg.velocityWithParams ? vAt : 0) : undefined;
    const launches = await sgdUpdate(gpu, { params, grads, velocity, lr: schedule[0], ...cfg.hyper, chunkElements: cfg.chunkElements });
    assert.is(launches.length, cfg.chunkElements ? Math.ceil(n / cfg.chunkElements) : 1, `${cfg.name}: launches`);

    const p = Float64Array.from(packed.subarray(64, 64 + n));
    const v = useMomentum ? new Float64Array(n) : undefined;
    for (let step = 0; step < schedule.length; step++) {
      const g = randomArray(n, 100 + step);
      gpu.write(gradsBuf, g, 128);
      for (const l of launches) l.setUniforms(gpu.queue, { lr: schedule[step] });
      await gpu.run(launches);
      sgdReference(p, g, v, { lr: schedule[step], ...cfg.hyper });
      assertClose(await gpu.read(paramsBuf, 64, n), p, tol, `${cfg.name}: params after step ${step + 1}`);
    }
    if (v) assertClose(await gpu.read(velocity!.buffer, velocity!.offset, n), v, tol, `${cfg.name}: velocity`);
    const after = await gpu.read(paramsBuf);
    assertClose(after.subarray(0, 64), packed.subarray(0, 64), { atol: 0, rtol: 0 }, `${cfg.name}: elements before params`);
    const tail = cfg.velocityWithParams ? vAt + n : 64 + n;
    assertClose(after.subarray(tail), packed.subarray(tail), { atol: 0, rtol: 0 }, `${cfg.name}: elements after params/velocity`);
    launches.forEach((l) => l.destroy());
    gpu.arena.free(paramsBuf);
    gpu.arena.free(gradsBuf);
    if (velocityBuf !== paramsBuf) gpu.arena.free(velocityBuf);
  }
});

// tfjs (momentum_optimizer.js): accumulation = m·accumulation + g; value += −lr·accumulation, or
// with useNesterov value += −lr·(g + m·accumulation_new). That is PyTorch's SGD with dampening 0,
// and ours with weightDecay 0; tfjs has no weight decay, so only that is compared here.
test('matches tf.train.sgd and tf.train.momentum (plain and Nesterov) over 4 steps', async () => {
  await tf.setBackend('cpu');
  const gpu = await testGpu();
  const size = 37;
  const lrs = [0.1, 0.05, 0.2, 0.1];
  const start = randomArray(size, 21);
  for (const [momentum, nesterov] of [[0, false], [0.9, false], [0.9, true], [0.5, true]] as const) {
    const name = `w_${momentum}_${nesterov}`;
    const variable = tf.variable(tf.tensor1d(start), true, name);
    const optimizer = momentum > 0 ? tf.train.momentum(lrs[0], momentum, nesterov) : tf.train.sgd(lrs[0]);
    const paramsBuf = gpu.upload('params', 'parameters', start);
    const gradsBuf = gpu.zeros('grads', 'gradients', size);
    const velocityBuf = gpu.zeros('velocity', 'optimizer', size);
    const launches = await sgdUpdate(gpu, {
      params: tensor(paramsBuf, [size]), grads: tensor(gradsBuf, [size]), velocity: tensor(velocityBuf, [size]),
      lr: lrs[0], momentum, nesterov, weightDecay: 0,
    });
    for (let step = 0; step < lrs.length; step++) {
      const g = randomArray(size, 40 + step, 2);
      optimizer.setLearningRate(lrs[step]);
      tf.tidy(() => optimizer.applyGradients([{ name, tensor: tf.tensor1d(g) }]));
      gpu.write(gradsBuf, g);
      for (const l of launches) l.setUniforms(gpu.queue, { lr: lrs[step] });
      await gpu.run(launches);
    }
    const expected = await variable.data();
    assertClose(await gpu.read(paramsBuf), expected, { atol: 1e-6, rtol: 1e-6 }, `tfjs momentum ${momentum} nesterov ${nesterov}`);
    optimizer.dispose();
    variable.dispose();
    launches.forEach((l) => l.destroy());
    for (const b of [paramsBuf, gradsBuf, velocityBuf]) gpu.arena.free(b);
  }
});

test('bad hyperparameters are refused with errors naming the optimizer and the value', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'parameters', 256);
  const params = tensor(buf, [16], 0);
  const grads = tensor(buf, [16], 64);
  const velocity = tensor(buf, [16], 128);
  const base = { params, grads, velocity, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0 };
  const cases: [Partial<typeof base>, string][] = [
    [{ lr: -0.1 }, 'sgd: lr must be a finite number in [0, ∞), got -0.1'],
    [{ lr: NaN }, 'sgd: lr must be a finite number in [0, ∞), got NaN'],
    [{ lr: Infinity }, 'sgd: lr must be a finite number in [0, ∞), got Infinity'],
    [{ momentum: 1 }, 'sgd: momentum must be a finite number in [0, 1), got 1'],
    [{ momentum: -0.5 }, 'sgd: momentum must be a finite number in [0, 1), got -0.5'],
    [{ weightDecay: -1e-4 }, 'sgd: weightDecay must be a finite number in [0, ∞), got -0.0001'],
    [{ momentum: 0, nesterov: true }, 'sgd: nesterov needs momentum > 0, got momentum 0'],
    [{ velocity: undefined }, 'sgd: momentum 0.9 needs a velocity tensor'],
    [{ grads: tensor(buf, [15], 64) }, 'sgd: "grads" has shape [15] (15 elements), expected 16 elements like "params" [16]'],
    [{ grads: tensor(buf, [16], 8) }, 'sgd: "params" (elements [0, 16)) and "grads" (elements [8, 24)) overlap in buffer "buf"'],
  ];
  for (const [change, message] of cases) {
    await sgdUpdate(gpu, { ...base, ...change }).then(() => assert.unreachable(message), (e: Error) => assert.match(e.message, message));
  }
  assert.throws(() => sgdReference(new Float64Array(2), [1, 2], undefined, { lr: 0.1, momentum: 1.5, nesterov: false, weightDecay: 0 }),
    /sgd: momentum must be a finite number in \[0, 1\), got 1.5/);
  await sgdUpdate(gpu, { ...base, grads: tensor(buf, [16], 8) }).then(() => assert.unreachable('overlap'),
    (e: Error) => assert.ok(e instanceof ShapeError, 'overlaps are ShapeErrors'));
  // momentum 0 needs no velocity, and a velocity given anyway is left alone.
  const stale = randomArray(16, 9);
  gpu.write(buf, stale, 128);
  gpu.write(buf, randomArray(16, 10), 64);
  const plain = await sgdUpdate(gpu, { ...base, momentum: 0 });
  assert.is(plain.length, 1);
  await gpu.run(plain);
  assertClose(await gpu.read(buf, 128, 16), stale, { atol: 0, rtol: 0 }, 'velocity untouched without momentum');
  plain.forEach((l) => l.destroy());
  const empty = tensor(buf, [0], 256);
  assert.is((await sgdUpdate(gpu, { ...base, params: empty, grads: empty, velocity: empty })).length, 0, 'an empty range gives no launches');
  gpu.arena.free(buf);
});

test.run();
