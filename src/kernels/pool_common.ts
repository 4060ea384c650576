// Helpers shared by the pooling, linear and softmax cross-entropy kernels (pool_*.ts, linear.ts,
// softmax_cross_entropy.ts): the rank-4 activation check and operand binding that lets operands
// share a GPU buffer. (Nothing here is pooling-specific; it could move next to bindTensor.)
//
// Why operands get grouped: every storage binding is writable (program.ts), and WebGPU refuses two
// writable bindings of one buffer whose ranges overlap. bindTensor binds from a 256-byte-aligned
// start, so two tensors packed into one buffer at unaligned offsets (channel slices of a small
// activation) would overlap even when the tensors do not. Operands of one element type in one GPU
// buffer are therefore bound ONCE, as the aligned range covering all of them, and the kernel
// reads/writes them all through that one WGSL array at their own offsets.

import type { BindingSpec, BufferLike } from '../gpu/program.js';
import { expectShape, fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

export type Shape4 = readonly [number, number, number, number];

export const ELEMENTWISE_WORKGROUP = 256;

/** Checks that `ref` is a rank-4 channel-major activation [C, N, H, W] inside its buffer; returns its dims. */
export function activationDims(op: string, name: string, ref: TensorRef): Shape4 {
  if (ref.shape.length !== 4) throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)}, expected a channel-major [C, N, H, W] activation`);
  expectShape(op, name, ref, [-1, -1, -1, -1]);
  return ref.shape as unknown as Shape4;
}

export interface Operand {
  ref: TensorRef;
  /** Written by the kernel: must not overlap any other operand. */
  written?: boolean;
  type?: 'f32' | 'u32';
}

export interface BoundOperands {
  /** One binding per (GPU buffer, element type) group, named after its first operand. */
  bindings: BindingSpec[];
  buffers: Record<string, BufferLike>;
  /** `${operand}Offset`: the operand's element offset inside its group's binding (pass as u32 uniforms). */
  offsets: Record<string, number>;
  /** Which operands share a binding, e.g. `x>y`; part of the pipeline cache key. */
  key: string;
  /** Rewrites `name[` to `group[` in WGSL for operands read through another operand's binding. */
  wgsl(body: string): string;
}

/**
 * Binds `operands` (in binding order), grouping those that share a GPU buffer and element type.
 * Throws a ShapeError naming the op and operands when a written operand overlaps another one, or
 * when a group's covering range exceeds maxStorageBufferBindingSize.
 */
export function bindOperands(limits: GPUSupportedLimits, op: string, operands: Record<string, Operand>): BoundOperands {
  const entries = Object.entries(operands);
  for (const [name, o] of entries) expectShape(op, name, o.ref, o.ref.shape); // in its buffer
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [na, a] = entries[i];
      const [nb, b] = entries[j];
      if (!(a.written || b.written) || a.ref.buffer.buffer !== b.ref.buffer.buffer) continue;
      const [sa, sb] = [sizeOf(a.ref.shape), sizeOf(b.ref.shape)];
      if (sa > 0 && sb > 0 && a.ref.offset < b.ref.offset + sb && b.ref.offset < a.ref.offset + sa) {
        throw new ShapeError(`${op}: "${na}" (elements [${a.ref.offset}, ${a.ref.offset + sa})) and "${nb}" ` +
          `(elements [${b.ref.offset}, ${b.ref.offset + sb})) overlap in buffer "${a.ref.buffer.label}"; ` +
          'this op cannot work in place: give the output a range of its own');
      }
    }
  }
  const align = limits.minStorageBufferOffsetAlignment;
  // Operands share one binding only when their 256-byte-aligned ranges meet (WebGPU refuses
  // overlapping writable bindings); others in the same buffer are bound apart, so that tensors far
  // apart in a large planned buffer never need one binding spanning both.
  const alignedStart = (r: TensorRef) => Math.floor((r.offset * 4) / align) * align;
  const byteEnd = (r: TensorRef) => (r.offset + Math.max(1, sizeOf(r.shape))) * 4;
  let groups: { type: 'f32' | 'u32'; members: [string, TensorRef][]; start: number; end: number }[] =
    entries.map(([name, o]) => ({ type: o.type ?? 'f32', members: [[name, o.ref]], start: alignedStart(o.ref), end: byteEnd(o.ref) }));
  for (let merged = true; merged;) {
    merged = false;
    outer: for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        const [a, b] = [groups[i], groups[j]];
        if (a.type === b.type && a.members[0][1].buffer.buffer === b.members[0][1].buffer.buffer && a.start < b.end && b.start < a.end) {
          groups[i] = { type: a.type, members: [...a.members, ...b.members], start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) };
          groups = groups.filter((_, k) => k !== j);
          merged = true;
          break outer;
        }
      }
    }
  }
  const bindings: BindingSpec[] = [];
  const buffers: Record<string, BufferLike> = {};
  const offsets: Record<string, number> = {};
  const ranges: { name: string; buffer: GPUBuffer; start: number; end: number }[] = [];
  const renames: [string, string][] = [];
  for (const g of groups) {
    const array = g.members[0][0];
    const buffer = g.members[0][1].buffer;
    const first = Math.min(...g.members.map(([, r]) => r.offset));
    const last = Math.max(...g.members.map(([, r]) => r.offset + Math.max(1, sizeOf(r.shape))));
    const start = Math.floor((first * 4) / align) * align;
    const end = Math.min(last * 4, buffer.bytes);
    const names = g.members.map(([n]) => `"${n}"`).join(', ');
    if (end - start > limits.maxStorageBufferBindingSize) {
      throw new ShapeError(`${op}: ${names} need ${end - start} bytes of buffer "${buffer.label}" in one binding but the adapter ` +
        `allows ${limits.maxStorageBufferBindingSize} (maxStorageBufferBindingSize); use a smaller batch`);
    }
    for (const other of ranges) {
      if (other.buffer === buffer.buffer && start < other.end && other.start < end) {
        throw new ShapeError(`${op}: ${names} and "${other.name}" share buffer "${buffer.label}" with different element types ` +
          'and their 256-byte-aligned binding ranges overlap: place them further apart');
      }
    }
    ranges.push({ name: array, buffer: buffer.buffer, start, end });
    const written = g.members.some(([n]) => operands[n].written);
    bindings.push({ name: array, access: written ? 'read_write' : 'read', type: g.type });
    buffers[array] = { buffer: buffer.buffer, offset: start, size: end - start };
    for (const [name, ref] of g.members) {
      offsets[`${name}Offset`] = ref.offset - start / 4;
      if (name !== array) renames.push([name, array]);
    }
  }
  return {
    bindings, buffers, offsets,
    key: renames.map(([n, a]) => `${n}>${a}`).join(','),
    wgsl: (body) => renames.reduce((text, [n, a]) => text.replace(new RegExp(`\\b${n}\\[`, 'g'), `${a}[`), body),
  };
}

export const offsetUniforms = (names: string[]) => names.map((n) => ({ name: `${n}Offset`, type: 'u32' as const }));
export const uniformsU32 = (...names: string[]) => names.map((name) => ({ name, type: 'u32' as const }));
