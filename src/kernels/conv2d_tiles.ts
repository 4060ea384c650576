// Register tiles for the conv2d kernels: the configuration type, the defaults chosen by shape,
// named alternatives (each exercised by the tests), and the validity check.
//
// What was measured (lavapipe, 2 shared cores, Mesa 25.0.7; GFLOP/s, best of 3–4 interleaved runs,
// ±30% run to run because other jobs share the CPU): every storage load costs ~5 ns per 8 lanes
// whatever its index (this Mesa scalarises only constant indices: see conv2d_wgsl.ts), FMAs are
// nearly free, and unrolling the channel loop hurts (LLVM hoists the loads and spills). So the
// best tiles are the largest LLVM keeps fast, ~100 accumulators:
//   conv 3×3 N16 32² 48→12 forward: rows×cols 4×4 4.0, 4×8 5–7, 8×8 2.7 (M = 12 wastes 4 rows), 12×8 7.1
//   conv 1×1 N16 32² 120→48 forward: 4×8 4–5, 8×8 12, 12×8 11, 8×12 10; unroll 2: 5.9, unroll 4: 2.7
//   backward-filter 3×3 (rows×cols input channels × 9 taps): 4×1 9–12, 12×1 10–21
//   backward-filter 1×1: 8×4 2.8–3.7, 16×4 4.5–7, 24×4 9.4, 48×2 3.6

import type { Gpu } from '../gpu/device.js';
import { ShapeError } from './tensor.js';

/**
 * A register tile: each thread computes `rows` × `cols` outputs, `workgroupSize` threads per
 * workgroup. Forward and backward-input: rows are output channels (forward) or input channels
 * (backward-input), cols consecutive pixels of one image row (of all N·H·W pixels for a 1×1
 * stride-1 unpadded conv). Backward-filter: rows are output channels, cols input channels, each
 * with KW taps of one or more kernel rows (up to FILTER_ACCUMULATORS accumulators per thread).
 */
export interface ConvTile {
  rows: number;
  cols: number;
  workgroupSize: number;
  /** Iterations of the inner loop (channels; backward-filter: pixels) per loop trip. Default 1. */
  unroll?: number;
  /** Backward-filter only: split the N·Ho output rows into this many partial sums (needs a workspace). Default 1. */
  splits?: number;
}

/** What the tile choice depends on. */
export interface ConvGeometry { KH: number; KW: number; sh: number; sw: number; ph: number; pw: number }

/** The tile chosen for forward conv 3×3 N16 32² 48→12 (and any M a multiple of 12 with wide rows). */
export const DEFAULT_CONV_TILE: Readonly<ConvTile> = { rows: 12, cols: 8, workgroupSize: 32, unroll: 1 };
/** The tile chosen for backward-filter 3×3 with 12 output channels. */
export const DEFAULT_FILTER_TILE: Readonly<ConvTile> = { rows: 12, cols: 1, workgroupSize: 8, unroll: 1 };
/** Alternatives, each exercised by the tests (any kernel accepts any tile). */
export const CONV_TILES: Readonly<Record<string, Readonly<ConvTile>>> = {
  default: DEFAULT_CONV_TILE,
  filter: DEFAULT_FILTER_TILE,
  small: { rows: 4, cols: 4, workgroupSize: 64 },
  tall: { rows: 6, cols: 2, workgroupSize: 32, unroll: 3 },
  wide: { rows: 2, cols: 5, workgroupSize: 16 },
  single: { rows: 1, cols: 1, workgroupSize: 64, unroll: 2 },
  split: { rows: 2, cols: 2, workgroupSize: 8, splits: 3 },
};

/** Accumulators per thread the default tiles aim for. */
const GEMM_ACCUMULATORS = 112;
export const FILTER_ACCUMULATORS = 108;

/** A 1×1 stride-1 unpadded conv is the plain GEMM Y[Cout × NHW] = W[Cout × Cin] · X[Cin × NHW]. */
export function isPlainGemm(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

/** Among `candidates` (largest first), the one that leaves the fewest idle slots covering n; ties go to the larger. */
function leastWaste(n: number, candidates: number[]): number {
  let best = candidates[0];
  for (const c of candidates) if (Math.ceil(n / c) * c - n < Math.ceil(n / best) * best - n) best = c;
  return best;
}

const descending = (from: number, to: number) => Array.from({ length: Math.max(0, from - to + 1) }, (_, i) => from - i);

/**
 * The tile used when the caller gives none: as large as LLVM keeps fast, shaped to waste few of
 * the M rows (output channels; input channels for backward-input) and few pixels of an image row.
 */
export function chooseTile(kind: 'gemm' | 'filter', g: ConvGeometry, M: number, outWidth: number): ConvTile {
  const taps = g.KH * g.KW;
  if (kind === 'filter') {
    // Per output pixel: `rows` dy loads and `cols` x loads per kernel row, for rows·cols·taps FMAs.
    const fits = [24, 16, 12, 8, 6, 4].filter((r) => r * g.KW <= FILTER_ACCUMULATORS);
    const rows = M < 4 ? Math.max(M, 1) : leastWaste(M, fits.length > 0 ? fits : [4]);
    const cols = Math.max(1, Math.min(8, Math.floor(FILTER_ACCUMULATORS / (rows * taps))));
    return { rows, cols, workgroupSize: 8, unroll: 1 };
  }
  // Per channel and kernel row: `rows`·KW weight loads and (cols − 1)·stride + KW x loads.
  const rows = M < 4 ? Math.max(M, 1) : leastWaste(M, [12, 8, 6, 4]);
  const maxCols = Math.max(4, Math.floor(GEMM_ACCUMULATORS / rows));
  const cols = isPlainGemm(g) ? Math.min(8, maxCols) : outWidth <= maxCols ? outWidth : leastWaste(outWidth, descending(maxCols, 4));
  return { rows, cols, workgroupSize: 32, unroll: 1 };
}

/** Refuses a tile the adapter or the programs cannot run, naming the op; returns the tile. */
export function checkTile(gpu: Gpu, op: string, tile: ConvTile): ConvTile {
  const { rows, cols, workgroupSize, unroll = 1, splits = 1 } = tile;
  const maxThreads = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  const ok = [rows, cols, workgroupSize, unroll, splits].every((v) => Number.isInteger(v) && v >= 1) &&
    rows * cols <= 128 && unroll <= 16 && workgroupSize <= maxThreads;
  if (!ok) {
    throw new ShapeError(`${op}: tile ${JSON.stringify(tile)} is invalid (whole numbers >= 1, rows·cols <= 128, unroll <= 16, ` +
      `workgroupSize <= ${maxThreads})`);
  }
  return tile;
}
