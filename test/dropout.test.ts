import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gpu } from '../src/gpu/device.js';
import type { Launch } from '../src/gpu/program.js';
import {
  dropoutBackward, dropoutBackwardReference, dropoutForward, dropoutMaskReference, dropoutReference,
} from '../src/kernels/dropout.js';
import { pcgHash, randomU32 } from '../src/kernels/random.js';
import { channelSlice, ShapeError, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, testGpu } from './helpers.js';

const test = suite('dropout');
test.after(closeTestGpu);

// GPU: f32(x·f32(1/(1−rate))) against float64 x/(1−rate): two roundings, ≤ 2^-23 relative.
const valueTol = { atol: 0, rtol: 2.5e-7 };

/** Random data with no zeros, so that y == 0 exactly where the mask dropped the element. */
function nonzero(n: number, seed: number): Float32Array {
  return randomArray(n, seed).map((v) => (v >= 0 ? v + 0.01 : v - 0.01));
}

/** Asserts the GPU's kept/dropped pattern equals the reference mask, bit for bit. */
function assertMask(y: ArrayLike<number>, mask: Uint8Array, what: string): void {
  assert.is(y.length, mask.length, `${what}: length`);
  for (let i = 0; i < mask.length; i++) {
    if ((y[i] !== 0 ? 1 : 0) !== mask[i]) assert.unreachable(`${what}: element ${i} is ${y[i]} but the reference mask bit is ${mask[i]}`);
  }
}

async function runAndDestroy(gpu: Gpu, launches: Launch[]): Promise<void> {
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
}

test('the TypeScript hash matches the C reference (uint32 arithmetic) on sample inputs', () => {
  // Values printed by the JCGT 2020 pcg_hash in C (uint32_t state = v*747796405u + 2891336453u, RXS-M-XS)
  // and by randomU32 written in C on top of it: TypeScript's Math.imul/>>> must wrap exactly like u32.
  assert.is(pcgHash(0), 129708002);
  assert.is(pcgHash(1), 2831084092);
  assert.is(pcgHash(0xffffffff), 3861530882);
  assert.is(randomU32(7, 11), 2551601282);
  assert.is(randomU32(0xdeadbeef, 123456789), 2621918793);
});

test('forward: the GPU mask equals the reference bit for bit on awkward sizes and a channel slice', async () => {
  const gpu = await testGpu();
  for (const [C, N, H, W] of [[1, 1, 1, 1], [3, 1, 5, 17], [7, 3, 5, 5], [2, 1, 33, 65]]) {
    const per = N * H * W;
    const slab = nonzero((C + 5) * per, C * 31 + W);
    const xBuf = gpu.upload('x', 'activations', slab);
    const yBuf = gpu.zeros('y', 'activations', C * per);
    const x = channelSlice(tensor(xBuf, [C + 5, N, H, W]), 3, C);
    const y = tensor(yBuf, [C, N, H, W]);
    for (const [rate, seed] of [[0.3, 12345], [0.5, 0xfffffffe]]) {
      await runAndDestroy(gpu, await dropoutForward(gpu, { x, y, rate, seed }));
      const got = await gpu.read(yBuf);
      const xs = slab.subarray(x.offset, x.offset + C * per);
      // The mask index is the element's index in the tensor, not its offset (3·per) in the buffer.
      assertMask(got, dropoutMaskReference(C * per, rate, seed), `mask [${C}, ${N}, ${H}, ${W}] rate ${rate}`);
      assertClose(got, dropoutReference(xs, rate, seed), valueTol, `values [${C}, ${N}, ${H}, ${W}] rate ${rate}`);
    }
    gpu.arena.free(xBuf);
    gpu.arena.free(yBuf);
  }
});

test('forward in several launches, in place, and between two slices of one buffer', async () => {
  const gpu = await testGpu();
  const n = 2048; // a multiple of 64 elements, so that x, the gap and y start 256-byte aligned
  const data = nonzero(3 * n, 5);
  const rate = 0.25;
  const seed = 99;
  const expected = dropoutReference(data.subarray(0, n), rate, seed);
  // Chunks of 384 elements: each launch must start its mask index at its chunk's start.
  const buf = gpu.upload('slab', 'activations', data);
  const x = tensor(buf, [n], 0);
  const y = tensor(buf, [n], 2 * n);
  const chunked = await dropoutForward(gpu, { x, y, rate, seed, chunkElements: 384 });
  assert.is(chunked.length, Math.ceil(n / 384));
  await runAndDestroy(gpu, chunked);
  assertClose(await gpu.read(buf, 2 * n, n), expected, valueTol, 'chunked, slice to slice');
  assertClose(await gpu.read(buf, n, n), data.subarray(n, 2 * n), { atol: 0, rtol: 0 }, 'the range between is untouched');
  await runAndDestroy(gpu, await dropoutForward(gpu, { x, y: x, rate, seed }));
  assertClose(await gpu.read(buf, 0, n), expected, valueTol, 'in place');
  gpu.arena.free(buf);
});

test('backward recomputes the forward mask, writes or accumulates into a channel slice', async () => {
  const gpu = await testGpu();
  const [C, N, H, W] = [5, 2, 7, 9];
  const count = C * N * H * W;
  const rate = 0.4;
  const seed = 2024;
  const x = gpu.upload('x', 'activations', nonzero(count, 1));
  const y = gpu.zeros('y', 'activations', count);
  const dyData = nonzero(count, 2);
  const dy = gpu.upload('dy', 'gradients', dyData);
  const dxInit = randomArray(12 * N * H * W, 3);
  const dxBuf = gpu.upload('dx', 'gradients', dxInit);
  const shape = [C, N, H, W];
  const dx = channelSlice(tensor(dxBuf, [12, N, H, W]), 6, C);
  await runAndDestroy(gpu, [
    ...await dropoutForward(gpu, { x: tensor(x, shape), y: tensor(y, shape), rate, seed }),
    ...await dropoutBackward(gpu, { dy: tensor(dy, shape), dx, rate, seed, accumulate: true }),
  ]);
  const back = dropoutBackwardReference(dyData, rate, seed);
  const expected = Float64Array.from(dxInit);
  for (let i = 0; i < count; i++) expected[dx.offset + i] += back[i];
  assertClose(await gpu.read(dxBuf), expected, { atol: 1e-7, rtol: 2.5e-7 }, 'accumulated into the slice only');

  await runAndDestroy(gpu, await dropoutBackward(gpu, { dy: tensor(dy, shape), dx, rate, seed }));
  const written = await gpu.read(dxBuf, dx.offset, count);
  const forward = await gpu.read(y);
  for (let i = 0; i < count; i++) {
    if ((written[i] !== 0) !== (forward[i] !== 0)) assert.unreachable(`element ${i}: backward mask differs from forward's`);
  }
  assertClose(written, back, valueTol, 'written');
  for (const b of [x, y, dy, dxBuf]) gpu.arena.free(b);
});

test('kept fraction is 1 − rate within 4σ over 100k elements; seeds give independent masks', async () => {
  const gpu = await testGpu();
  const n = 100_000;
  const ones = gpu.upload('ones', 'activations', new Float32Array(n).fill(1));
  const y = gpu.zeros('y', 'activations', n);
  for (const rate of [0.2, 0.5]) {
    const p = 1 - rate;
    const launches = await dropoutForward(gpu, { x: tensor(ones, [n]), y: tensor(y, [n]), rate, seed: 1 });
    const masks: Uint8Array[] = [];
    for (const seed of [1, 2, 0xdeadbeef]) {
      // The per-step seed travels as the uniform `seed`, rewritten without rebuilding the launch.
      for (const l of launches) l.setUniforms(gpu.queue, { seed });
      await gpu.run(launches);
      const got = await gpu.read(y);
      const mask = Uint8Array.from(got, (v) => (v !== 0 ? 1 : 0));
      assertMask(got, dropoutMaskReference(n, rate, seed), `rate ${rate} seed ${seed} after setUniforms`);
      const kept = mask.reduce((a, b) => a + b, 0);
      const sigma = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(kept - n * p) <= 4 * sigma, `rate ${rate} seed ${seed}: kept ${kept} of ${n}, expected ${n * p} ± ${4 * sigma}`);
      // Neighbours (2i, 2i+1) both kept with probability p², as for independent bits.
      let both = 0;
      for (let i = 0; i + 1 < n; i += 2) both += mask[i] & mask[i + 1];
      const pairs = n / 2;
      const pairSigma = Math.sqrt(pairs * p * p * (1 - p * p));
      assert.ok(Math.abs(both - pairs * p * p) <= 4 * pairSigma, `rate ${rate} seed ${seed}: neighbours both kept ${both}, expected ${pairs * p * p}`);
      const values = new Set(got);
      assert.equal([...values].sort(), [0, Math.fround(1 / p)].sort(), `rate ${rate}: kept elements are scaled by 1/(1 − rate)`);
      masks.push(mask);
    }
    // Two seeds agree on an element with probability p² + (1−p)² if their masks are independent.
    const q = p * p + (1 - p) * (1 - p);
    for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) {
      let agree = 0;
      for (let i = 0; i < n; i++) agree += masks[a][i] === masks[b][i] ? 1 : 0;
      const sigma = Math.sqrt(n * q * (1 - q));
      assert.ok(Math.abs(agree - n * q) <= 4 * sigma, `rate ${rate}: seeds ${a}/${b} agree on ${agree}, expected ${n * q} ± ${4 * sigma}`);
    }
    launches.forEach((l) => l.destroy());
  }
  gpu.arena.free(ones);
  gpu.arena.free(y);
});

test('rate 0 is the identity', async () => {
  const gpu = await testGpu();
  const data = randomArray(777, 8);
  const x = gpu.upload('x', 'activations', data);
  const y = gpu.zeros('y', 'activations', 777);
  await runAndDestroy(gpu, await dropoutForward(gpu, { x: tensor(x, [777]), y: tensor(y, [777]), rate: 0, seed: 3 }));
  assertClose(await gpu.read(y), data, { atol: 0, rtol: 0 }, 'rate 0');
  assertClose(dropoutReference(data, 0, 3), data, { atol: 0, rtol: 0 }, 'reference rate 0');
  gpu.arena.free(x);
  gpu.arena.free(y);
});

test('an empty tensor, even at the end of its buffer, gives no launches', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'activations', 64);
  const empty = tensor(buf, [0, 2, 3, 3], 64);
  assert.is((await dropoutForward(gpu, { x: empty, y: tensor(buf, [0, 2, 3, 3], 0), rate: 0.5, seed: 1 })).length, 0);
  assert.is((await dropoutBackward(gpu, { dy: empty, dx: empty, rate: 0.5, seed: 1 })).length, 0);
  gpu.arena.free(buf);
});

test('bad rates, seeds and aliasing are refused with clear errors', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'activations', 64);
  const x = tensor(buf, [16]);
  const y = tensor(buf, [16], 32);
  const yFar = tensor(gpu.zeros('far', 'activations', 16), [16]);
  for (const rate of [1, -0.1, NaN, Infinity]) {
    const pattern = /rate must be a number in \[0, 1\), got/;
    await dropoutForward(gpu, { x, y: yFar, rate, seed: 1 }).then(() => assert.unreachable(`rate ${rate}`),
      (e: Error) => assert.match(e.message, pattern));
    await dropoutBackward(gpu, { dy: x, dx: yFar, rate, seed: 1 }).then(() => assert.unreachable(`rate ${rate}`),
      (e: Error) => assert.match(e.message, pattern));
    assert.throws(() => dropoutReference([1, 2], rate, 1), pattern);
  }
  for (const seed of [-1, 1.5, 2 ** 32]) {
    await dropoutForward(gpu, { x, y: yFar, rate: 0.5, seed }).then(() => assert.unreachable(`seed ${seed}`),
      (e: Error) => assert.match(e.message, `dropout.forward: seed must be an integer in [0, 2^32), got ${seed}`));
  }
  await dropoutForward(gpu, { x, y: tensor(buf, [16], 8), rate: 0.5, seed: 1 }).then(() => assert.unreachable('overlap'),
    (e: Error) => assert.ok(e instanceof ShapeError && /"x" \(elements \[0, 16\)\) and "y" \(elements \[8, 24\)\) overlap/.test(e.message), e.message));
  await dropoutBackward(gpu, { dy: x, dx: x, rate: 0.5, seed: 1, accumulate: true }).then(() => assert.unreachable('accumulate in place'),
    (e: Error) => assert.match(e.message, 'dropout.backward: "dx" is "dy" itself, which cannot be accumulated into'));
  // Disjoint elements within one 256-byte block: bound once (binding.ts) and computed like any other.
  const xs = nonzero(16, 7);
  gpu.write(buf, xs, 0);
  await runAndDestroy(gpu, await dropoutForward(gpu, { x, y, rate: 0.5, seed: 1 }));
  assertClose(await gpu.read(buf, 32, 16), dropoutReference(xs, 0.5, 1), valueTol, 'x and y in one 256-byte block');
  await dropoutForward(gpu, { x, y: tensor(yFar.buffer, [4, 4]), rate: 0.5, seed: 1 }).then(() => assert.unreachable('shape'),
    (e: Error) => assert.match(e.message, 'dropout.forward: "y" has shape [4, 4], expected [16]'));
  gpu.arena.free(buf);
  gpu.arena.free(yFar.buffer);
});

test('the reference backward matches finite differences', () => {
  const x = randomArray(60, 4);
  const w = randomArray(60, 5);
  const rate = 0.35;
  const seed = 77;
  const numeric = finiteDifference((xs) => dot(dropoutReference(xs, rate, seed, 1000), w), x);
  const analytic = dropoutBackwardReference(w, rate, seed, 1000);
  assertClose(analytic, numeric, { atol: 1e-6, rtol: 1e-6 }, 'dropout finite differences');
  assert.ok(analytic.some((v) => v === 0) && analytic.some((v) => v !== 0), 'the mask drops some and keeps some');
});

test.run();
