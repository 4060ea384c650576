// Where the workgroup-tiled conv GEMM (conv2d_workgroup_wgsl.ts) may load vec4s: the weights in
// forward (a weight row is contiguous in k = c·KH·KW + tap) when K and the weights' offset are
// multiples of 4, and the source in a plain GEMM (1×1, stride 1, unpadded: B is src [C × Q]) when
// Q and the source's offset are; each only where the tile's slice splits into whole vec4 rows and
// the operand has a binding of its own (not shared with the output). The operand's binding is
// then declared array<vec4<f32>>: the same bytes, since offset and size are multiples of 16 bytes.
// Everywhere else the scalar loads stay.

import type { BindingSpec } from '../gpu/program.js';
import type { BoundOperands } from './binding.js';
import { workgroupThreads, type WorkgroupTile } from './conv2d_workgroup_wgsl.js';

/** Whether a slice of `rows` × `cols` floats (cols along memory) stages as vec4s with T threads. */
function stagesAsVec4(rows: number, cols: number, T: number): boolean {
  if (cols % 4 !== 0) return false;
  const count = (rows * cols) / 4;
  // Fewer vec4s than threads: the first threads load one each; more: every thread loads whole rows.
  return count < T || (count % T === 0 && T % (cols / 4) === 0);
}

/** True where `name` is bound alone (no other operand is read or written through its array). */
function boundAlone(bound: BoundOperands, name: string): boolean {
  return bound.names[name] === name && Object.values(bound.names).filter((n) => n === name).length === 1;
}

export interface Vec4Choice { vec4A: boolean; vec4B: boolean; bound: BoundOperands }

/**
 * The vec4 loads this GEMM can use and the binding with those operands retyped. `K` = C·KH·KW,
 * `Q` the output pixels, `mStride` the weights' row stride, `srcPlane` a source channel's size.
 */
export function chooseVec4(bound: BoundOperands, tile: WorkgroupTile, s: {
  forward: boolean; plain: boolean; K: number; Q: number; mStride: number; srcPlane: number;
}): Vec4Choice {
  const T = workgroupThreads(tile);
  const o = bound.offsets;
  const vec4A = s.forward && s.K % 4 === 0 && s.mStride % 4 === 0 && o.wtOffset % 4 === 0 && boundAlone(bound, 'wt') && stagesAsVec4(tile.m, tile.k, T);
  const vec4B = s.plain && s.Q % 4 === 0 && s.srcPlane % 4 === 0 && o.srcOffset % 4 === 0 && boundAlone(bound, 'src') && stagesAsVec4(tile.k, tile.n, T);
  if (!vec4A && !vec4B) return { vec4A, vec4B, bound };
  const retyped = new Set([...(vec4A ? ['wt'] : []), ...(vec4B ? ['src'] : [])]);
  const bindings: BindingSpec[] = bound.bindings.map((b) => (retyped.has(b.name) ? { ...b, type: 'vec4<f32>' } : b));
  return {
    vec4A, vec4B,
    bound: { ...bound, bindings, program: (spec) => ({ ...bound.program(spec), bindings }) },
  };
}
