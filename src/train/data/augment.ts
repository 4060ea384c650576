// CIFAR augmentation: random crop with zero padding, then random horizontal flip (torchvision's
// RandomCrop(32, padding=4) → RandomHorizontalFlip → ToTensor → Normalize). Padding is zero in RAW
// space (before normalization), as there: after normalization a padded pixel of channel c holds
// (0 − mean[c]) / std[c], not 0.

import { DatasetError } from './core.js';
import type { Rng } from './rng.js';

export interface AugmentOptions {
  /** Zero padding on each side before the crop (the crop offset is uniform in [−padding, padding]). */
  padding: number;
  /** Mirror left–right with probability 1/2. */
  flip: boolean;
}

/** The standard CIFAR augmentation of the DenseNet paper: pad 4, crop, flip. */
export const CIFAR_AUGMENT: Readonly<AugmentOptions> = { padding: 4, flip: true };

/**
 * One image, crop then flip: with the padded image P (P[y + p][x + p] = src[y][x], 0 elsewhere), the
 * crop at (top, left) ∈ [0, 2p]² is Q[y][x] = P[y + top][x + left], and the output is Q mirrored when
 * `flip`: out[c][y][x] = src[c][y + top − p][x' + left − p], x' = flip ? W − 1 − x : x, 0 outside src.
 */
export function cropFlipImage(
  src: Float32Array, srcOffset: number, out: Float32Array, outOffset: number, shape: readonly [number, number, number],
  padding: number, top: number, left: number, flip: boolean,
): void {
  const [C, H, W] = shape;
  const dy = top - padding;
  const dx = left - padding;
  for (let c = 0; c < C; c++) {
    const srcPlane = srcOffset + c * H * W;
    const outPlane = outOffset + c * H * W;
    for (let y = 0; y < H; y++) {
      const sy = y + dy;
      const outRow = outPlane + y * W;
      if (sy < 0 || sy >= H) {
        out.fill(0, outRow, outRow + W);
        continue;
      }
      const srcRow = srcPlane + sy * W;
      for (let x = 0; x < W; x++) {
        const sx = (flip ? W - 1 - x : x) + dx;
        out[outRow + x] = sx >= 0 && sx < W ? src[srcRow + sx] : 0;
      }
    }
  }
}

/**
 * Augments `count` NCHW images of `src` into `out` (raw values; pads with 0), drawing per image, in
 * this order, top = rng.below(2p + 1), left = rng.below(2p + 1), and, when options.flip,
 * flip = rng.next() < 0.5. Reproducible: the same rng state gives the same output. `src` and `out`
 * must be distinct buffers.
 */
export function augmentBatch(
  src: Float32Array, out: Float32Array, shape: readonly [number, number, number], count: number, rng: Rng,
  options: Readonly<AugmentOptions> = CIFAR_AUGMENT,
): void {
  const size = shape[0] * shape[1] * shape[2];
  const p = options.padding;
  if (!Number.isInteger(p) || p < 0) throw new DatasetError(`augment: padding must be a non-negative integer, got ${p}`);
  if (!Number.isInteger(count) || count < 0 || count * size > src.length || count * size > out.length) {
    throw new DatasetError(`augment: ${count} images of [${shape.join(', ')}] do not fit ${src.length} input / ${out.length} output values`);
  }
  if (src.buffer === out.buffer) throw new DatasetError('augment: src and out must not share a buffer');
  for (let i = 0; i < count; i++) {
    const top = rng.below(2 * p + 1);
    const left = rng.below(2 * p + 1);
    const flip = options.flip ? rng.next() < 0.5 : false;
    cropFlipImage(src, i * size, out, i * size, shape, p, top, left, flip);
  }
}
