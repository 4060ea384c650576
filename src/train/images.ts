// Image files for `predict` and ImageNet-style preprocessing: PNG and JPEG decoding (by magic
// bytes, not extension) to float RGB or grayscale in [0, 1], bilinear resizing, centre cropping,
// and the conversion to one model input [C, H, W] (= channel-major [C, 1, H, W]).
//
// Conventions:
// - Images are interleaved HWC float32 in [0, 1], 1 (gray) or 3 (RGB) channels, as stored in the
//   file (no gamma or colour-profile handling, as PIL and torchvision).
// - Alpha is removed by compositing over a background, white by default (how a transparent PNG
//   looks on a page); pass { background: 'black' } for white-on-black drawings such as MNIST-like
//   digits on a transparent canvas.
// - RGB → gray is ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B (PIL's convert('L')).

import { readFile, stat } from 'node:fs/promises';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UsageError } from '../base/usage_error.js';

export interface FloatImage {
  width: number;
  height: number;
  channels: 1 | 3;
  /** Row-major, interleaved: data[(y·width + x)·channels + c], values in [0, 1]. */
  data: Float32Array;
}

/** A missing, unreadable, unsupported, truncated or corrupt image, or an impossible resize or crop. */
export class ImageError extends Error {}

export interface DecodeOptions {
  /** What transparent pixels are composited over (default 'white'). */
  background?: 'white' | 'black';
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export async function decodeImageFile(path: string, options: DecodeOptions = {}): Promise<FloatImage> {
  let bytes: Uint8Array;
  try {
    if ((await stat(path)).isDirectory()) throw new ImageError(`${path}: is a directory, not an image file`);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageError(`${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${(e as Error).message})`}`, { cause: e });
  }
  return decodeImage(bytes, path, options);
}

/** Decodes PNG or JPEG bytes; `name` (usually the path) is used in error messages. */
export function decodeImage(bytes: Uint8Array, name: string, options: DecodeOptions = {}): FloatImage {
  if (bytes.length === 0) throw new ImageError(`${name}: the file is empty, not an image`);
  if (startsWith(bytes, PNG_MAGIC)) return decodePng(bytes, name, options);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return decodeJpeg(bytes, name);
  throw new ImageError(`${name}: not a PNG or JPEG image (${sniff(bytes)}); convert it to PNG or JPEG`);
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function sniff(bytes: Uint8Array): string {
  const ascii = new TextDecoder('latin1').decode(bytes.subarray(0, 12));
  if (ascii.startsWith('GIF8')) return 'it is a GIF image';
  if (ascii.startsWith('BM')) return 'it looks like a BMP image';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'it is a WebP image';
  if (ascii.startsWith('%PDF')) return 'it is a PDF document';
  if (ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')) return 'it is a TIFF image';
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${hex}`;
}

function decodePng(bytes: Uint8Array, name: string, options: DecodeOptions): FloatImage {
  let png: ReturnType<typeof PNG.sync.read>;
  try {
    // skipRescale keeps 16-bit samples (and 1/2/4-bit gray) at their full precision.
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: true });
  } catch (e) {
    const truncated = !hasPngEnd(bytes);
    throw new ImageError(`${name}: ${truncated ? 'truncated PNG (it ends before its IEND chunk)' : 'corrupt PNG'} (${(e as Error).message})`, { cause: e });
  }
  const { width, height } = png;
  // Palette entries are 8-bit; other samples have the file's bit depth (unscaled with skipRescale).
  const colorType = png.colorType as number; // @types/pngjs omits 3 (palette)
  const max = colorType === 3 ? 255 : 2 ** png.depth - 1;
  const rgba = png.data as unknown as ArrayLike<number>;
  const gray = colorType === 0 || colorType === 4;
  const channels = gray ? 1 : 3;
  const background = options.background === 'black' ? 0 : 1;
  const data = new Float32Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    const alpha = rgba[4 * p + 3] / max;
    for (let c = 0; c < channels; c++) data[p * channels + c] = (rgba[4 * p + c] / max) * alpha + background * (1 - alpha);
  }
  return { width, height, channels, data };
}

function hasPngEnd(bytes: Uint8Array): boolean {
  // The last chunk is IEND: length 0, type "IEND", CRC AE 42 60 82.
  const end = [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
  return bytes.length >= 12 && end.every((b, i) => bytes[bytes.length - 8 + i] === b);
}

function decodeJpeg(bytes: Uint8Array, name: string): FloatImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  } catch (e) {
    const truncated = !(bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9);
    throw new ImageError(`${name}: ${truncated ? 'truncated JPEG (it ends before its end-of-image marker)' : 'corrupt JPEG'} (${(e as Error).message})`, { cause: e });
  }
  const { width, height, data: rgb } = decoded;
  if (!(width > 0 && height > 0)) throw new ImageError(`${name}: corrupt JPEG (size ${width}×${height})`);
  const channels = jpegComponents(bytes) === 1 ? 1 : 3;
  const data = new Float32Array(width * height * channels);
  if (channels === 3) {
    for (let i = 0; i < data.length; i++) data[i] = rgb[i] / 255;
  } else {
    for (let p = 0; p < width * height; p++) data[p] = rgb[3 * p] / 255; // jpeg-js repeats gray in R, G, B
  }
  return { width, height, channels, data };
}

/** The number of colour components in a JPEG's frame header (SOFn), or 0 if not found. */
function jpegComponents(bytes: Uint8Array): number {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return 0;
    const marker = bytes[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return bytes[i + 9];
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) { i += 2; continue; } // no length field
    i += 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Geometry. Resizing is separable with half-pixel centres. With `antialias` (the default) a
// downscale widens the triangle filter by the scale factor, as PIL's BILINEAR (and so
// torchvision's Resize on PIL images) does, so every input pixel contributes; without it, or
// when enlarging, it is plain bilinear interpolation (OpenCV INTER_LINEAR, tf.image.resize).

interface Taps { start: Int32Array; count: Int32Array; weights: Float64Array; stride: number }

function taps(inSize: number, outSize: number, antialias: boolean): Taps {
  const scale = inSize / outSize;
  const filterScale = antialias ? Math.max(scale, 1) : 1;
  const support = filterScale; // the triangle filter's support is 1
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), inSize);
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) / filterScale));
      weights[i * stride + j - lo] = w;
      sum += w;
    }
    for (let j = lo; j < hi; j++) weights[i * stride + j - lo] /= sum;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, stride };
}

function checkSize(op: string, width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ImageError(`${op}: the size must be whole numbers > 0, got ${width}×${height}`);
  }
}

export function resizeBilinear(image: FloatImage, width: number, height: number, options: { antialias?: boolean } = {}): FloatImage {
  checkSize('resizeBilinear', width, height);
  const antialias = options.antialias ?? true;
  const C = image.channels;
  let src = image.data;
  let srcWidth = image.width;
  if (width !== image.width) {
    const t = taps(image.width, width, antialias);
    const out = new Float32Array(image.height * width * C);
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let k = 0; k < t.count[x]; k++) acc += t.weights[x * t.stride + k] * src[(y * srcWidth + t.start[x] + k) * C + c];
          out[(y * width + x) * C + c] = acc;
        }
      }
    }
    src = out;
    srcWidth = width;
  }
  if (height !== image.height) {
    const t = taps(image.height, height, antialias);
    const out = new Float32Array(height * width * C);
    const row = width * C;
    for (let y = 0; y < height; y++) {
      for (let k = 0; k < t.count[y]; k++) {
        const w = t.weights[y * t.stride + k];
        const from = (t.start[y] + k) * row;
        for (let i = 0; i < row; i++) out[y * row + i] += w * src[from + i];
      }
    }
    src = out;
  }
  return { width, height, channels: C, data: src === image.data ? Float32Array.from(src) : src };
}

/**
 * Scales so the shorter side becomes `size`, keeping the aspect ratio; the longer side is
 * floor(size · long / short), as torchvision's Resize(int).
 */
export function resizeShorterSide(image: FloatImage, size: number, options: { antialias?: boolean } = {}): FloatImage {
  checkSize('resizeShorterSide', size, size);
  const { width: w, height: h } = image;
  const [nw, nh] = w <= h ? [size, Math.floor((size * h) / w)] : [Math.floor((size * w) / h), size];
  return resizeBilinear(image, nw, nh, options);
}

/** The centred width×height region; the offset is round((W − width) / 2), ties to even, as torchvision's CenterCrop. */
export function centerCrop(image: FloatImage, width: number, height: number): FloatImage {
  checkSize('centerCrop', width, height);
  if (width > image.width || height > image.height) {
    throw new ImageError(`centerCrop: ${width}×${height} does not fit in the ${image.width}×${image.height} image; resize it first`);
  }
  const left = roundHalfEven((image.width - width) / 2);
  const top = roundHalfEven((image.height - height) / 2);
  const C = image.channels;
  const data = new Float32Array(width * height * C);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * C;
    data.set(image.data.subarray(from, from + width * C), y * width * C);
  }
  return { width, height, channels: C, data };
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function toGrayscale(image: FloatImage): FloatImage {
  if (image.channels === 1) return image;
  const n = image.width * image.height;
  const data = new Float32Array(n);
  for (let p = 0; p < n; p++) data[p] = 0.299 * image.data[3 * p] + 0.587 * image.data[3 * p + 1] + 0.114 * image.data[3 * p + 2];
  return { width: image.width, height: image.height, channels: 1, data };
}

export function toRgb(image: FloatImage): FloatImage {
  if (image.channels === 3) return image;
  const n = image.width * image.height;
  const data = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = image.data[p];
  return { width: image.width, height: image.height, channels: 3, data };
}

export interface ModelInputOptions {
  /** 1 (gray) or 3 (RGB); the image is converted as needed. */
  channels: number;
  height: number;
  width: number;
  /** Per channel (or one for all): output = (value − mean) / std. Default 0 and 1. */
  mean?: number | readonly number[];
  std?: number | readonly number[];
  /** 1 − value before normalizing: dark-on-light drawings for a model trained on light-on-dark digits (MNIST). */
  invert?: boolean;
  antialias?: boolean;
}

/**
 * One image as model input: channels converted, resized straight to height×width if it is not
 * that size already (crop first to keep the aspect ratio), optionally inverted, normalized, and
 * laid out planar [C, H, W].
 */
export function toModelInput(image: FloatImage, o: ModelInputOptions): Float32Array {
  if (o.channels !== 1 && o.channels !== 3) throw new ImageError(`toModelInput: the model takes ${o.channels} channels; only 1 (gray) and 3 (RGB) are supported`);
  checkSize('toModelInput', o.width, o.height);
  const perChannel = (v: number | readonly number[] | undefined, fallback: number, what: string): number[] => {
    const list = v === undefined ? [fallback] : typeof v === 'number' ? [v] : [...v];
    if (list.length === 1) return Array(o.channels).fill(list[0]);
    if (list.length !== o.channels) throw new ImageError(`toModelInput: ${what} has ${list.length} values for ${o.channels} channels`);
    return list;
  };
  const mean = perChannel(o.mean, 0, 'mean');
  const std = perChannel(o.std, 1, 'std');
  if (!std.every((s) => s > 0 && Number.isFinite(s)) || !mean.every(Number.isFinite)) {
    throw new ImageError(`toModelInput: mean must be finite and std > 0, got mean [${mean}], std [${std}]`);
  }
  let img = o.channels === 1 ? toGrayscale(image) : toRgb(image);
  if (img.width !== o.width || img.height !== o.height) img = resizeBilinear(img, o.width, o.height, { antialias: o.antialias });
  const plane = o.width * o.height;
  const out = new Float32Array(o.channels * plane);
  for (let c = 0; c < o.channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = img.data[p * o.channels + c];
      out[c * plane + p] = ((o.invert ? 1 - v : v) - mean[c]) / std[c];
    }
  }
  return out;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * One image as torchvision's ImageNet evaluation transform makes it: RGB, shorter side resized to
 * 256/224 of the input side (256 for 224), centre crop, ImageNet mean/std (or `mean`/`std`); [3, H, W] planar.
 */
export function imagenetInput(image: FloatImage, inputShape: readonly [number, number, number],
  normalization: { mean: readonly number[]; std: readonly number[] } = { mean: IMAGENET_MEAN, std: IMAGENET_STD }): Float32Array {
  const [c, h, w] = inputShape;
  if (c !== 3) throw new UsageError(`ImageNet preprocessing makes RGB images; this model takes ${c} channel(s)`);
  const resize = Math.round((Math.min(h, w) * 256) / 224);
  const cropped = centerCrop(resizeShorterSide(toRgb(image), resize), w, h);
  return toModelInput(cropped, { channels: 3, height: h, width: w, mean: normalization.mean, std: normalization.std });
}
