// Flat elementwise ranges shared by the optimizers and dropout: operands of equal length, checks
// that operands sharing a GPU buffer do not overlap, and the split of a range into launches that
// each fit one storage binding (a model's packed parameters can exceed maxStorageBufferBindingSize).
//
// Aliasing: every storage binding is writable and bound as the 256-byte-aligned range around its
// tensor (program.ts, tensor.ts), and WebGPU refuses overlapping writable bindings in a dispatch.
// Operands may therefore share a buffer (packed parameters, gradients and state; two channel slices
// of a dense-block buffer) when even their aligned ranges are disjoint; both checks run here,
// before anything is recorded. An op that runs in place binds the shared range once instead.

import { bindTensor, fmt, ShapeError, sizeOf, type BoundTensor, type TensorRef } from './tensor.js';

export interface FlatChunk {
  /** Index of the chunk's first element within the operands. */
  start: number;
  count: number;
  bound: Record<string, BoundTensor>;
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

/** Refuses operands that share a GPU buffer with overlapping element ranges. */
export function expectDisjoint(op: string, refs: Record<string, TensorRef>): void {
  const entries = Object.entries(refs);
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [na, a] = entries[i];
      const [nb, b] = entries[j];
      if (a.buffer.buffer !== b.buffer.buffer) continue;
      const sa = sizeOf(a.shape);
      const sb = sizeOf(b.shape);
      if (sa === 0 || sb === 0) continue;
      if (a.offset < b.offset + sb && b.offset < a.offset + sa) {
        const identical = a.offset === b.offset && sa === sb;
        throw new ShapeError(`${op}: "${na}" (elements [${a.offset}, ${a.offset + sa})) and "${nb}" ` +
          `(elements [${b.offset}, ${b.offset + sb})) overlap in buffer "${a.buffer.label}"` +
          (identical ? '; this op cannot run in place on them' : '; give them disjoint ranges'));
      }
    }
  }
}

/**
 * Splits `count` elements of every operand into chunks whose bindings each fit one storage
 * binding (`chunkElements` overrides the size, for tests), and refuses operands whose aligned
 * bindings would overlap. An empty range gives no chunks (so the op returns no launches): there
 * is nothing to bind, and tensor.ts's bindTensor would give an empty tensor at a buffer's end a
 * zero-sized binding, which WebGPU refuses.
 */
export function flatChunks(limits: GPUSupportedLimits, op: string, refs: Record<string, TensorRef>, count: number,
  chunkElements?: number): FlatChunk[] {
  const fit = Math.floor((limits.maxStorageBufferBindingSize - limits.minStorageBufferOffsetAlignment) / 4 / 256) * 256;
  const per = chunkElements ?? fit;
  if (!Number.isInteger(per) || per <= 0 || per > fit) {
    throw new RangeError(`${op}: chunkElements must be an integer in [1, ${fit}], got ${chunkElements}`);
  }
  const chunks: FlatChunk[] = [];
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const bound: Record<string, BoundTensor> = {};
    for (const [name, ref] of Object.entries(refs)) {
      bound[name] = bindTensor(limits, op, name, { buffer: ref.buffer, offset: ref.offset + start, shape: [n] });
    }
    expectBindingsDisjoint(limits, op, refs, bound);
    chunks.push({ start, count: n, bound });
  }
  return chunks;
}

function expectBindingsDisjoint(limits: GPUSupportedLimits, op: string, refs: Record<string, TensorRef>, bound: Record<string, BoundTensor>): void {
  const names = Object.keys(bound);
  const align = limits.minStorageBufferOffsetAlignment;
  const range = (b: BoundTensor): [GPUBuffer, number, number] => {
    const r = b.binding;
    if ('category' in r) return [r.buffer, 0, r.bytes]; // a whole arena buffer
    if ('offset' in r) return [r.buffer, r.offset, r.offset + r.size];
    return [r, 0, r.size]; // a whole GPUBuffer
  };
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const [ba, a0, a1] = range(bound[names[i]]);
      const [bb, b0, b1] = range(bound[names[j]]);
      if (ba === bb && a0 < b1 && b0 < a1) {
        throw new ShapeError(`${op}: "${names[i]}" (element ${refs[names[i]].offset}) and "${names[j]}" (element ` +
          `${refs[names[j]].offset}) are disjoint but their ${align}-byte-aligned bindings overlap in buffer ` +
          `"${refs[names[i]].buffer.label}" (WebGPU refuses overlapping writable bindings); start each tensor at a multiple of ${align / 4} elements`);
      }
    }
  }
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
