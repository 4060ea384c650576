import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferArena, type BufferFactory } from '../src/gpu/arena.js';

/** A fake device: counts creations and destructions, so accounting is checked without a GPU. */
function fakeFactory() {
  const alive = new Set<object>();
  const factory: BufferFactory = {
    createBuffer(d: GPUBufferDescriptor) {
      const b = { size: d.size, destroy() { alive.delete(b); } };
      alive.add(b);
      return b as unknown as GPUBuffer;
    },
  };
  return { factory, alive };
}

const test = suite('arena');

test('live and peak bytes are exact over an allocate/free sequence, per category and label', () => {
  const { factory, alive } = fakeFactory();
  const arena = new BufferArena(factory);
  const w = arena.allocate('conv.w', 'parameters', 400);
  const a1 = arena.allocate('block1', 'activations', 1000);
  const a2 = arena.allocate('block2', 'activations', 3000);
  assert.is(arena.liveBytes, 4400);
  assert.is(arena.peakBytes, 4400);
  arena.free(a1);
  assert.is(arena.liveBytes, 3400);
  assert.is(arena.peakBytes, 4400);
  const g = arena.allocate('conv.w.grad', 'gradients', 400);
  const a3 = arena.allocate('block1', 'activations', 500);
  assert.is(arena.liveBytes, 4300);
  assert.is(arena.peakBytes, 4400);
  const a4 = arena.allocate('workspace', 'workspace', 2000);
  assert.is(arena.peakBytes, 6300);
  const r = arena.report();
  assert.equal(r.byCategory.activations, { liveBytes: 3500, peakBytes: 4000 });
  assert.equal(r.byCategory.parameters, { liveBytes: 400, peakBytes: 400 });
  assert.equal(r.byCategory.gradients, { liveBytes: 400, peakBytes: 400 });
  assert.equal(r.byCategory.workspace, { liveBytes: 2000, peakBytes: 2000 });
  assert.is(r.byLabel.get('block1'), 500);
  for (const b of [w, a2, g, a3, a4]) arena.free(b);
  assert.is(arena.liveBytes, 0);
  assert.is(arena.liveBuffers, 0);
  assert.is(alive.size, 0, 'every GPU buffer was destroyed');
  assert.is(arena.report().byLabel.size, 0);
});

test('sizes are rounded up to 4 bytes and accounted as allocated', () => {
  const { factory } = fakeFactory();
  const arena = new BufferArena(factory);
  const b = arena.allocate('odd', 'io', 5);
  assert.is(b.bytes, 8);
  assert.is(arena.liveBytes, 8);
});

test('resetPeak starts a new measurement from the live bytes', () => {
  const { factory } = fakeFactory();
  const arena = new BufferArena(factory);
  const keep = arena.allocate('params', 'parameters', 100);
  arena.free(arena.allocate('tmp', 'workspace', 900));
  assert.is(arena.peakBytes, 1000);
  arena.resetPeak();
  assert.is(arena.peakBytes, 100);
  assert.is(arena.report().byCategory.workspace.peakBytes, 0);
  arena.free(keep);
});

test('double free, zero size and oversize buffers are refused with the buffer named', () => {
  const { factory } = fakeFactory();
  const arena = new BufferArena(factory, 1024);
  const b = arena.allocate('x', 'activations', 16);
  arena.free(b);
  assert.throws(() => arena.free(b), /"x" was freed twice/);
  assert.throws(() => arena.allocate('empty', 'activations', 0), /"empty" needs a positive/);
  assert.throws(() => arena.allocate('huge', 'activations', 2048), /"huge" needs 2048 bytes .* at most 1024/);
  assert.is(arena.liveBytes, 0);
});

test('freeAll releases everything', () => {
  const { factory, alive } = fakeFactory();
  const arena = new BufferArena(factory);
  arena.allocate('a', 'activations', 64);
  arena.allocate('b', 'parameters', 64);
  arena.freeAll();
  assert.is(arena.liveBytes, 0);
  assert.is(alive.size, 0);
});

test.run();
