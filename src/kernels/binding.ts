// The one binding rule of every kernel (CONVENTIONS.md, "Bindings"): each operand is bound as the
// 256-byte-aligned range that holds it; operands of one GPU buffer whose ranges meet share ONE
// binding (the range covering them all), which the kernel reads and writes at their own offsets.
//
// Why: every storage binding is writable (preludeFor), and WebGPU refuses two writable bindings of
// one buffer whose ranges overlap, even when the tensors in them do not (a dense block's layer
// reads the block's prefix and writes the next channels, which need not start 256-byte aligned).
// Binding each operand tightly, instead of the whole buffer, keeps tensors far apart in a large
// planned buffer from ever needing one binding that spans both.

import type { BindingSpec, BufferLike, ProgramSpec } from '../gpu/program.js';
import { bindingLimitText, type CappedLimits } from '../gpu/profile.js';
import { expectShape, fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

export interface Operand {
  ref: TensorRef;
  /** Written by the kernel: must not overlap any other operand. */
  written?: boolean;
  type?: 'f32' | 'u32';
}

export interface BoundOperands {
  /** One binding per group of operands sharing a range, named after its first operand. */
  bindings: BindingSpec[];
  buffers: Record<string, BufferLike>;
  /** `${operand}Offset`: the operand's element offset inside its group's binding (pass as u32 uniforms). */
  offsets: Record<string, number>;
  /** The WGSL array each operand is read and written through (itself, or its group's first operand). */
  names: Record<string, string>;
  /** Which operands share a binding, e.g. `x>y`; part of the pipeline cache key. */
  key: string;
  /** Rewrites `name[` to `group[` in WGSL for operands read through another operand's binding. */
  wgsl(text: string): string;
  /** `spec` with these bindings, its WGSL rewritten by wgsl() and this grouping added to its key. */
  program(spec: Omit<ProgramSpec, 'bindings'>): ProgramSpec;
}

/**
 * Refuses a written operand whose elements overlap another operand's (in-place ops bind the one
 * range once instead), naming the op, both operands and their element ranges.
 */
export function refuseOverlaps(op: string, operands: Record<string, Operand>): void {
  const entries = Object.entries(operands);
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [na, a] = entries[i];
      const [nb, b] = entries[j];
      if (!(a.written || b.written) || a.ref.buffer.buffer !== b.ref.buffer.buffer) continue;
      const [sa, sb] = [sizeOf(a.ref.shape), sizeOf(b.ref.shape)];
      if (sa > 0 && sb > 0 && a.ref.offset < b.ref.offset + sb && b.ref.offset < a.ref.offset + sa) {
        const identical = a.ref.offset === b.ref.offset && sa === sb;
        throw new ShapeError(`${op}: "${na}" (elements [${a.ref.offset}, ${a.ref.offset + sa})) and "${nb}" ` +
          `(elements [${b.ref.offset}, ${b.ref.offset + sb})) overlap in buffer "${a.ref.buffer.label}"; ` +
          (identical ? 'this op cannot run in place on them' : 'give the output a range of its own'));
      }
    }
  }
}

interface Group { type: 'f32' | 'u32'; members: [string, TensorRef][]; start: number; end: number }

/** Groups operands by the rule above: one group per run of same-buffer, same-type ranges that meet. */
function groupOperands(limits: CappedLimits, operands: Record<string, Operand>): Group[] {
  const align = limits.minStorageBufferOffsetAlignment;
  const alignedStart = (r: TensorRef) => Math.floor((r.offset * 4) / align) * align;
  const byteEnd = (r: TensorRef) => (r.offset + Math.max(1, sizeOf(r.shape))) * 4;
  let groups: Group[] = Object.entries(operands).map(([name, o]) => ({ type: o.type ?? 'f32', members: [[name, o.ref]], start: alignedStart(o.ref), end: byteEnd(o.ref) }));
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
  return groups;
}

/**
 * The operands (by name) of every binding that bindOperands would find larger than
 * maxStorageBufferBindingSize; empty when all fit. Checks nothing else and binds nothing: chunked
 * kernels (kernels/chunks.ts) ask it how finely to split an op's operands.
 */
export function oversizedBindings(limits: CappedLimits, operands: Record<string, Operand>): string[][] {
  return groupOperands(limits, operands)
    .filter((g) => Math.min(g.end, g.members[0][1].buffer.bytes) - g.start > limits.maxStorageBufferBindingSize)
    .map((g) => g.members.map(([name]) => name));
}

/**
 * Binds `operands` (in binding order) by the rule above. Throws a ShapeError naming the op and the
 * operands when an operand lies outside its buffer, a written operand overlaps another one, or a
 * group's covering range exceeds maxStorageBufferBindingSize (the engine's: gpu.limits, after any
 * --max-binding cap).
 */
export function bindOperands(limits: CappedLimits, op: string, operands: Record<string, Operand>): BoundOperands {
  const entries = Object.entries(operands);
  for (const [name, o] of entries) expectShape(op, name, o.ref, o.ref.shape); // in its buffer
  refuseOverlaps(op, operands);
  const groups = groupOperands(limits, operands);
  const bindings: BindingSpec[] = [];
  const buffers: Record<string, BufferLike> = {};
  const offsets: Record<string, number> = {};
  const names: Record<string, string> = {};
  const ranges: { name: string; buffer: GPUBuffer; start: number; end: number }[] = [];
  const renames: [string, string][] = [];
  for (const g of groups) {
    const array = g.members[0][0];
    const buffer = g.members[0][1].buffer;
    const end = Math.min(g.end, buffer.bytes);
    const list = g.members.map(([n]) => `"${n}"`).join(', ');
    if (end - g.start > limits.maxStorageBufferBindingSize) {
      const { allows, fix } = bindingLimitText(limits);
      throw new ShapeError(`${op}: ${list} ${g.members.length > 1 ? 'need' : `${fmt(g.members[0][1].shape)} needs`} ${end - g.start} bytes of buffer ` +
        `"${buffer.label}" in one binding but ${allows}; ${fix}`);
    }
    for (const other of ranges) {
      if (other.buffer === buffer.buffer && g.start < other.end && other.start < end) {
        throw new ShapeError(`${op}: ${list} and "${other.name}" share buffer "${buffer.label}" with different element types ` +
          'and their 256-byte-aligned binding ranges overlap: place them further apart');
      }
    }
    ranges.push({ name: array, buffer: buffer.buffer, start: g.start, end });
    const written = g.members.some(([n]) => operands[n].written);
    bindings.push({ name: array, access: written ? 'read_write' : 'read', type: g.type });
    buffers[array] = { buffer: buffer.buffer, offset: g.start, size: end - g.start };
    for (const [name, ref] of g.members) {
      offsets[`${name}Offset`] = ref.offset - g.start / 4;
      names[name] = array;
      if (name !== array) renames.push([name, array]);
    }
  }
  const wgsl = (text: string) => renames.reduce((t, [n, a]) => t.replace(new RegExp(`\\b${n}\\[`, 'g'), `${a}[`), text);
  const key = renames.map(([n, a]) => `${n}>${a}`).join(',');
  return {
    bindings, buffers, offsets, names, key, wgsl,
    program: (spec) => ({ ...spec, key: `${spec.key}|bind=${key}`, body: wgsl(spec.body), main: wgsl(spec.main), bindings }),
  };
}

/** `${name}Offset` u32 uniforms, one per operand. */
export const offsetUniforms = (names: string[]) => names.map((n) => ({ name: `${n}Offset`, type: 'u32' as const }));
export const uniformsU32 = (...names: string[]) => names.map((name) => ({ name, type: 'u32' as const }));
