// The row-parallel (GPU-class) softmax cross-entropy against the float64 reference: batch 1 and 3
// and more rows than one workgroup has lanes, 1 class, odd class counts, more classes than lanes,
// tied maxima (the first wins), a bad label; every output and the workspace poisoned with NaN
// before each run; the barrier-tree and (where the adapter has them) subgroup reductions.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Gpu } from '../src/gpu/device.js';
import { softmaxCrossEntropy, softmaxCrossEntropyReference, softmaxRowsWorkspaceElements } from '../src/kernels/softmax_cross_entropy.js';
import { ShapeError, tensor, type TensorRef } from '../src/kernels/tensor.js';
import { assertClose, closeTestGpu, randomArray, seededRandom, testGpu } from './helpers.js';

const test = suite('softmaxCrossEntropy row-parallel');
test.after(closeTestGpu);

// f32 exp/log against float64 (the default variant's bounds); the loss sums N row losses.
const lossTol = { atol: 1e-5, rtol: 1e-5 };
const gradTol = { atol: 1e-6, rtol: 1e-5 };

/** Logits, some rows with tied maxima (values on a coarse grid), labels hitting the argmax about half the time. */
function caseData(n: number, k: number, seed: number): { logits: Float32Array; labels: Uint32Array } {
  const logits = randomArray(n * k, seed, 4);
  for (let s = 0; s < n; s += 2) for (let j = 0; j < k; j++) logits[s * k + j] = Math.round(logits[s * k + j]);
  const rng = seededRandom(seed + 1);
  const labels = Uint32Array.from({ length: n }, (_, s) => {
    if (rng() < 0.5) return Math.floor(rng() * k);
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[s * k + j] > logits[s * k + best]) best = j;
    return best;
  });
  return { logits, labels };
}

/** Every operand in one NaN-filled buffer at odd offsets (labels in a u32 buffer); returns what the kernel wrote. */
async function run(gpu: Gpu, logits: Float32Array, labels: Uint32Array, k: number, subgroups: boolean):
  Promise<{ loss: number; dlogits: Float32Array; correct: number }> {
  const n = labels.length;
  const at = { logits: 3, dlogits: 3 + n * k + 5, loss: 0, correct: 0, workspace: 0 };
  at.loss = at.dlogits + n * k + 1;
  at.correct = at.loss + 2;
  at.workspace = at.correct + 3;
  const data = new Float32Array(at.workspace + softmaxRowsWorkspaceElements(n) + 7).fill(NaN);
  data.set(logits, at.logits);
  const buf = gpu.upload('packed', 'activations', data);
  const labelBuf = gpu.upload('labels', 'io', Uint32Array.from([9, ...labels]));
  const ref = (offset: number, shape: number[]): TensorRef => tensor(buf, shape, offset);
  try {
    const launches = await softmaxCrossEntropy(gpu, {
      logits: ref(at.logits, [n, k]), labels: tensor(labelBuf, [n], 1), loss: ref(at.loss, [1]), dlogits: ref(at.dlogits, [n, k]),
      correct: ref(at.correct, [1]), variant: 'row-parallel', workspace: ref(at.workspace, [softmaxRowsWorkspaceElements(n)]), subgroups,
    });
    assert.is(launches.length, 2);
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const got = await gpu.read(buf);
    // Nothing between the operands was written (the gaps are still NaN).
    const inside = new Uint8Array(got.length);
    inside.fill(1, at.logits, at.logits + n * k);
    inside.fill(1, at.dlogits, at.dlogits + n * k);
    inside.fill(1, at.loss, at.loss + 1);
    inside.fill(1, at.correct, at.correct + 1);
    inside.fill(1, at.workspace, at.workspace + softmaxRowsWorkspaceElements(n));
    const stray = got.findIndex((v, i) => !inside[i] && !Number.isNaN(v));
    assert.ok(stray < 0, `element ${stray} outside the operands was written`);
    return { loss: got[at.loss], dlogits: got.slice(at.dlogits, at.dlogits + n * k), correct: got[at.correct] };
  } finally {
    gpu.arena.free(buf);
    gpu.arena.free(labelBuf);
  }
}

async function reductions(): Promise<boolean[]> {
  const gpu = await testGpu();
  return gpu.device.features.has('subgroups') ? [false, true] : [false];
}

test('loss, dlogits and correct match the reference (N 1, 3, 150; K 1, 7, 10, 200), with tree and subgroup reductions', async () => {
  const gpu = await testGpu();
  const modes = await reductions();
  if (modes.length === 1) console.log('  (subgroup path skipped: this adapter has no subgroups feature)');
  for (const subgroups of modes) {
    for (const [i, [n, k]] of [[1, 1], [1, 10], [3, 7], [3, 200], [150, 10]].entries()) {
      const { logits, labels } = caseData(n, k, 10 + i);
      const want = softmaxCrossEntropyReference(logits, labels, n, k);
      const got = await run(gpu, logits, labels, k, subgroups);
      const what = `N=${n} K=${k} subgroups=${subgroups}`;
      assertClose([got.loss], [want.loss], lossTol, `${what} loss`);
      assertClose(got.dlogits, want.dlogits, gradTol, `${what} dlogits`);
      assert.is(got.correct, want.correct, `${what} correct (first maximum wins ties)`);
    }
  }
});

test('a label ≥ K gives a NaN loss, a zero gradient row, and is not counted', async () => {
  const gpu = await testGpu();
  for (const subgroups of await reductions()) {
    const [n, k] = [3, 5];
    const { logits } = caseData(n, k, 50);
    const labels = Uint32Array.from([1, 5, 3]);
    const want = softmaxCrossEntropyReference(logits, labels, n, k);
    const got = await run(gpu, logits, labels, k, subgroups);
    assert.ok(Number.isNaN(got.loss), `loss is NaN, got ${got.loss}`);
    assertClose(got.dlogits, want.dlogits, gradTol, 'dlogits with a bad label');
    assert.ok(got.dlogits.subarray(k, 2 * k).every((v) => v === 0), 'the bad row is zero');
    assert.is(got.correct, want.correct);
  }
});

test('the row-parallel variant refuses a missing, small or overlapping workspace by name, before compiling', async () => {
  const gpu = await testGpu();
  const buf = gpu.zeros('b', 'activations', 256);
  const labelBuf = gpu.zeros('labels', 'io', 4);
  const base = { logits: tensor(buf, [4, 3]), labels: tensor(labelBuf, [4]), loss: tensor(buf, [1], 20), dlogits: tensor(buf, [4, 3], 30), variant: 'row-parallel' as const };
  const before = gpu.pipelines.pipelinesCreated;
  const refuses = (p: Promise<unknown>, message: string | RegExp) => p.then(
    () => assert.unreachable(`should throw: ${message}`),
    (e: Error) => { assert.ok(e instanceof ShapeError, e.message); assert.match(e.message, message); },
  );
  await refuses(softmaxCrossEntropy(gpu, base), 'softmaxCrossEntropy: the row-parallel variant needs a workspace of 8 elements');
  await refuses(softmaxCrossEntropy(gpu, { ...base, workspace: tensor(buf, [7], 100) }), '"workspace" has shape [7], expected at least [8]');
  await refuses(softmaxCrossEntropy(gpu, { ...base, workspace: tensor(buf, [8], 35) }), /"dlogits" .* and "workspace" .* overlap/);
  await refuses(softmaxCrossEntropy(gpu, { ...base, variant: 'fast' as 'row-parallel' }), 'variant "fast" is not one of single-workgroup, row-parallel');
  assert.is(gpu.pipelines.pipelinesCreated, before, 'nothing was compiled');
  for (const b of [buf, labelBuf] as ArenaBuffer[]) gpu.arena.free(b);
});

test.run();
