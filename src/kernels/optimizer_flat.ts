// Flat elementwise ranges shared by the optimizers and dropout: operands of equal length, and the
// split of a range into launches that each fit one storage binding (a model's packed parameters can
// exceed maxStorageBufferBindingSize). Each chunk's operands are bound by the one binding rule
// (binding.ts): operands may share a buffer (packed parameters, gradients and state; two channel
// slices of a dense-block buffer) as long as a written one overlaps no other. An op that runs in
// place binds the shared range once instead.

import type { Gpu } from '../gpu/device.js';
import type { Launch, ProgramSpec } from '../gpu/program.js';
import { bindOperands, offsetUniforms, refuseOverlaps, uniformsU32, type BoundOperands, type Operand } from './binding.js';
import { fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

export interface FlatChunk {
  /** Index of the chunk's first element within the operands. */
  start: number;
  count: number;
  bound: BoundOperands;
}

/** Every operand has as many elements as `reference`; names the op, the operand and both shapes. */
export function expectSameLength(op: string, refs: Record<string, TensorRef>, reference: string): number {
  const n = sizeOf(refs[reference].shape);
  for (const [name, ref] of Object.entries(refs)) {
    if (sizeOf(ref.shape) !== n) {
      throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)} (${sizeOf(ref.shape)} elements), ` +
        `expected ${n} elements like "${reference}" ${fmt(refs[reference].shape)}`);
    }
  }
  return n;
}

/**
 * Splits `count` elements of every operand into chunks whose bindings each fit one storage
 * binding (`chunkElements` overrides the size, for tests), binding each chunk's operands; refuses
 * a written operand overlapping another one as a whole (a chunk alone could miss it). An empty
 * range gives no chunks (so the op returns no launches): there is nothing to bind.
 */
export function flatChunks(limits: GPUSupportedLimits, op: string, operands: Record<string, Operand>, count: number,
  chunkElements?: number): FlatChunk[] {
  refuseOverlaps(op, operands);
  const fit = Math.floor((limits.maxStorageBufferBindingSize - limits.minStorageBufferOffsetAlignment) / 4 / 256) * 256;
  const per = chunkElements ?? fit;
  if (!Number.isInteger(per) || per <= 0 || per > fit) {
    throw new RangeError(`${op}: chunkElements must be an integer in [1, ${fit}], got ${chunkElements}`);
  }
  const chunks: FlatChunk[] = [];
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const parts = Object.fromEntries(Object.entries(operands).map(([name, o]) =>
      [name, { ...o, ref: { buffer: o.ref.buffer, offset: o.ref.offset + start, shape: [n] } }]));
    chunks.push({ start, count: n, bound: bindOperands(limits, op, parts) });
  }
  return chunks;
}

/**
 * One launch per chunk (flatChunks) of an elementwise program over `operands`: the program gets
 * the uniforms `count` and `${operand}Offset` besides its own, and one invocation per element
 * (`index` in WGSL). Every chunk is bound before anything compiles, so a bad call records nothing.
 */
export async function flatLaunches(gpu: Gpu, op: string, operands: Record<string, Operand>, count: number, o: {
  chunkElements?: number; workgroupSize: number; program: Omit<ProgramSpec, 'bindings' | 'workgroupSize'>;
  uniforms: (chunk: FlatChunk) => Record<string, number>;
}): Promise<Launch[]> {
  const chunks = flatChunks(gpu.limits, op, operands, count, o.chunkElements);
  const uniforms = [...uniformsU32('count'), ...offsetUniforms(Object.keys(operands)), ...o.program.uniforms];
  return Promise.all(chunks.map(async (c) => {
    const program = await gpu.compile(c.bound.program({ ...o.program, workgroupSize: [o.workgroupSize], uniforms }));
    return gpu.launch(program, c.bound.buffers, { count: c.count, ...c.bound.offsets, ...o.uniforms(c) }, Math.ceil(c.count / o.workgroupSize));
  }));
}

/** Checks a number is finite and in a range, with an error naming the op, the parameter and the value. */
export function expectInRange(op: string, name: string, value: number, lo: number, hi: number,
  { loOpen = false, hiOpen = false } = {}): void {
  const ok = Number.isFinite(value) && (loOpen ? value > lo : value >= lo) && (hiOpen ? value < hi : value <= hi);
  if (!ok) {
    const range = `${loOpen ? '(' : '['}${lo}, ${hi === Infinity ? '∞' : hi}${hiOpen || hi === Infinity ? ')' : ']'}`;
    throw new RangeError(`${op}: ${name} must be a finite number in ${range}, got ${value}`);
  }
}
