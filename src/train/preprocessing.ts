// What turns an image file into a model input, recorded in every checkpoint so that predict and eval
// prepare images as training did: input shape, normalization, the evaluation transform and the
// training augmentation. Checkpoints written before this was recorded get the behaviour they were
// trained with (preprocessingOf).

import type { DenseNetConfig } from '../models/densenet_config.js';
import type { FloatImage } from './images.js';
import { centerCrop, ImageError, cropRegion, flipHorizontal, resizeBilinear, resizeShorterSide, roundHalfEven, toModelInput } from './images.js';
import type { Rng } from './data/rng.js';

export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

export interface Preprocessing {
  /** [C, H, W] of the model's input; C = 1 converts to gray (ITU-R 601 luma), 3 to RGB. */
  inputShape: [number, number, number];
  /** Per channel: input = (value − mean) / std, value in [0, 1]. */
  mean: number[];
  std: number[];
  /** Where mean/std come from: ImageNet's, or computed on the training set. */
  normalize: 'imagenet' | 'dataset';
  /**
   * Evaluation transform: 'shorter-crop' resizes the shorter side to `resizeTo` and centre-crops H×W
   * (torchvision's Resize(256) + CenterCrop(224)); 'stretch' resizes straight to H×W.
   */
  resize: 'shorter-crop' | 'stretch';
  resizeTo?: number;
  /** Training transform: RandomResizedCrop + flip, pad-4 crop + flip (CIFAR), or none. */
  augment: 'random-resized-crop' | 'crop-flip' | 'none';
  /** Dark-on-light images are inverted (a model trained on white-on-black MNIST digits). */
  invertLight?: boolean;
}

/** The transforms a model's input size and stem call for (mean/std are the caller's). */
export function preprocessingFor(config: DenseNetConfig, normalization: { mean: number[]; std: number[]; normalize: 'imagenet' | 'dataset' }, augment: boolean): Preprocessing {
  const [, h, w] = config.inputShape;
  const imagenet = config.stem === 'imagenet';
  return {
    inputShape: [...config.inputShape], ...normalization,
    resize: imagenet ? 'shorter-crop' : 'stretch',
    ...(imagenet ? { resizeTo: Math.round((Math.min(h, w) * 256) / 224) } : {}),
    augment: !augment ? 'none' : imagenet ? 'random-resized-crop' : 'crop-flip',
  };
}

/**
 * A checkpoint's preprocessing: the recorded one, or, for checkpoints written before it was recorded
 * (MNIST or CIFAR runs), what predict did then: stretch to the input size with the header's
 * mean/std, and inversion of light 1-channel images.
 */
export function preprocessingOf(header: Record<string, unknown>, config: DenseNetConfig): Preprocessing {
  const recorded = header.preprocessing as Preprocessing | undefined;
  if (recorded && typeof recorded === 'object') return recorded;
  const options = header.options as { augment?: boolean } | undefined;
  return {
    inputShape: [...config.inputShape], mean: header.mean as number[], std: header.std as number[], normalize: 'dataset',
    resize: 'stretch', augment: options?.augment ? 'crop-flip' : 'none', invertLight: config.inputShape[0] === 1,
  };
}

/** The evaluation transform of one image: planar [C, H, W] raw values in [0, 1] (not normalized). */
export function evalInput(image: FloatImage, p: Preprocessing): Float32Array {
  const [c, h, w] = p.inputShape;
  let img = image;
  if (p.resize === 'shorter-crop') img = centerCrop(resizeShorterSide(img, p.resizeTo ?? Math.min(h, w)), w, h);
  return toModelInput(img, { channels: c, height: h, width: w, invert: invertsLight(image, c, p.invertLight) });
}

/**
 * One image as torchvision's ImageNet evaluation transform makes it: RGB, shorter side resized to
 * 256/224 of the input side (256 for 224), centre crop, normalized with ImageNet's mean/std (or the
 * given ones); [3, H, W] planar. The same evaluation transform as eval and folder datasets use.
 */
export function imagenetInput(image: FloatImage, inputShape: readonly [number, number, number],
  normalization: { mean: readonly number[]; std: readonly number[] } = { mean: IMAGENET_MEAN, std: IMAGENET_STD }): Float32Array {
  const [c, h, w] = inputShape;
  if (c !== 3) throw new ImageError(`ImageNet preprocessing makes RGB images; this model takes ${c} channel(s)`);
  const x = evalInput(image, { inputShape: [c, h, w], mean: [...normalization.mean], std: [...normalization.std], normalize: 'imagenet', resize: 'shorter-crop', resizeTo: Math.round((Math.min(h, w) * 256) / 224), augment: 'none' });
  const plane = h * w;
  for (let ch = 0; ch < 3; ch++) for (let k = ch * plane; k < (ch + 1) * plane; k++) x[k] = (x[k] - normalization.mean[ch]) / normalization.std[ch];
  return x;
}

/**
 * Whether `image` is inverted on its way into a `channels`-channel model whose preprocessing says
 * `invertLight` (a model trained on white-on-black MNIST digits): a gray model's input whose mean
 * is light, i.e. a dark drawing on a light background.
 */
export function invertsLight(image: FloatImage, channels: number, invertLight: boolean | undefined): boolean {
  return invertLight === true && channels === 1 && meanValue(image.data) > 0.5;
}

function meanValue(data: Float32Array): number {
  let sum = 0;
  for (const v of data) sum += v;
  return sum / Math.max(1, data.length);
}

/** torchvision's RandomResizedCrop.get_params, scale (0.08, 1), ratio (3/4, 4/3): [left, top, width, height]. */
export function randomResizedCropBox(width: number, height: number, rng: Rng): [number, number, number, number] {
  const area = width * height;
  const logLo = Math.log(3 / 4);
  const logHi = Math.log(4 / 3);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (0.08 + rng.next() * (1 - 0.08));
    const ratio = Math.exp(logLo + rng.next() * (logHi - logLo));
    const w = roundHalfEven(Math.sqrt(target * ratio));
    const h = roundHalfEven(Math.sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) return [rng.below(width - w + 1), rng.below(height - h + 1), w, h];
  }
  // Fallback: the whole image, clipped to the ratio range, centred.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < 3 / 4) h = roundHalfEven(w / (3 / 4));
  else if (inRatio > 4 / 3) w = roundHalfEven(h * (4 / 3));
  return [Math.floor((width - w) / 2), Math.floor((height - h) / 2), w, h];
}

/**
 * The training transform of one image with RandomResizedCrop: crop box, resize to H×W, then a
 * horizontal flip with probability 1/2 (draws, in order: the box, then the flip). Planar, raw.
 */
export function randomResizedCropInput(image: FloatImage, p: Preprocessing, rng: Rng): Float32Array {
  const [c, h, w] = p.inputShape;
  const [left, top, cw, ch] = randomResizedCropBox(image.width, image.height, rng);
  let img = resizeBilinear(cropRegion(image, left, top, cw, ch), w, h);
  if (rng.next() < 0.5) img = flipHorizontal(img);
  return toModelInput(img, { channels: c, height: h, width: w });
}
