// Image files for `predict`, `features`, `eval` and folder datasets: PNG, JPEG and WebP decoded by
// sharp (libvips) to float RGB or grayscale in [0, 1], then PIL-exact geometry in TypeScript
// (antialiased bilinear resizing, centre and region crops) and the conversion to one model input
// [C, H, W] (= channel-major [C, 1, H, W]). This is the one decoding path of the engine.
//
// Conventions:
// - Images are interleaved HWC float32 in [0, 1], 1 (gray files) or 3 (everything else) channels.
//   16-bit PNGs keep their 16 bits. Neither an embedded ICC colour profile nor the EXIF orientation
//   is applied, as PIL and torchvision do not apply them (sharp's `ignoreIcc`, no auto-orient).
// - Alpha is removed by compositing over a background, white by default (how a transparent PNG
//   looks on a page); pass { background: 'black' } for white-on-black drawings such as MNIST-like
//   digits on a transparent canvas. Palette PNGs with transparency are expanded first.
// - RGB → gray is ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B (PIL's convert('L')), done here,
//   not by libvips (whose b-w conversion weighs linear light with other coefficients).
// - Resizing is ours, not sharp's: libvips's linear kernel differs from PIL's antialiased bilinear by
//   up to 0.14 (of 1) on small cases (measured), and torchvision's transforms are PIL's.
// sharp is loaded on first use, so commands that decode no image do not need its native binaries.

import { readFile, stat } from 'node:fs/promises';
import type { Sharp } from 'sharp';

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

/** The file name extensions folder datasets take as images (lower case). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;

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

type Format = 'PNG' | 'JPEG' | 'WebP';

/** The format told by the first bytes (not the file name), or undefined. */
export function imageFormat(bytes: Uint8Array): Format | undefined {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'PNG';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'JPEG';
  const ascii = new TextDecoder('latin1').decode(bytes.subarray(0, 12));
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'WebP';
  return undefined;
}

let sharpModule: Promise<typeof import('sharp')> | undefined;
async function loadSharp(): Promise<typeof import('sharp')> {
  sharpModule ??= import('sharp').catch((e: unknown) => {
    sharpModule = undefined;
    throw new ImageError(`decoding images needs the npm package "sharp", which did not load (${(e as Error).message}); run npm install in the densenet-wgsl directory`);
  });
  return sharpModule;
}

/** Decodes PNG, JPEG or WebP bytes; `name` (usually the path) is used in error messages. */
export async function decodeImage(bytes: Uint8Array, name: string, options: DecodeOptions = {}): Promise<FloatImage> {
  if (bytes.length === 0) throw new ImageError(`${name}: the file is empty, not an image`);
  const format = imageFormat(bytes);
  if (!format) throw new ImageError(`${name}: not a PNG, JPEG or WebP image (${sniff(bytes)}); convert it to PNG or JPEG`);
  // libpng accepts a PNG whose IEND chunk is cut off when the pixels are complete; a copy that
  // stopped early is still a broken file, so it is refused here.
  if (format === 'PNG' && truncated(bytes, format)) throw new ImageError(`${name}: truncated PNG (it ends before its IEND chunk)`);
  const sharp = (await loadSharp()).default;
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  let sixteen = false;
  let gray = false;
  try {
    // failOn 'warning' (sharp's default, made explicit): damaged pixel data is an error, not a gray patch.
    const image: Sharp = sharp(bytes, { failOn: 'warning', ignoreIcc: true, autoOrient: false, limitInputPixels: 2 ** 28 });
    const meta = await image.metadata();
    sixteen = meta.depth === 'ushort';
    gray = meta.space === 'b-w' || meta.space === 'grey16';
    // Alpha stays (composited below in float: sharp's flatten rounds to the sample depth first).
    // libvips's gray spaces drop alpha, so gray with alpha comes out as RGBA with R = G = B.
    const keepGray = gray && !meta.hasAlpha;
    const pipeline = image.toColourspace(keepGray ? (sixteen ? 'grey16' : 'b-w') : sixteen ? 'rgb16' : 'srgb');
    raw = await pipeline.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (e instanceof ImageError) throw e;
    // libvips repeats its messages; the first distinct lines say it.
    const why = [...new Set((e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean))].slice(0, 2).join('; ');
    const state = truncated(bytes, format) ? `truncated ${format} (it ends before its ${format === 'JPEG' ? 'end-of-image marker' : 'RIFF size says'})` : `corrupt ${format}`;
    throw new ImageError(`${name}: ${state} (${why})`, { cause: e });
  }
  const { width, height, channels: stored } = raw.info;
  const alpha = stored === 2 || stored === 4;
  const channels = gray ? 1 : alpha ? stored - 1 : stored;
  if (!(width > 0 && height > 0) || (channels !== 1 && channels !== 3)) throw new ImageError(`${name}: corrupt ${format} (${width}×${height}, ${stored} channels after decoding)`);
  const samples = sixteen ? new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2) : raw.data;
  const max = sixteen ? 65535 : 255;
  const pixels = width * height;
  const data = new Float32Array(pixels * channels);
  if (!alpha) {
    for (let i = 0; i < data.length; i++) data[i] = samples[i] / max;
  } else {
    const background = options.background === 'black' ? 0 : 1;
    for (let p = 0; p < pixels; p++) {
      const a = samples[p * stored + stored - 1] / max;
      for (let c = 0; c < channels; c++) data[p * channels + c] = (samples[p * stored + c] / max) * a + background * (1 - a);
    }
  }
  return { width, height, channels, data };
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

/** Whether the file stops before its format's end: PNG's IEND chunk, JPEG's EOI marker, WebP's RIFF size. */
function truncated(bytes: Uint8Array, format: Format): boolean {
  const n = bytes.length;
  if (format === 'JPEG') return !(bytes[n - 2] === 0xff && bytes[n - 1] === 0xd9);
  if (format === 'PNG') {
    // The last chunk is IEND: length 0, type "IEND", CRC AE 42 60 82 (bytes after it are tolerated).
    const end = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
    return Buffer.from(bytes.buffer, bytes.byteOffset, n).lastIndexOf(end) < 0;
  }
  return n < 12 || new DataView(bytes.buffer, bytes.byteOffset, n).getUint32(4, true) + 8 > n;
}

function sniff(bytes: Uint8Array): string {
  const ascii = new TextDecoder('latin1').decode(bytes.subarray(0, 12));
  if (ascii.startsWith('GIF8')) return 'it is a GIF image';
  if (ascii.startsWith('BM')) return 'it looks like a BMP image';
  if (ascii.startsWith('%PDF')) return 'it is a PDF document';
  if (ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')) return 'it is a TIFF image';
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${hex}`;
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
  return cropRegion(image, roundHalfEven((image.width - width) / 2), roundHalfEven((image.height - height) / 2), width, height);
}

/** The width×height region at (left, top), which must lie inside the image. */
export function cropRegion(image: FloatImage, left: number, top: number, width: number, height: number): FloatImage {
  checkSize('cropRegion', width, height);
  if (!(Number.isInteger(left) && Number.isInteger(top) && left >= 0 && top >= 0 && left + width <= image.width && top + height <= image.height)) {
    throw new ImageError(`cropRegion: ${width}×${height} at (${left}, ${top}) does not fit in the ${image.width}×${image.height} image`);
  }
  const C = image.channels;
  const data = new Float32Array(width * height * C);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * C;
    data.set(image.data.subarray(from, from + width * C), y * width * C);
  }
  return { width, height, channels: C, data };
}

/** Mirrored left to right. */
export function flipHorizontal(image: FloatImage): FloatImage {
  const { width, height, channels: C } = image;
  const data = new Float32Array(image.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < C; c++) data[(y * width + x) * C + c] = image.data[(y * width + width - 1 - x) * C + c];
    }
  }
  return { width, height, channels: C, data };
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(v: number): number {
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
