// The GPU-class variant of global average pooling's forward (issue 9; pool_global.ts checks shapes
// and calls here): `lanes` invocations reduce each (c, n) plane, a power of two up to the
// workgroup: a whole workgroup per large plane, several planes per workgroup for small ones (the
// 7×7 and 8×8 planes at the end of a DenseNet), each plane's lanes reading consecutive addresses.
// The backward (dx = dy / HW, one invocation per element) is already parallel and coalesced, so
// both classes share it.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import type { BoundOperands } from './binding.js';
import { segmentedSum, workgroupReduce } from './reduction_wgsl.js';
import { ShapeError } from './tensor.js';

/** Invocations per workgroup of the parallel variant. */
export const PARALLEL_POOL_WORKGROUP = 64;

export interface ParallelPoolOptions {
  /** Invocations per plane: a power of two up to PARALLEL_POOL_WORKGROUP (default parallelPoolLanes(H·W)). */
  lanesPerPlane?: number;
  /** Reduce with subgroup operations (default: where the device has the `subgroups` feature). */
  subgroups?: boolean;
}

/** Lanes per plane by default: about 4 values per lane, a power of two, at most one workgroup. */
export function parallelPoolLanes(hw: number): number {
  let lanes = 1;
  while (lanes < PARALLEL_POOL_WORKGROUP && lanes * 4 < hw) lanes *= 2;
  return lanes;
}

function main(lanes: number): string {
  const wg = PARALLEL_POOL_WORKGROUP;
  const reduce = lanes === 1 ? 's' : lanes === wg ? 'planeTotal(s, lid)' : 'planeSum(s, lid)';
  return /* wgsl */ `
  let lane = lid % ${lanes}u;
  let p = group * ${wg / lanes}u + lid / ${lanes}u;
  var s = 0.0;
  if (p < u.planes) {
    let b = u.xOffset + p * u.hw;
    for (var j = lane; j < u.hw; j += ${lanes}u) { s += x[b + j]; }
  }
  // Every lane reaches the reduction (uniform control flow); only each plane's first lane writes.
  let total = ${reduce};
  if (p < u.planes && lane == 0u) { y[u.yOffset + p] = total / f32(u.hw); }`;
}

function body(lanes: number, subgroups: boolean): string {
  if (lanes === 1) return '';
  return lanes === PARALLEL_POOL_WORKGROUP ? workgroupReduce('planeTotal', 'f32', 'add', subgroups) : segmentedSum('planeSum', lanes, subgroups);
}

/** The forward's launch for `planes` planes of `hw` values, bound by the caller (x, y). */
export async function parallelPoolForward(gpu: Gpu, op: string, b: BoundOperands, planes: number, hw: number, t: ParallelPoolOptions): Promise<Launch[]> {
  const wg = PARALLEL_POOL_WORKGROUP;
  const lanes = t.lanesPerPlane ?? parallelPoolLanes(hw);
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > wg || (lanes & (lanes - 1)) !== 0) {
    throw new ShapeError(`${op}: lanesPerPlane must be a power of two from 1 to ${wg}, got ${lanes}`);
  }
  const has = gpu.device.features.has('subgroups');
  if (t.subgroups && !has) throw new RangeError(`${op}: subgroups were asked for but the device has no 'subgroups' feature; leave the option out`);
  const subgroups = (t.subgroups ?? has) && lanes > 1;
  const program = await gpu.compile(b.program({
    name: `${op}.parallel`, key: `lanes=${lanes},subgroups=${subgroups}`, workgroupSize: [wg], enables: subgroups ? ['subgroups'] : [],
    body: body(lanes, subgroups), main: main(lanes),
    uniforms: [{ name: 'planes', type: 'u32' }, { name: 'hw', type: 'u32' }, { name: 'xOffset', type: 'u32' }, { name: 'yOffset', type: 'u32' }],
  }));
  return [gpu.launch(program, b.buffers, { planes, hw, ...b.offsets }, Math.ceil(planes / (wg / lanes)))];
}
