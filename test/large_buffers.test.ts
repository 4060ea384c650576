// Tensors far apart in one buffer larger than a binding may be (maxStorageBufferBindingSize): the
// planner packs a whole category into one buffer, so a kernel must bind each operand's own range
// rather than one range spanning them (which broke DenseNet-BC-100 at batch 16 under `naive`).
import { suite } from 'uvu';
import { conv2dForward, conv2dReference } from '../src/kernels/conv2d.js';
import { avgPool2x2Forward, avgPool2x2Reference } from '../src/kernels/pool_average.js';
import { batchNormForward, batchNormForwardReference } from '../src/kernels/batchnorm.js';
import { tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('large buffers');
test.after(closeTestGpu);

test('conv, average pool and batch norm read and write tensors more than one binding apart in one buffer', async () => {
  const gpu = await testGpu();
  const bindingElements = gpu.limits.maxStorageBufferBindingSize / 4;
  const far = bindingElements + 4096; // y starts past what one binding could span from x
  const [C, N, H, W] = [4, 2, 6, 6];
  const size = C * N * H * W;
  const pool = gpu.arena.allocate('pool', 'activations', (far + 3 * size + 256) * 4);
  const x = randomArray(size, 1);
  gpu.write(pool, x, 0);
  const w = randomArray(3 * C * 9, 2);
  const weights = gpu.upload('w', 'parameters', w);
  const vector = (label: string, value: number) => gpu.upload(label, 'parameters', new Float32Array(C).fill(value));
  const [meanBuf, varianceBuf, gammaBuf, betaBuf] = [vector('mean', 0.5), vector('variance', 0.1), vector('gamma', 1), vector('beta', 0.2)];
  const xRef = tensor(pool, [C, N, H, W], 0);
  const convOut = tensor(pool, [3, N, H, W], far);
  const poolOut = tensor(pool, [C, N, H / 2, W / 2], far + 3 * N * H * W + 64);
  const bnOut = tensor(pool, [C, N, H, W], far + size + 128);
  const [mean, variance, gamma, beta] = [meanBuf, varianceBuf, gammaBuf, betaBuf].map((b) => tensor(b, [C]));
  const launches = [
    ...await conv2dForward(gpu, { x: xRef, w: tensor(weights, [3, C, 3, 3]), y: convOut, padding: 1 }),
    ...await avgPool2x2Forward(gpu, { x: xRef, y: poolOut }),
    ...await batchNormForward(gpu, { x: xRef, mean, variance, gamma, beta, y: bnOut, eps: 1e-5, relu: true }),
  ];
  await gpu.run(launches);
  const tol = { atol: 1e-5, rtol: 1e-5 };
  assertClose(await gpu.read(pool, convOut.offset, 3 * N * H * W), conv2dReference(x, [C, N, H, W], w, [3, C, 3, 3], { padding: 1 }), tol, 'conv');
  assertClose(await gpu.read(pool, poolOut.offset, size / 4), avgPool2x2Reference(x, [C, N, H, W]), tol, 'avg pool');
  const m = new Float64Array(4).fill(0.5);
  const v = new Float64Array(4).fill(0.1);
  assertClose(await gpu.read(pool, bnOut.offset, size),
    batchNormForwardReference({ x, shape: [C, N, H, W], mean: m, variance: v, gamma: [1, 1, 1, 1], beta: [0.2, 0.2, 0.2, 0.2], eps: 1e-5, relu: true }), tol, 'batch norm');
  launches.forEach((l) => l.destroy());
  for (const b of [pool, weights, meanBuf, varianceBuf, gammaBuf, betaBuf]) gpu.arena.free(b);
});

test.run();
