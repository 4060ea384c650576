import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { adamReference, adamUpdate, type AdamHyper } from '../src/kernels/optimizer_adam.js';
import { tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('optimizer_adam');
test.after(closeTestGpu);

// f32 on the GPU against float64: |p| ≲ 1 moves by lr·|m̂/(√v̂+eps)| ≲ lr·3 per step, with a few
// roundings each. m = β₁m + (1−β₁)g can cancel (|β₁m| ~ 0.45 against |(1−β₁)g| ~ 0.1), so its error
// is absolute, a few ulps of 0.5 (~3e-8) per step, decaying by β₁: hence m's atol. v ≥ 0 never cancels.
const tolParams = { atol: 2e-6, rtol: 1e-6 };
const tolM = { atol: 2e-7, rtol: 1e-6 };
const tolV = { atol: 1e-10, rtol: 1e-6 };
const schedule = [0.01, 0.01, 0.005, 0.05, 0.02];
const n = 1037;

interface Config { name: string; hyper: Omit<AdamHyper, 'lr' | 'step'>; chunkElements?: number }
const configs: Config[] = [
  { name: 'adam', hyper: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false } },
  { name: 'adam, L2 weight decay', hyper: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: false }, chunkElements: 256 },
  { name: 'adamw', hyper: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: true } },
  { name: 'adamw, chunked, other betas', hyper: { beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.5, decoupled: true }, chunkElements: 300 },
  { name: 'adam, beta1 0 (RMSProp-like)', hyper: { beta1: 0, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false } },
];

/** params, grads and (m, v) packed into three buffers at 64-element-aligned offsets; state starts as given. */
async function setup(m0: Float32Array, v0: Float32Array, p0: Float32Array) {
  const gpu = await testGpu();
  const paramsBuf = gpu.upload('parameters', 'parameters', p0);
  const gradsBuf = gpu.zeros('gradients', 'gradients', 64 + n);
  const state = new Float32Array(1088 + n);
  state.set(m0, 0);
  state.set(v0, 1088);
  const stateBuf = gpu.upload('optimizer', 'optimizer', state);
  const refs = {
    params: tensor(paramsBuf, [n], 128), grads: tensor(gradsBuf, [n], 64), m: tensor(stateBuf, [n], 0), v: tensor(stateBuf, [n], 1088),
  };
  const free = () => [paramsBuf, gradsBuf, stateBuf].forEach((b) => gpu.arena.free(b));
  return { gpu, refs, paramsBuf, gradsBuf, stateBuf, free };
}

test('Adam and AdamW: 5 steps on the GPU match the float64 reference, lr and step rewritten per step', async () => {
  for (const cfg of configs) {
    const packed = randomArray(128 + n + 40, 7);
    const { gpu, refs, paramsBuf, gradsBuf, stateBuf, free } = await setup(new Float32Array(n), new Float32Array(n), packed);
    const launches = await adamUpdate(gpu, { ...refs, lr: schedule[0], step: 1, ...cfg.hyper, chunkElements: cfg.chunkElements });
    assert.is(launches.length, cfg.chunkElements ? Math.ceil(n / cfg.chunkElements) : 1, `${cfg.name}: launches`);
    const p = Float64Array.from(packed.subarray(128, 128 + n));
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    for (let step = 1; step <= schedule.length; step++) {
      const g = randomArray(n, 200 + step);
      gpu.write(gradsBuf, g, 64);
      for (const l of launches) l.setUniforms(gpu.queue, { lr: schedule[step - 1], step });
      await gpu.run(launches);
      adamReference(p, g, m, v, { lr: schedule[step - 1], step, ...cfg.hyper });
      assertClose(await gpu.read(paramsBuf, 128, n), p, tolParams, `${cfg.name}: params after step ${step}`);
    }
    assertClose(await gpu.read(stateBuf, 0, n), m, tolM, `${cfg.name}: m`);
    assertClose(await gpu.read(stateBuf, 1088, n), v, tolV, `${cfg.name}: v`);
    const after = await gpu.read(paramsBuf);
    assertClose(after.subarray(0, 128), packed.subarray(0, 128), { atol: 0, rtol: 0 }, `${cfg.name}: elements before params`);
    assertClose(after.subarray(128 + n), packed.subarray(128 + n), { atol: 0, rtol: 0 }, `${cfg.name}: elements after params`);
    launches.forEach((l) => l.destroy());
    free();
  }
});

test('bias correction at large step counts (both branches of 1 − βᵗ) from a nonzero state', async () => {
  const m0 = randomArray(n, 31, 0.5);
  const v0 = randomArray(n, 32, 0.5).map((x) => x * x + 1e-4);
  const p0 = randomArray(128 + n, 33);
  const { gpu, refs, paramsBuf, gradsBuf, stateBuf, free } = await setup(m0, v0, p0);
  const hyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false };
  const launches = await adamUpdate(gpu, { ...refs, ...hyper, step: 1 });
  const p = Float64Array.from(p0.subarray(128, 128 + n));
  const m = Float64Array.from(m0);
  const v = Float64Array.from(v0);
  const g = randomArray(n, 34);
  gpu.write(gradsBuf, g, 64);
  // t·ln β₂ = −0.3, −0.6, −5, −100: series then exp for β₂; β₁ is past the series from t = 5 on.
  for (const step of [300, 600, 5000, 100_000]) {
    for (const l of launches) l.setUniforms(gpu.queue, { step });
    await gpu.run(launches);
    adamReference(p, g, m, v, { ...hyper, step });
    assertClose(await gpu.read(paramsBuf, 128, n), p, tolParams, `params at step ${step}`);
  }
  assertClose(await gpu.read(stateBuf, 0, n), m, tolM, 'm');
  assertClose(await gpu.read(stateBuf, 1088, n), v, tolV, 'v');
  launches.forEach((l) => l.destroy());
  free();
});

// tfjs (adam_optimizer.js): m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², p −= lr·(m/(1−β₁ᵗ))/(√(v/(1−β₂ᵗ)) + eps),
// with β₁ᵗ, β₂ᵗ accumulated in f32 variables starting at β (t is 1-based): PyTorch's Adam with
// weight decay 0, and ours. tfjs forms 1 − β₂ᵗ in f32 (off by ~1e-5 relative at t = 1; we use
// float64-derived constants), which moves each step by ~lr·1e-5 relative: far under the tolerance.
test('matches tf.train.adam over 4 steps', async () => {
  await tf.setBackend('cpu');
  const gpu = await testGpu();
  const size = 53;
  const start = randomArray(size, 61);
  for (const [lr, beta1, beta2, eps] of [[0.01, 0.9, 0.999, 1e-8], [0.05, 0.5, 0.9, 1e-3]]) {
    const name = `w_adam_${beta1}`;
    const variable = tf.variable(tf.tensor1d(start), true, name);
    const optimizer = tf.train.adam(lr, beta1, beta2, eps);
    const paramsBuf = gpu.upload('params', 'parameters', start);
    const gradsBuf = gpu.zeros('grads', 'gradients', size);
    const mBuf = gpu.zeros('m', 'optimizer', size);
    const vBuf = gpu.zeros('v', 'optimizer', size);
    const launches = await adamUpdate(gpu, {
      params: tensor(paramsBuf, [size]), grads: tensor(gradsBuf, [size]), m: tensor(mBuf, [size]), v: tensor(vBuf, [size]),
      lr, beta1, beta2, eps, weightDecay: 0, decoupled: false, step: 1,
    });
    for (let step = 1; step <= 4; step++) {
      const g = randomArray(size, 70 + step, 3);
      tf.tidy(() => optimizer.applyGradients([{ name, tensor: tf.tensor1d(g) }]));
      gpu.write(gradsBuf, g);
      for (const l of launches) l.setUniforms(gpu.queue, { step });
      await gpu.run(launches);
    }
    assertClose(await gpu.read(paramsBuf), await variable.data(), { atol: 1e-6, rtol: 1e-6 }, `tfjs adam β₁ ${beta1}`);
    optimizer.dispose();
    variable.dispose();
    launches.forEach((l) => l.destroy());
    for (const b of [paramsBuf, gradsBuf, mBuf, vBuf]) gpu.arena.free(b);
  }
});

test('bad hyperparameters are refused with errors naming the optimizer and the value', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'optimizer', 256);
  const base = {
    params: tensor(buf, [16], 0), grads: tensor(buf, [16], 64), m: tensor(buf, [16], 128), v: tensor(buf, [16], 192),
    lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, step: 1,
  };
  const cases: [Partial<typeof base>, string][] = [
    [{ lr: -1 }, 'adam: lr must be a finite number in [0, ∞), got -1'],
    [{ lr: NaN, decoupled: true }, 'adamw: lr must be a finite number in [0, ∞), got NaN'],
    [{ beta1: 1 }, 'adam: beta1 must be a finite number in [0, 1), got 1'],
    [{ beta2: -0.1 }, 'adam: beta2 must be a finite number in [0, 1), got -0.1'],
    [{ eps: 0 }, 'adam: eps must be a finite number in (0, ∞), got 0'],
    [{ eps: -1e-8 }, 'adam: eps must be a finite number in (0, ∞), got -1e-8'],
    [{ weightDecay: -0.01, decoupled: true }, 'adamw: weightDecay must be a finite number in [0, ∞), got -0.01'],
    [{ step: 0 }, 'adam: step must be an integer ≥ 1 (the step count t, 1-based), got 0'],
    [{ step: 2.5 }, 'adam: step must be an integer ≥ 1 (the step count t, 1-based), got 2.5'],
    [{ v: tensor(buf, [16], 0) }, 'adam: "params" (elements [0, 16)) and "v" (elements [0, 16)) overlap in buffer "buf"; this op cannot run in place on them'],
    [{ m: tensor(buf, [17], 128) }, 'adam: "m" has shape [17] (17 elements), expected 16 elements like "params" [16]'],
  ];
  for (const [change, message] of cases) {
    await adamUpdate(gpu, { ...base, ...change }).then(() => assert.unreachable(message), (e: Error) => assert.match(e.message, message));
  }
  assert.throws(() => adamReference(new Float64Array(1), [1], new Float64Array(1), new Float64Array(1), { ...base, step: 0 }), /adam: step must be an integer/);
  gpu.arena.free(buf);
});

test.run();
