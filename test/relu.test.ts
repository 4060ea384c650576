import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reluBackward, reluBackwardReference, reluForward, reluReference } from '../src/kernels/relu.js';
import { channelSlice, ShapeError, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, testGpu } from './helpers.js';

const test = suite('relu');
test.after(closeTestGpu);
const exact = { atol: 0, rtol: 0 };

test('forward and backward match the reference on a channel slice of a larger buffer', async () => {
  const gpu = await testGpu();
  const [C, N, H, W] = [13, 3, 7, 7];
  const slab = randomArray(20 * N * H * W, 1);
  const dySlab = randomArray(C * N * H * W, 2);
  const xBuf = gpu.upload('x', 'activations', slab);
  const dyBuf = gpu.upload('dy', 'gradients', dySlab);
  const dxInit = randomArray(20 * N * H * W, 3);
  const dxBuf = gpu.upload('dx', 'gradients', dxInit);
  const yBuf = gpu.zeros('y', 'activations', C * N * H * W);
  const x = channelSlice(tensor(xBuf, [20, N, H, W]), 5, C);
  const dx = channelSlice(tensor(dxBuf, [20, N, H, W]), 5, C);
  const y = tensor(yBuf, [C, N, H, W]);
  const dy = tensor(dyBuf, [C, N, H, W]);
  const launches = [await reluForward(gpu, { x, y }), await reluBackward(gpu, { x, dy, dx, accumulate: true })];
  await gpu.run(launches);
  const xs = slab.subarray(x.offset, x.offset + C * N * H * W);
  assertClose(await gpu.read(yBuf), reluReference(xs), exact, 'relu forward');
  const got = await gpu.read(dxBuf);
  const expected = Float64Array.from(dxInit);
  const back = reluBackwardReference(xs, dySlab);
  for (let i = 0; i < back.length; i++) expected[x.offset + i] += back[i];
  assertClose(got, expected, { atol: 1e-7, rtol: 1e-7 }, 'relu backward accumulated into the slice only');
  launches.forEach((l) => l.destroy());
  for (const b of [xBuf, dyBuf, dxBuf, yBuf]) gpu.arena.free(b);
});

test('one dispatch may read one tensor and write another packed in the same buffer', async () => {
  // The memory planner packs many tensors into one buffer per category; WebGPU refuses a buffer
  // bound read-only and writable in one dispatch, so every binding is writable and tightly ranged.
  const gpu = await testGpu();
  const n = 64 * 5; // 1280 bytes: x at 0, y at element 384 (byte 1536, 256-aligned)
  const pool = gpu.upload('pool', 'activations', randomArray(384 + n, 7));
  const x = tensor(pool, [n], 0);
  const y = tensor(pool, [n], 384);
  const launch = await reluForward(gpu, { x, y });
  await gpu.run([launch]);
  const all = await gpu.read(pool);
  assertClose(all.subarray(384), reluReference(all.subarray(0, n)), exact, 'relu within one buffer');
  launch.destroy();
  gpu.arena.free(pool);
});

test('the reference backward matches finite differences', () => {
  const x = randomArray(50, 4).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v)); // away from the kink
  const w = randomArray(50, 5);
  const numeric = finiteDifference((xs) => dot(reluReference(xs), w), x);
  assertClose(reluBackwardReference(x, w), numeric, { atol: 1e-6, rtol: 1e-6 }, 'relu finite differences');
});

test('a mismatched output shape is refused before anything is recorded', async () => {
  const gpu = await testGpu();
  const a = gpu.zeros('a', 'activations', 24);
  assert.throws(() => tensor(a, [5, 5]), (e: Error) => e instanceof ShapeError && /outside its buffer "a"/.test(e.message));
  await reluForward(gpu, { x: tensor(a, [2, 3, 2, 2]), y: tensor(a, [3, 2, 2, 2]) }).then(
    () => assert.unreachable('should throw'),
    (e: Error) => assert.match(e.message, 'relu: "y" has shape [3, 2, 2, 2], expected [2, 3, 2, 2]'),
  );
  gpu.arena.free(a);
});

test.run();
