// DenseNet-BC-100-12 at batch 16 builds under every memory strategy: every op's bindings are
// accepted by WebGPU (the executor encodes each op once when it is built) with the model's real
// buffer sizes, where planned pools exceed one binding (maxStorageBufferBindingSize).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MEMORY_STRATEGIES } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { TrainingSession } from '../src/models/session.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('deep build');
test.after(closeTestGpu);

test('densenet-bc-100-12 at batch 16 builds under every strategy', async () => {
  const gpu = await testGpu();
  const model = DenseNetModel.create(gpu, preset('densenet-bc-100-12'), 1);
  for (const memory of MEMORY_STRATEGIES) {
    const session = await TrainingSession.create(model, { batch: 16, memory, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 } });
    assert.ok(session.executable.launchCount > 500, `${memory}: ${session.executable.launchCount} launches`);
    session.destroy();
  }
  model.close();
  assert.is(gpu.arena.liveBytes, 0);
});

test.run();
