import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; see batchnorm.test.ts.
import '../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { linearBackward, linearBackwardReference, linearForward, linearReference, type LinearDims } from '../src/kernels/linear.js';
import { ShapeError, tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, dot, finiteDifference, randomArray, testGpu } from './helpers.js';
import { Layout } from './pool_layout.js';

const test = suite('linear');
test.before(async () => { await tf.setBackend('cpu'); });
test.after(closeTestGpu);

// f32 dot products of length ≤ 30 over values in [-1, 1] against float64.
const tol = { atol: 1e-5, rtol: 1e-5 };

async function checkLinear(d: LinearDims, packed: boolean, seed: number): Promise<void> {
  const gpu = await testGpu();
  const what = `linear ${JSON.stringify(d)}${packed ? ' packed in one buffer' : ''}`;
  const fwd = new Layout(gpu, packed, [[d.cin, d.n], [d.cout, d.cin], [d.cout], [d.n, d.cout]], seed);
  const [x, weight, bias, y] = fwd.refs;
  let launches = await linearForward(gpu, { x, weight, bias, y });
  await gpu.run(launches);
  launches.forEach((l) => l.destroy());
  assertClose(await fwd.read(3), linearReference(fwd.initial(0), fwd.initial(1), fwd.initial(2), d), tol, `${what} forward`);
  await fwd.expectRestUntouched(`${what} forward`);
  fwd.free();

  const bwd = new Layout(gpu, packed, [[d.cin, d.n], [d.cout, d.cin], [d.n, d.cout], [d.cin, d.n], [d.cout, d.cin], [d.cout]], seed + 1);
  const [bx, bw, dy, dx, dweight, dbias] = bwd.refs;
  const ref = linearBackwardReference(bwd.initial(0), bwd.initial(1), bwd.initial(2), d);
  for (const mode of ['write', 'accumulate', 'no dx'] as const) {
    for (const i of [3, 4, 5]) bwd.reset(i);
    launches = await linearBackward(gpu, { x: bx, weight: bw, dy, dweight, dbias, ...(mode === 'no dx' ? {} : { dx, accumulate: mode === 'accumulate' }) });
    assert.is(launches.length, mode === 'no dx' ? 1 : 2);
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const init = bwd.initial(3);
    const wantDx = mode === 'write' ? ref.dx : mode === 'accumulate' ? ref.dx.map((v, i) => v + init[i]) : init;
    assertClose(await bwd.read(3), wantDx, tol, `${what} dx (${mode})`);
    // Parameter gradients are written (=) whatever `accumulate` says.
    assertClose(await bwd.read(4), ref.dweight, tol, `${what} dweight (${mode})`);
    assertClose(await bwd.read(5), ref.dbias, tol, `${what} dbias (${mode})`);
    await bwd.expectRestUntouched(`${what} backward (${mode})`);
  }
  bwd.free();
}

test('forward and backward match the reference with operands at offsets in larger buffers', async () => {
  await checkLinear({ cin: 13, n: 3, cout: 7 }, false, 1);
  await checkLinear({ cin: 30, n: 20, cout: 17 }, false, 3); // several workgroups in every launch
});

test('every operand packed into one buffer at unaligned offsets', async () => {
  await checkLinear({ cin: 13, n: 3, cout: 7 }, true, 5);
});

test('matches tf.matMul + bias and its gradients (tf.grads)', async () => {
  const gpu = await testGpu();
  const d = { cin: 24, n: 6, cout: 10 };
  const [xs, ws, bs, dys] = [randomArray(d.cin * d.n, 20), randomArray(d.cout * d.cin, 21), randomArray(d.cout, 22), randomArray(d.n * d.cout, 23)];
  const bufs = [xs, ws, bs, dys].map((a, i) => gpu.upload(`in${i}`, 'activations', a));
  const outs = [d.n * d.cout, d.cin * d.n, d.cout * d.cin, d.cout].map((n, i) => gpu.zeros(`out${i}`, 'gradients', n));
  const [x, weight, bias, dy] = [tensor(bufs[0], [d.cin, d.n]), tensor(bufs[1], [d.cout, d.cin]), tensor(bufs[2], [d.cout]), tensor(bufs[3], [d.n, d.cout])];
  const launches = [
    ...await linearForward(gpu, { x, weight, bias, y: tensor(outs[0], [d.n, d.cout]) }),
    ...await linearBackward(gpu, { x, weight, dy, dx: tensor(outs[1], [d.cin, d.n]), dweight: tensor(outs[2], [d.cout, d.cin]), dbias: tensor(outs[3], [d.cout]) }),
  ];
  await gpu.run(launches);
  const [y, dx, dweight, dbias] = await Promise.all(outs.map((b) => gpu.read(b)));
  tf.tidy(() => {
    // x is [Cin, N] and W [Cout, Cin]: logits = xᵀ·Wᵀ + b.
    const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) => tf.add(tf.matMul(xt, wt, true, true), bt);
    const args = [tf.tensor2d(xs, [d.cin, d.n]), tf.tensor2d(ws, [d.cout, d.cin]), tf.tensor1d(bs)];
    assertClose(y, f(args[0], args[1], args[2]).dataSync(), tol, 'linear forward vs tfjs');
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => f(a, b, c))(args, tf.tensor2d(dys, [d.n, d.cout]));
    assertClose(dx, grads[0].dataSync(), tol, 'linear dx vs tfjs');
    assertClose(dweight, grads[1].dataSync(), tol, 'linear dweight vs tfjs');
    assertClose(dbias, grads[2].dataSync(), tol, 'linear dbias vs tfjs');
  });
  launches.forEach((l) => l.destroy());
  [...bufs, ...outs].forEach((b) => gpu.arena.free(b));
});

test('the reference backward matches finite differences for x, weight and bias', () => {
  const d = { cin: 5, n: 3, cout: 4 };
  const [x, w, b, probe] = [randomArray(15, 30), randomArray(20, 31), randomArray(4, 32), randomArray(12, 33)];
  const ref = linearBackwardReference(x, w, probe, d);
  const ftol = { atol: 1e-7, rtol: 1e-6 };
  assertClose(ref.dx, finiteDifference((v) => dot(linearReference(v, w, b, d), probe), x), ftol, 'dx finite differences');
  assertClose(ref.dweight, finiteDifference((v) => dot(linearReference(x, v, b, d), probe), w), ftol, 'dweight finite differences');
  assertClose(ref.dbias, finiteDifference((v) => dot(linearReference(x, w, v, d), probe), b), ftol, 'dbias finite differences');
});

test('shape errors name the op, the operand and both shapes, before anything is compiled or recorded', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('buf', 'activations', 1024);
  const other = gpu.zeros('other', 'gradients', 1024);
  const [pipelines, bytes] = [gpu.pipelines.pipelinesCreated, gpu.arena.liveBytes];
  const refuses = async (call: Promise<unknown>, message: string | RegExp) => {
    await call.then(
      () => assert.unreachable(`should throw ${message}`),
      (e: Error) => { assert.ok(e instanceof ShapeError, `${e.message} is a ShapeError`); assert.match(e.message, message); },
    );
  };
  const x = tensor(buf, [13, 3]);
  const weight = tensor(buf, [7, 13], 100);
  const bias = tensor(buf, [7], 300);
  await refuses(linearForward(gpu, { x: tensor(buf, [13, 3, 1, 1]), weight, bias, y: tensor(other, [3, 7]) }), 'linear: "x" has shape [13, 3, 1, 1], expected [Cin, N]');
  await refuses(linearForward(gpu, { x, weight: tensor(buf, [7, 12], 100), bias, y: tensor(other, [3, 7]) }), 'linear: "weight" has shape [7, 12], expected [Cout, 13] for x [13, 3]');
  await refuses(linearForward(gpu, { x, weight, bias: tensor(buf, [8], 300), y: tensor(other, [3, 7]) }), 'linear: "bias" has shape [8], expected [7]');
  await refuses(linearForward(gpu, { x, weight, bias, y: tensor(other, [7, 3]) }), 'linear: "y" has shape [7, 3], expected [3, 7]');
  const grads = { dweight: tensor(other, [7, 13], 100), dbias: tensor(other, [7], 300) };
  await refuses(linearBackward(gpu, { x, weight, dy: tensor(other, [3, 8]), ...grads }), 'linear.backward: "dy" has shape [3, 8], expected [3, 7]');
  await refuses(linearBackward(gpu, { x, weight, dy: tensor(other, [3, 7]), dx: tensor(other, [3, 13], 500), ...grads }), 'linear.backward: "dx" has shape [3, 13], expected [13, 3]');
  await refuses(linearBackward(gpu, { x, weight, dy: tensor(other, [3, 7]), ...grads, dbias: tensor(other, [7], 190) }),
    /linear.backward: "dweight" \(elements \[100, 191\)\) and "dbias" \(elements \[190, 197\)\) overlap in buffer "other"/);
  assert.is(gpu.pipelines.pipelinesCreated, pipelines, 'nothing was compiled');
  assert.is(gpu.arena.liveBytes, bytes, 'no launch (uniform buffer) was created');
  gpu.arena.free(buf);
  gpu.arena.free(other);
});

test.run();
