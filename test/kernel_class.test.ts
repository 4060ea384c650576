// The GPU-class kernel variants (workgroup-memory conv GEMM with vec4 loads where aligned, split
// batch-norm reductions, split-K backward-filter, row-parallel softmax-CE, parallel global pool) as a
// whole network: a DenseNet-BC training step built for kernelClass 'gpu' gives the loss and every
// parameter gradient of the software build on the same weights and batch, under every memory
// strategy, and inference gives the same logits. They run here on the software adapter (slowly);
// on a GPU adapter they are the default (kernelClass in src/gpu/profile.ts).
//
// Tolerances: the variants sum in other orders (split-K over workgroup tiles; per-chunk partial
// sums merged with Chan's formula), so float32 results differ by rounding that grows through the
// network: loss |a − b| ≤ 1e-5·|b|; gradients |a − b| ≤ 1e-4·max|b| + 1e-3·|b| per tensor, the
// scale term because a tensor's small entries are sums of large terms that cancel.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelClass, type AdapterProfile } from '../src/gpu/profile.js';
import { MEMORY_STRATEGIES } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('kernel class');
test.after(closeTestGpu);

const config = preset('densenet-bc-tiny');
const N = 4;
const [C, H, W] = config.inputShape;
const images = randomArray(N * C * H * W, 11);
const labels = Uint32Array.from({ length: N }, (_, i) => (i * 7) % 10);
const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };

test('DENSENET_WGSL_KERNELS forces a class; anything else is refused naming the variable', () => {
  const gpu = { profile: { class: 'software' } as AdapterProfile };
  assert.is(kernelClass(gpu, {}), 'software');
  assert.is(kernelClass({ profile: { class: 'discrete' } as AdapterProfile }, {}), 'gpu');
  assert.is(kernelClass(gpu, { DENSENET_WGSL_KERNELS: 'gpu' }), 'gpu');
  assert.throws(() => kernelClass(gpu, { DENSENET_WGSL_KERNELS: 'fast' }), /DENSENET_WGSL_KERNELS must be "software" or "gpu", got "fast"/);
});

test('a training step built with the GPU-class variants matches the software build, under every strategy', async () => {
  const gpu = await testGpu();
  for (const memory of MEMORY_STRATEGIES) {
    const results = [];
    for (const kernels of ['software', 'gpu'] as const) {
      const model = DenseNetModel.create(gpu, config, 3);
      const session = await TrainingSession.create(model, { batch: N, memory, optimizer: sgd, kernels });
      const names = session.executable.launchNames;
      const gpuClass = names.filter((n) => /conv2d(\.backwardInput)?\.workgroup|batchNorm.*split|softmaxCrossEntropy\.rows|globalAvgPool\.parallel|backwardFilter\.splitSum/i.test(n));
      if (kernels === 'gpu') {
        assert.ok(names.some((n) => n.startsWith('conv2d.workgroup')), `${memory}: the gpu build runs the workgroup conv (${[...new Set(names)].join(', ')})`);
        assert.ok(names.some((n) => /batchNorm.*split/i.test(n)), `${memory}: the gpu build runs split batch-norm reductions`);
        for (const kernel of ['softmaxCrossEntropy.rows', 'softmaxCrossEntropy.total', 'globalAvgPool.parallel', 'conv2d.backwardFilter.splitSum']) {
          assert.ok(names.includes(kernel), `${memory}: the gpu build runs ${kernel}`);
        }
      } else {
        assert.equal(gpuClass, [], `${memory}: the software build runs no GPU-class variant`);
      }
      const step = await session.step(images, labels, 0.1);
      results.push({ loss: step.loss, grads: await session.readGradients() });
      session.destroy();
      model.close();
    }
    const [soft, fast] = results;
    assert.ok(Number.isFinite(soft.loss), `${memory}: finite loss`);
    assert.ok(Math.abs(fast.loss - soft.loss) <= 1e-5 * Math.abs(soft.loss), `${memory}: loss ${fast.loss} vs ${soft.loss}`);
    assert.is(fast.grads.size, soft.grads.size);
    for (const [name, b] of soft.grads) {
      const a = fast.grads.get(name)!;
      let scale = 0;
      for (const v of b) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < b.length; i++) {
        const tol = 1e-4 * scale + 1e-3 * Math.abs(b[i]);
        if (!(Math.abs(a[i] - b[i]) <= tol)) assert.unreachable(`${memory}: gradient ${name}[${i}] ${a[i]} vs ${b[i]} (tolerance ${tol})`);
      }
    }
  }
});

test('inference built with the GPU-class variants gives the software build\'s logits', async () => {
  const gpu = await testGpu();
  const logits = [];
  for (const kernels of ['software', 'gpu'] as const) {
    const model = DenseNetModel.create(gpu, config, 5);
    const session = await InferenceSession.create(model, { batch: N, kernels });
    logits.push(await session.run(images));
    session.destroy();
    model.close();
  }
  const [soft, fast] = logits;
  for (let i = 0; i < soft.length; i++) {
    assert.ok(Math.abs(fast[i] - soft[i]) <= 1e-5 + 1e-4 * Math.abs(soft[i]), `logit ${i}: ${fast[i]} vs ${soft[i]}`);
  }
});

test.run();
