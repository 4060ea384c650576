// The GPU-class conv2d variant ('workgroup'): its tiles, their check, the default choice and the
// launch of forward and backward-input as an implicit GEMM through workgroup memory
// (conv2d_workgroup_wgsl.ts). conv2d.ts selects it with `variant: 'workgroup'`.

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { uniformsU32, type BoundOperands } from './binding.js';
import { isPlainGemm, type ConvGeometry } from './conv2d_tiles.js';
import {
  WORKGROUP_GEMM_UNIFORMS, workgroupBytes, workgroupGemmBody, workgroupGemmMain, workgroupThreads, type WorkgroupTile,
} from './conv2d_workgroup_wgsl.js';
import { chooseVec4 } from './conv2d_workgroup_vec4.js';
import { ShapeError } from './tensor.js';

export { workgroupThreads, type WorkgroupTile };

/**
 * Named workgroup tiles (M = output channels; input channels in backward-input), candidates for
 * an autotuner; none is measured on a GPU yet. `square`: the classic 64×64 tile, 256 threads of
 * 4×4 outputs. `tall`: 128 × 64, 256 threads of 8×4, for wide layers (DenseNet-121's 128-channel
 * 1×1 convs, backward-input into a block's prefix). `wide`: 32 × 64, 256 threads of 2×4.
 * `narrow`: 16 × 128, 128 threads of 2×8, for DenseNet's growth-rate convs (M = 12 or 32) where a
 * 64-row tile would compute mostly padding. `tiny`: 32 threads, small enough that the tests' small
 * shapes cross every tile edge. Each stages under 9 KiB of workgroup memory (lavapipe has 32 KiB).
 */
export const WORKGROUP_TILES: Readonly<Record<'square' | 'tall' | 'wide' | 'narrow' | 'tiny', Readonly<WorkgroupTile>>> = {
  square: { m: 64, n: 64, k: 16, rows: 4, cols: 4 },
  tall: { m: 128, n: 64, k: 8, rows: 8, cols: 4 },
  wide: { m: 32, n: 64, k: 16, rows: 2, cols: 4 },
  narrow: { m: 16, n: 128, k: 16, rows: 2, cols: 8 },
  tiny: { m: 8, n: 32, k: 8, rows: 2, cols: 4 },
};

/** The workgroup tile used when the caller gives none: narrow for few output rows, else square. */
export function chooseWorkgroupTile(M: number): WorkgroupTile {
  return M <= 32 ? WORKGROUP_TILES.narrow : WORKGROUP_TILES.square;
}

/** Refuses a tile the program or the adapter cannot run, naming the op and the rule; returns the tile. */
export function checkWorkgroupTile(gpu: Gpu, op: string, tile: WorkgroupTile): WorkgroupTile {
  const { m, n, k, rows, cols } = tile;
  const whole = [m, n, k, rows, cols].every((v) => Number.isInteger(v) && v >= 1);
  const T = whole && m % rows === 0 && n % cols === 0 ? workgroupThreads(tile) : 0;
  const maxThreads = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  const bytes = T > 0 ? workgroupBytes(tile) : Infinity;
  // Each thread stages whole rows of the copy loops: T must divide the slices and be a multiple of n and k.
  const ok = T > 0 && T <= maxThreads && T % n === 0 && T % k === 0 && (m * k) % T === 0 && (k * n) % T === 0 &&
    rows * cols <= 64 && bytes <= gpu.limits.maxComputeWorkgroupStorageSize;
  if (!ok) {
    throw new ShapeError(`${op}: workgroup tile ${JSON.stringify(tile)} is invalid (whole numbers; rows divides m, cols divides n; ` +
      `threads = (m/rows)·(n/cols) <= ${maxThreads}, a multiple of n and of k, dividing m·k and k·n; rows·cols <= 64; ` +
      `(m + 1 + n)·k·4 bytes <= ${gpu.limits.maxComputeWorkgroupStorageSize})`);
  }
  return tile;
}

/** Sizes of one implicit GEMM as conv2d.ts lays it out (src/dst spatial sizes, M rows, C source channels). */
export interface WorkgroupGemmSizes {
  M: number; C: number; N: number; srcH: number; srcW: number; dstH: number; dstW: number; mStride: number; cStride: number;
}

/** Compiles (or finds) the program and returns its one launch. */
export async function workgroupGemmLaunch(
  gpu: Gpu, op: string, mode: 'forward' | 'backwardInput', g: ConvGeometry, tile: WorkgroupTile, transform: boolean, accumulate: boolean,
  bound: BoundOperands, s: WorkgroupGemmSizes,
): Promise<Launch> {
  const plain = isPlainGemm(g);
  const Q = s.N * s.dstH * s.dstW;
  const K = s.C * g.KH * g.KW;
  const srcPlane = s.N * s.srcH * s.srcW;
  // Aligned operands are read as vec4s (conv2d_workgroup_vec4.ts); the choice is part of the key.
  const { vec4A, vec4B, bound: b } = chooseVec4(bound, tile, { forward: mode === 'forward', plain, K, Q, mStride: s.mStride, srcPlane });
  const spec = {
    mode, kh: g.KH, kw: g.KW, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw, plain, tile, transform, accumulate, vec4A, vec4B,
  };
  const program = await gpu.compile(b.program({
    name: `${op}.workgroup`, key: JSON.stringify(spec), workgroupSize: [workgroupThreads(tile)],
    body: workgroupGemmBody(spec), main: workgroupGemmMain(spec), uniforms: uniformsU32(...WORKGROUP_GEMM_UNIFORMS),
  }));
  const mBlocks = Math.ceil(s.M / tile.m);
  const blocks = mBlocks * Math.ceil(Q / tile.n);
  const o = b.offsets;
  return gpu.launch(program, b.buffers, {
    M: s.M, K, Q, srcH: s.srcH, srcW: s.srcW, dstH: s.dstH, dstW: s.dstW, srcPlane,
    mBlocks, blocks, mStride: s.mStride, cStride: s.cStride,
    srcOffset: o.srcOffset, wOffset: o.wtOffset, dstOffset: o.dstOffset, scaleOffset: o.scaleOffset ?? 0, shiftOffset: o.shiftOffset ?? 0,
  }, blocks);
}
