import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildBackward } from '../src/graph/autograd.js';
import { Executable } from '../src/graph/executor.js';
import { Graph, type Op, type Storage } from '../src/graph/graph.js';
import { copyInto } from '../src/graph/ops/layers.js';
import { planMemory, storageBytes, PLAN_ALIGNMENT } from '../src/graph/planner.js';
import { denseNetConfig } from '../src/models/densenet_config.js';
import { preset } from '../src/models/presets.js';
import { planDenseNetMemory } from '../src/models/memory_plan.js';
import { describeDenseNet } from '../src/models/architecture.js';
import { buildDenseNetGraph, MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';
import { parameterOffsets } from '../src/models/model.js';
import { tensor } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('graph');
test.after(closeTestGpu);

/** An op with no kernel: only its reads and writes matter to the planner. */
function touch(g: Graph, name: string, reads: Storage[], writes: Storage[]): void {
  const v = (s: Storage) => g.view(s, s.name, [s.elements]);
  g.add({ name, reads: reads.map(v), writes: writes.map(v), build: async () => [] });
}

test('the planner shares bytes only between storages whose lifetimes do not overlap', () => {
  const g = new Graph();
  const a = g.storage('a', 1000, 'activations');
  const b = g.storage('b', 500, 'activations');
  const c = g.storage('c', 700, 'activations');
  const p = g.storage('p', 10, 'activations', true);
  touch(g, 'op0', [], [a]);
  touch(g, 'op1', [a], [b]);
  touch(g, 'op2', [b], [c]); // a is dead after op1: c may reuse a's bytes, but not b's
  touch(g, 'op3', [c, p], []);
  const plan = planMemory(g);
  const range = (s: Storage) => [plan.offsets.get(s)!, plan.offsets.get(s)! + storageBytes(s)];
  const overlaps = (x: Storage, y: Storage) => range(x)[0] < range(y)[1] && range(y)[0] < range(x)[1];
  assert.not.ok(overlaps(a, b), 'a and b are live together in op1');
  assert.not.ok(overlaps(b, c), 'b and c are live together in op2');
  assert.ok(overlaps(a, c), 'c reuses a');
  for (const s of [a, b, c]) assert.not.ok(overlaps(s, p), `${s.name} never overlaps the persistent p`);
  for (const s of [a, b, c, p]) assert.is(plan.offsets.get(s)! % PLAN_ALIGNMENT, 0, `${s.name} is aligned`);
  assert.is(plan.poolBytes.activations, storageBytes(a) + storageBytes(b) + storageBytes(p));
  assert.is(plan.liveBoundBytes.activations, storageBytes(a) + storageBytes(b) + storageBytes(p));
});

test('a gradient that reaches a value twice is summed; a partial first contribution is zero-filled first', async () => {
  const gpu = await testGpu();
  const n = 6;
  const xData = randomArray(2 * n, 1);
  const xBuf = gpu.upload('x', 'parameters', xData);
  const g = new Graph();
  const xStore = g.externalStorage('x', tensor(xBuf, [2 * n]), 'activations');
  const x = g.view(xStore, 'x', [2 * n], 0, true);
  const xHead = g.view(xStore, 'x[0:n]', [n], 0);
  const y1 = g.tensor('y1', [2 * n], 'activations');
  const y2 = g.tensor('y2', [n], 'activations');
  copyInto(g, 'copy1', x, y1);      // x → y1 (covers all of x)
  copyInto(g, 'copy2', xHead, y2);  // x[0:n] → y2 (covers half)
  const dy1 = g.tensor('dy1', [2 * n], 'gradients', { persistent: true });
  const dy2 = g.tensor('dy2', [n], 'gradients', { persistent: true });
  // Seed y2 first so that, walking backward, copy2's partial contribution to x comes first.
  const gb = buildBackward(g, [[y1, dy1], [y2, dy2]]);
  const dx = gb.grad(x)!;
  assert.ok(g.ops.some((op) => op.name === 'x.grad.zero'), 'the partial first contribution zero-fills');
  const exe = await Executable.create(gpu, g, 'test');
  const d1 = randomArray(2 * n, 2);
  const d2 = randomArray(n, 3);
  exe.write(dy1, d1);
  exe.write(dy2, d2);
  exe.write(dx, new Float32Array(2 * n).fill(123)); // stale values must not survive
  await exe.run();
  const expected = Float64Array.from(d1, (v, i) => v + (i < n ? d2[i] : 0));
  assertClose(await exe.read(dx), expected, { atol: 1e-6, rtol: 1e-6 }, 'summed gradient');
  exe.destroy();
  gpu.arena.free(xBuf);
});

test('an op whose bindings WebGPU refuses is reported when the executable is built, naming the op', async () => {
  const gpu = await testGpu();
  const g = new Graph();
  const s = g.storage('s', 300, 'activations', true);
  const a = g.view(s, 'a', [200], 0);
  const b = g.view(s, 'b', [200], 100); // overlaps a
  // A kernel refuses overlapping operands itself (binding.ts), naming them...
  copyInto(g, 'overlapping.copy', a, b);
  await Executable.create(gpu, g, 'test').then(
    () => assert.unreachable('overlapping operands must be refused'),
    (e: Error) => assert.match(e.message, /op "overlapping\.copy" could not be built: copy: "x" \(elements \[0, 200\)\) and "y" \(elements \[100, 300\)\) overlap/),
  );
  assert.is(gpu.arena.liveBytes, 0, 'nothing is left allocated');
  // ...and bindings that bypass it (two writable bindings over the same bytes) are caught when encoded.
  const raw = new Graph();
  const r = raw.storage('r', 300, 'activations', true);
  const [p, q] = [raw.view(r, 'p', [200], 0), raw.view(r, 'q', [200], 64)];
  raw.add({
    name: 'overlapping.raw', reads: [], writes: [p, q],
    build: async (c) => {
      const [pr, qr] = [c.ref(p), c.ref(q)];
      const program = await c.gpu.compile({
        name: 'test.overlap', key: '', workgroupSize: [1], uniforms: [], body: '', main: 'p[0] = q[0];',
        bindings: [{ name: 'p', access: 'read_write' }, { name: 'q', access: 'read_write' }],
      });
      return [c.gpu.launch(program, {
        p: { buffer: pr.buffer.buffer, offset: pr.offset * 4, size: 800 }, q: { buffer: qr.buffer.buffer, offset: qr.offset * 4, size: 800 },
      }, {}, 1)];
    },
  });
  await Executable.create(gpu, raw, 'test').then(
    () => assert.unreachable('overlapping bindings must be refused'),
    (e: Error) => assert.match(e.message, /op "overlapping\.raw" cannot be recorded/),
  );
  assert.is(gpu.arena.liveBytes, 0, 'nothing is left allocated');
});

test('a fused non-BC layer writes its conv output straight into the block buffer, also where channel rows are not 256-byte multiples', () => {
  // 10×10 at batch 3: a channel row is 1,200 bytes, so the block prefix a layer reads and the channels it writes share a
  // 256-byte block; the binding rule binds them once (src/kernels/binding.ts), so no temporary and copy are needed.
  const config = denseNetConfig({ name: 'non-bc', depth: 10, growthRate: 4, initialFeatures: 6, bottleneck: false, inputShape: [3, 10, 10], classes: 5 });
  const { plan } = planDenseNetMemory(config, { batch: 3, strategy: 'fused', training: true });
  const temporaries = [...plan.lifetimes.keys()].map((s) => s.name).filter((n) => /denselayer\d+\.conv1\.out$/.test(n));
  assert.equal(temporaries, [], 'no per-layer conv output outside the block buffer');
});

/**
 * The training graph of a preset (batch 2), with stand-in parameter buffers (only its ops are looked
 * at), and how many times each forward op's backward rule ran while autograd built it.
 */
function trainingGraph(name: string, strategy: MemoryStrategy): { graph: Graph; backwardRuns: Map<Op, number> } {
  const arch = describeDenseNet(preset(name));
  const { offsets, trainableElements, runningElements } = parameterOffsets(arch);
  const standIn = (label: string, elements: number) => ({
    buffer: { buffer: undefined as unknown as GPUBuffer, bytes: elements * 4, label, category: 'parameters' as const }, offset: 0, shape: [elements],
  });
  const layout = { trainable: standIn('parameters', trainableElements), running: standIn('running', runningElements), offsets };
  const backwardRuns = new Map<Op, number>();
  const add = Graph.prototype.add;
  Graph.prototype.add = function (this: Graph, op: Parameters<typeof add>[0]) {
    const added = add.call(this, op);
    const rule = added.backward;
    if (rule) added.backward = (g) => { backwardRuns.set(added, (backwardRuns.get(added) ?? 0) + 1); rule.call(added, g); };
    return added;
  };
  try {
    return { graph: buildDenseNetGraph(arch, layout, { batch: 2, strategy, training: true }).graph, backwardRuns };
  } finally {
    Graph.prototype.add = add;
  }
}

test('backward has a bounded number of ops per forward op (one reverse walk, no per-path re-walk)', () => {
  for (const strategy of MEMORY_STRATEGIES) {
    const ratios = ['densenet-bc-100-12', 'densenet-bc-250-24'].map((name) => {
      const { graph, backwardRuns } = trainingGraph(name, strategy);
      const count = (phase: string) => graph.ops.filter((op) => op.phase === phase).length;
      const [forward, backward] = [count('forward'), count('backward')];
      // One reverse walk: every forward op's backward rule runs at most once (a per-path walk runs
      // an early layer's once per path through the later layers that read it).
      const most = Math.max(...backwardRuns.values());
      assert.is(most, 1, `${strategy} ${name}: a backward rule ran ${most} times (${[...backwardRuns].filter(([, n]) => n > 1).map(([op]) => op.name).slice(0, 3).join(', ')})`);
      assert.ok(backwardRuns.size >= 100, `${strategy} ${name}: only ${backwardRuns.size} of ${forward} forward ops ran a backward rule`);
      // Each rule emits a few ops: 0.75–1.0 per forward op here (recompute re-runs BN in backward).
      assert.ok(backward <= 1.25 * forward, `${strategy} ${name}: ${backward} backward ops for ${forward} forward ops`);
      assert.is(count('update'), 1, `${strategy} ${name}: one optimizer op`);
      return backward / forward;
    });
    // 250 layers have 2.5× the forward ops of 100: the backward ops per forward op do not grow with depth.
    assert.ok(Math.abs(ratios[1] - ratios[0]) < 0.01, `${strategy}: backward ops per forward op ${ratios.map((r) => r.toFixed(3)).join(' at BC-100, ')} at BC-250`);
  }
});

test('planned memory orders the strategies naive > shared > recompute > fused, and fused is ≤ 1/3 of naive at BC-100-12, batch 64', () => {
  const bytes = MEMORY_STRATEGIES.map((strategy) => planDenseNetMemory(preset('densenet-bc-100-12'), { batch: 64, strategy, training: true }).totalBytes);
  const [naive, shared, recompute, fused] = bytes;
  assert.ok(naive > shared && shared > recompute && recompute > fused, `bytes ${bytes.join(' > ')}`);
  assert.ok(fused * 3 <= naive, `fused ${fused} vs naive ${naive}`);
});

test('an inference plan holds no gradients and no optimizer state', () => {
  const plan = planDenseNetMemory(preset('densenet-bc-tiny'), { batch: 4, strategy: 'fused', training: false });
  assert.is(plan.byCategory.gradients, 0);
  assert.is(plan.byCategory.optimizer, 0);
});

test.run();
