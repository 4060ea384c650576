// vec4 loads in the workgroup-tiled conv GEMM: taken exactly where aligned (forward weights with K
// and their offset multiples of 4; the plain GEMM's source with Q and its offset multiples of 4,
// bound alone), and then matching the float64 reference at awkward sizes (odd channel counts,
// 1×1 planes, batch 1 and 3, the fused BN→ReLU input, every tile's staging shape); misaligned
// operands or a source sharing the output's binding fall back to scalar loads and match too.
// The output is poisoned (NaN) before every run and its neighbours checked.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Launch } from '../src/gpu/program.js';
import {
  affineReluReference, conv2dBackwardInput, conv2dBackwardInputReference, conv2dForward, conv2dReference, WORKGROUP_TILES, type WorkgroupTile,
} from '../src/kernels/conv2d.js';
import { tensor } from '../src/kernels/tensor.js';
import { CONV_TOLERANCE, convShapes, elementCount, tileName, type ConvCase } from './conv2d_cases.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('conv2d_workgroup vec4');
test.after(closeTestGpu);

interface Vec4Case extends ConvCase {
  direction: 'forward' | 'backwardInput';
  /** Element offsets of the source (x or dy) and the weights in their buffers. */
  srcAt: number; wAt: number;
  transform?: boolean;
  /** The source and the output in one buffer, adjacent (a dense block's layer): they share a binding. */
  shared?: boolean;
  tiles: (WorkgroupTile | undefined)[];
  expect: { vec4A: boolean; vec4B: boolean };
}

const CASES: Vec4Case[] = [
  { name: 'forward 3×3 pad 1, 5 ← 12, N 3, 7×7 (K = 108)', direction: 'forward', Cin: 12, Cout: 5, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 },
    srcAt: 1, wAt: 4, transform: true, tiles: [WORKGROUP_TILES.tiny, undefined], expect: { vec4A: true, vec4B: false } },
  { name: 'forward 1×1, 7 ← 13, N 3, 4×7 (Q = 84)', direction: 'forward', Cin: 13, Cout: 7, N: 3, H: 4, W: 7, KH: 1, KW: 1, params: {},
    srcAt: 8, wAt: 0, tiles: [WORKGROUP_TILES.tiny, undefined], expect: { vec4A: false, vec4B: true } },
  { name: 'forward 1×1, 40 ← 8, N 1, 2×2, BN→ReLU input (square tile)', direction: 'forward', Cin: 8, Cout: 40, N: 1, H: 2, W: 2, KH: 1, KW: 1, params: {},
    srcAt: 4, wAt: 8, transform: true, tiles: [undefined, WORKGROUP_TILES.tall], expect: { vec4A: true, vec4B: true } },
  { name: 'forward 1×1 planes, 3 ← 5, N 4, 1×1', direction: 'forward', Cin: 5, Cout: 3, N: 4, H: 1, W: 1, KH: 1, KW: 1, params: {},
    srcAt: 0, wAt: 0, tiles: [WORKGROUP_TILES.tiny], expect: { vec4A: false, vec4B: true } },
  { name: 'backward-input 1×1, 7 ← 12, N 3, 4×7', direction: 'backwardInput', Cin: 7, Cout: 12, N: 3, H: 4, W: 7, KH: 1, KW: 1, params: {},
    srcAt: 4, wAt: 0, tiles: [WORKGROUP_TILES.tiny, undefined], expect: { vec4A: false, vec4B: true } },
  // Fallbacks: the same shapes misaligned, and a source sharing the output's binding.
  { name: 'forward 3×3, weights at an odd offset', direction: 'forward', Cin: 12, Cout: 5, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 },
    srcAt: 0, wAt: 3, tiles: [WORKGROUP_TILES.tiny], expect: { vec4A: false, vec4B: false } },
  { name: 'forward 1×1, source at an odd offset', direction: 'forward', Cin: 8, Cout: 7, N: 3, H: 4, W: 7, KH: 1, KW: 1, params: {},
    srcAt: 2, wAt: 1, tiles: [WORKGROUP_TILES.tiny], expect: { vec4A: false, vec4B: false } },
  { name: 'forward 1×1, source and output adjacent in one buffer', direction: 'forward', Cin: 13, Cout: 7, N: 3, H: 4, W: 7, KH: 1, KW: 1, params: {},
    srcAt: 0, wAt: 0, shared: true, tiles: [WORKGROUP_TILES.tiny], expect: { vec4A: false, vec4B: false } },
];

const flags = (l: Launch) => {
  const key = l.program.spec.key;
  const types = Object.fromEntries(l.program.spec.bindings.map((b) => [b.name, b.type ?? 'f32']));
  return { vec4A: key.includes('"vec4A":true'), vec4B: key.includes('"vec4B":true'), types };
};

test('vec4 loads are taken exactly where aligned, and every case matches the reference with the output poisoned', async () => {
  const gpu = await testGpu();
  for (const [i, c] of CASES.entries()) {
    const s = convShapes(c);
    const forward = c.direction === 'forward';
    const srcShape = forward ? s.x : s.y;
    const outShape = forward ? s.y : s.x;
    const src = randomArray(elementCount(srcShape), 600 + i);
    const w = randomArray(elementCount(s.w), 700 + i);
    const scale = randomArray(c.Cin, 800 + i, 1.5);
    const shift = randomArray(c.Cin, 900 + i, 0.5).map((v) => v + 0.25);
    const xUsed = c.transform ? affineReluReference(src, s.x, scale, shift) : src;
    const want = forward ? conv2dReference(xUsed, s.x, w, s.w, c.params) : conv2dBackwardInputReference(src, w, s.w, s.x, c.params);
    const nOut = elementCount(outShape);
    // The output follows the source directly when shared, else it has a buffer of its own at element 2.
    const outAt = c.shared ? c.srcAt + src.length : 2;
    const srcData = new Float32Array(c.srcAt + src.length + (c.shared ? nOut : 0) + 5).fill(NaN);
    srcData.set(src, c.srcAt);
    const srcBuf = gpu.upload('src', forward ? 'activations' : 'gradients', srcData);
    const wData = new Float32Array(c.wAt + w.length + 3).fill(NaN);
    wData.set(w, c.wAt);
    const wBuf = gpu.upload('w', 'parameters', wData);
    const affine = gpu.upload('affine', 'parameters', Float32Array.from([...scale, ...shift]));
    const outBuf = c.shared ? srcBuf : gpu.upload('out', 'activations', new Float32Array(outAt + nOut + 6).fill(NaN));
    for (const workgroupTile of c.tiles) {
      const what = `${c.name}, tile ${tileName(workgroupTile)}`;
      gpu.write(outBuf, new Float32Array(nOut).fill(NaN), outAt);
      const common = { w: tensor(wBuf, s.w, c.wAt), variant: 'workgroup' as const, workgroupTile, ...c.params };
      const launches = forward
        ? await conv2dForward(gpu, {
          ...common, x: tensor(srcBuf, s.x, c.srcAt), y: tensor(outBuf, s.y, outAt),
          inputTransform: c.transform ? { scale: tensor(affine, [c.Cin]), shift: tensor(affine, [c.Cin], c.Cin) } : undefined,
        })
        : await conv2dBackwardInput(gpu, { ...common, dy: tensor(srcBuf, s.y, c.srcAt), dx: tensor(outBuf, s.x, outAt) });
      const f = flags(launches[0]);
      assert.equal({ vec4A: f.vec4A, vec4B: f.vec4B }, c.expect, `${what}: vec4 loads taken`);
      assert.is(f.types.wt, c.expect.vec4A ? 'vec4<f32>' : 'f32', `${what}: weights binding type`);
      await gpu.run(launches);
      launches.forEach((l) => l.destroy());
      const all = await gpu.read(outBuf);
      assertClose(all.slice(outAt, outAt + nOut), want, CONV_TOLERANCE, what);
      if (!c.shared) assert.ok([...all.slice(0, outAt), ...all.slice(outAt + nOut)].every(Number.isNaN), `${what}: nothing outside the output was written`);
    }
    for (const b of new Set([srcBuf, wBuf, affine, outBuf])) gpu.arena.free(b);
  }
});

test.run();
