// Inverted dropout, y = x·mask/(1 − rate), with no stored mask: element i is kept when
// randomU32(seed, i) ≥ rate·2³² (random.ts), so backward recomputes the mask from the seed, and the
// CPU reference reproduces the GPU's mask bit for bit. i is the element's index within the tensor
// (not its offset in the buffer): the same seed gives the same mask wherever the tensor lives.
//
// The seed should change every step. Launches carry it as the u32 uniform `seed`; rewrite it with
//   for (const l of launches) l.setUniforms(queue, { seed });
// before submitting a step (forward and backward of one step must see the same seed). Give each
// dropout site its own seed (e.g. deriveSeed(stepSeed, site)); two sites with one seed draw one mask.
// A tensor larger than one storage binding is split over several launches, hence the arrays (an
// empty tensor gives none).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import type { Operand } from './binding.js';
import { flatLaunches } from './optimizer_flat.js';
import { checkSeed, randomU32, RANDOM_WGSL } from './random.js';
import { expectShape, ShapeError, sizeOf, type TensorRef } from './tensor.js';

const WORKGROUP = 256;

/** Refuses a rate outside [0, 1) (1 would drop everything and divide by zero). */
export function checkDropoutRate(op: string, rate: number): void {
  if (!(Number.isFinite(rate) && rate >= 0 && rate < 1)) {
    throw new RangeError(`${op}: rate must be a number in [0, 1), got ${rate}`);
  }
}

/** u32 threshold: an element is kept when its random u32 is ≥ this (rate 0 keeps everything). */
export function dropoutThreshold(rate: number): number {
  checkDropoutRate('dropout', rate);
  return Math.floor(rate * 2 ** 32);
}

/** 1 where element `elementOffset + i` of the tensor is kept, 0 where it is dropped. */
export function dropoutMaskReference(count: number, rate: number, seed: number, elementOffset = 0): Uint8Array {
  checkSeed('dropout', seed);
  const threshold = dropoutThreshold(rate);
  const mask = new Uint8Array(count);
  for (let i = 0; i < count; i++) mask[i] = randomU32(seed, elementOffset + i) >= threshold ? 1 : 0;
  return mask;
}

/**
 * y = x·mask/(1 − rate) in float64; `x` holds tensor elements [elementOffset, elementOffset + x.length).
 * Dropped elements are exactly 0, as on the GPU.
 */
export function dropoutReference(x: ArrayLike<number>, rate: number, seed: number, elementOffset = 0): Float64Array {
  const mask = dropoutMaskReference(x.length, rate, seed, elementOffset);
  return Float64Array.from(x, (v, i) => (mask[i] ? v / (1 - rate) : 0));
}

/** dx = dy·mask/(1 − rate): dropout is linear, so its backward is the same map applied to dy. */
export function dropoutBackwardReference(dy: ArrayLike<number>, rate: number, seed: number, elementOffset = 0): Float64Array {
  return dropoutReference(dy, rate, seed, elementOffset);
}

// In place (src is dst) only `dst` is bound: two bindings of one range would overlap. Operands are
// named as the caller knows them (x/y, dy/dx), so that errors name them.
function dropoutMain(src: string, dst: string, accumulate: boolean, inPlace: boolean): string {
  const read = inPlace ? `${dst}[u.${dst}Offset + i]` : `${src}[u.${src}Offset + i]`;
  return /* wgsl */ `
  let i = index;
  if (i >= u.count) { return; }
  let keep = randomU32(u.seed, u.indexBase + i) >= u.threshold;
  var v = select(0.0, ${read} * u.scale, keep);${accumulate ? `\n  v += ${dst}[u.${dst}Offset + i];` : ''}
  ${dst}[u.${dst}Offset + i] = v;`;
}

interface DropoutArgs { rate: number; seed: number; accumulate: boolean; chunkElements?: number }

async function dropoutLaunches(gpu: Gpu, op: string, srcName: string, dstName: string, src: TensorRef, dst: TensorRef,
  a: DropoutArgs): Promise<Launch[]> {
  checkDropoutRate(op, a.rate);
  checkSeed(op, a.seed);
  expectShape(op, dstName, dst, src.shape);
  const inPlace = sameRange(src, dst);
  if (inPlace && a.accumulate) {
    throw new ShapeError(`${op}: "${dstName}" is "${srcName}" itself, which cannot be accumulated into; use accumulate: false or another ${dstName}`);
  }
  const operands: Record<string, Operand> = inPlace ? { [dstName]: { ref: dst, written: true } } : { [srcName]: { ref: src }, [dstName]: { ref: dst, written: true } };
  const threshold = dropoutThreshold(a.rate);
  const scale = 1 / (1 - a.rate);
  return flatLaunches(gpu, op, operands, sizeOf(src.shape), {
    chunkElements: a.chunkElements, workgroupSize: WORKGROUP,
    program: {
      name: op, key: `acc=${a.accumulate},inPlace=${inPlace}`, body: RANDOM_WGSL, main: dropoutMain(srcName, dstName, a.accumulate, inPlace),
      uniforms: [{ name: 'indexBase', type: 'u32' }, { name: 'seed', type: 'u32' }, { name: 'threshold', type: 'u32' }, { name: 'scale', type: 'f32' }],
    },
    uniforms: (c) => ({ indexBase: c.start, seed: a.seed, threshold, scale }),
  });
}

/**
 * y = dropout(x). `y` may be `x` itself (in place) or another range of the same buffer.
 * Rewrite the uniform `seed` each step (see the file header). `chunkElements` is for tests.
 */
export function dropoutForward(gpu: Gpu, t: { x: TensorRef; y: TensorRef; rate: number; seed: number; chunkElements?: number }): Promise<Launch[]> {
  return dropoutLaunches(gpu, 'dropout.forward', 'x', 'y', t.x, t.y, { ...t, accumulate: false });
}

/**
 * dx = dy·mask/(1 − rate) (accumulate: dx += ...), the mask recomputed from `seed`, which must be
 * the forward's. `dx` may be `dy` itself unless accumulating.
 */
export function dropoutBackward(gpu: Gpu, t: { dy: TensorRef; dx: TensorRef; rate: number; seed: number; accumulate?: boolean; chunkElements?: number }): Promise<Launch[]> {
  return dropoutLaunches(gpu, 'dropout.backward', 'dy', 'dx', t.dy, t.dx, { ...t, accumulate: t.accumulate ?? false });
}

function sameRange(a: TensorRef, b: TensorRef): boolean {
  return a.buffer.buffer === b.buffer.buffer && a.offset === b.offset && sizeOf(a.shape) === sizeOf(b.shape);
}
