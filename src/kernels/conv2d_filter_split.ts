// The GPU class's default backward-filter tile (issue 9): the register tile chooseConvTile picks,
// with its N·Ho·Wo reduction split (split-K over output rows, conv2d.ts) into enough parts to
// fill a large GPU wherever the reduction is long. The partial sums go to a planner-owned
// workspace (conv2dBackwardFilterWorkspaceElements) that a second launch sums into dw.
//
// Why: the register kernel's parallelism is Cout × Cin·KH alone (a dense layer's 3×3 conv, 12 ← 48
// channels, launches 1 workgroup of 8 threads per kernel row), each thread reducing every output
// pixel serially: 65,536 of them at batch 64, 32×32. On lavapipe that is the fastest (few, long
// threads); a GPU with 132 multiprocessors needs thousands of threads.

import { chooseConvTile, type ConvTile } from './conv2d.js';
import { conv2dOutputSize, normalizeConvParams, type Conv2dParams } from './conv2d_reference.js';
import { FILTER_ACCUMULATORS } from './conv2d_tiles.js';

/** Workgroups the split aims for (several per multiprocessor of a large GPU; batchnorm_split.ts aims for as many). */
export const FILTER_SPLIT_TARGET_WORKGROUPS = 1024;
/** Output pixels each thread still reduces per part, so that a part's fixed cost (its window setup, its stores) stays small. */
export const MIN_PIXELS_PER_SPLIT = 256;
/** Most workspace elements a split may use (4 MiB), so that it stays a small transient the planner shares and fits one binding. */
export const MAX_SPLIT_WORKSPACE_ELEMENTS = 2 ** 20;

export interface FilterSplitOptions { targetWorkgroups?: number; minPixelsPerSplit?: number; maxWorkspaceElements?: number }

/**
 * Workgroups the backward-filter kernel launches for one part (conv2d.ts's grid before the
 * split): output-channel blocks × kernel-row blocks × input-channel blocks.
 */
export function filterWorkgroupsPerSplit(wShape: readonly number[], tile: ConvTile): number {
  const [Cout, Cin, KH, KW] = wShape;
  let kernelRows = Math.max(1, Math.min(KH, Math.floor(FILTER_ACCUMULATORS / (tile.rows * tile.cols * KW))));
  while (KH % kernelRows !== 0) kernelRows--;
  return Math.ceil(Cout / tile.rows) * Math.ceil(KH / kernelRows) * Math.ceil(Cin / (tile.cols * tile.workgroupSize));
}

/**
 * The GPU-class backward-filter tile for x [Cin, N, H, W] and w [Cout, Cin, KH, KW]: the default
 * register tile with `splits` = as many parts as reach the target workgroups, each part keeping
 * at least minPixelsPerSplit output pixels per thread, at most N·Ho parts (the split is over
 * output rows) and at most maxWorkspaceElements of partial sums; no split (splits 1) where the
 * reduction is short or the grid already fills the target.
 */
export function chooseGpuFilterTile(xShape: readonly number[], wShape: readonly number[], params: Conv2dParams = {}, o: FilterSplitOptions = {}): ConvTile {
  const base = chooseConvTile('backwardFilter', xShape, wShape, params);
  const { stride, padding } = normalizeConvParams(params);
  const [Ho, Wo] = conv2dOutputSize(xShape[2], xShape[3], wShape[2], wShape[3], { stride, padding });
  const rows = xShape[1] * Ho;
  const pixels = rows * Wo;
  const dwElements = wShape.reduce((a, b) => a * b, 1);
  const perSplit = filterWorkgroupsPerSplit(wShape, base);
  const splits = Math.max(1, Math.min(
    Math.ceil((o.targetWorkgroups ?? FILTER_SPLIT_TARGET_WORKGROUPS) / perSplit),
    Math.floor(pixels / (o.minPixelsPerSplit ?? MIN_PIXELS_PER_SPLIT)),
    rows,
    Math.floor((o.maxWorkspaceElements ?? MAX_SPLIT_WORKSPACE_ELEMENTS) / Math.max(1, dwElements)),
  ));
  return splits > 1 ? { ...base, splits } : base;
}
