// SVHN (Street View House Numbers, cropped digits; http://ufldl.stanford.edu/housenumbers/) from
// its files as distributed: train_32x32.mat, test_32x32.mat and optionally extra_32x32.mat, MATLAB
// Level 5 MAT-files (mat5.ts). X is uint8 of MATLAB size 32x32x3xN (row, column, channel, image;
// column-major, so the row index varies fastest) and y is Nx1 with labels 1..10, where 10 means
// the digit 0; we use label = digit (0..9), as torchvision's SVHN does.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { channelStats, DatasetError, type Dataset, type DatasetSplit } from './core.js';
import { MatFileError, readMat5, type MatArray } from './mat5.js';

export const SVHN_SHAPE: [number, number, number] = [3, 32, 32];
export const SVHN_CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const SVHN_FILES = { train: 'train_32x32.mat', test: 'test_32x32.mat', extra: 'extra_32x32.mat' } as const;
const PIXELS = 3 * 32 * 32;
const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);

export interface SvhnOptions {
  /** Add extra_32x32.mat (531,131 images) to the training set. */
  extra?: boolean;
}

/**
 * Loads SVHN's train (+ extra) and test files from `dir`. Images are byte / 255 in CHW order;
 * mean/std come from the training split. Throws DatasetError naming the directory or the file and
 * the field (missing X or y, wrong dimensions, a label outside 1..10, a truncated or damaged file).
 */
export async function loadSvhn(dir: string, options: SvhnOptions = {}): Promise<DatasetSplit> {
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new DatasetError(`--data-dir ${dir} does not exist`);
  if (!dirStat.isDirectory()) throw new DatasetError(`--data-dir ${dir} is not a directory`);
  const trainFiles = [SVHN_FILES.train, ...(options.extra ? [SVHN_FILES.extra] : [])];
  const missing: string[] = [];
  for (const f of [...trainFiles, SVHN_FILES.test]) if (!(await stat(join(dir, f)).catch(() => undefined))?.isFile()) missing.push(f);
  if (missing.length > 0) {
    throw new DatasetError(`SVHN: ${missing.join(', ')} not found in ${dir}. Download the "Format 2: cropped digits" files ` +
      `(train_32x32.mat, test_32x32.mat${options.extra ? ', extra_32x32.mat' : ''}) from http://ufldl.stanford.edu/housenumbers/ into ${dir}`);
  }
  const parts: Dataset[] = [];
  for (const f of trainFiles) parts.push(await readSvhnFile(join(dir, f)));
  const train = parts.length === 1 ? parts[0] : concat(parts);
  const test = await readSvhnFile(join(dir, SVHN_FILES.test));
  return { train, test, ...channelStats(train.images, train.shape) };
}

/** One SVHN .mat file as a Dataset (CHW float images in [0, 1], labels 0..9). */
export async function readSvhnFile(path: string): Promise<Dataset> {
  let arrays: Map<string, MatArray>;
  let skipped: Map<string, string>;
  try {
    ({ arrays, skipped } = readMat5(await readFile(path), path));
  } catch (e) {
    if (e instanceof MatFileError) throw new DatasetError(`SVHN: ${e.message}`);
    throw new DatasetError(`SVHN: ${path}: cannot read it (${(e as Error).message})`);
  }
  const holds = () => {
    const names = [...arrays.keys(), ...[...skipped].map(([n, what]) => `${n} (${what})`)];
    return names.length ? names.join(', ') : 'no variables';
  };
  const X = arrays.get('X');
  const y = arrays.get('y');
  if (!X) throw new DatasetError(`SVHN: ${path} has no numeric variable "X" (the images); it holds ${holds()}. Is it an SVHN "cropped digits" file?`);
  if (!y) throw new DatasetError(`SVHN: ${path} has no numeric variable "y" (the labels); it holds ${holds()}`);
  const d = X.dims;
  if (d.length < 3 || d.length > 4 || d[0] !== 32 || d[1] !== 32 || d[2] !== 3) {
    throw new DatasetError(`SVHN: ${path}: X is ${d.join('x')} ${X.className}, expected 32x32x3xN (the "cropped digits" format)`);
  }
  const n = d.length === 4 ? d[3] : 1;
  if (n < 1) throw new DatasetError(`SVHN: ${path}: X holds no images (${d.join('x')})`);
  if (y.data.length !== n || !(y.dims.length === 2 && (y.dims[0] === 1 || y.dims[1] === 1))) {
    throw new DatasetError(`SVHN: ${path}: y is ${y.dims.join('x')}, expected ${n}x1 (one label per image of X)`);
  }
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const v = y.data[i];
    if (!Number.isInteger(v) || v < 1 || v > 10) {
      throw new DatasetError(`SVHN: ${path}: y(${i + 1}) is ${v}, expected a label 1..10 (10 stands for the digit 0)`);
    }
    labels[i] = v % 10;
  }
  const images = new Float32Array(n * PIXELS);
  const src = X.data;
  // MATLAB element (row r, column c, channel ch, image i) is at r + 32·c + 1024·ch + 3072·i;
  // ours (NCHW) at ((i·3 + ch)·32 + r)·32 + c: every 32×32 plane is transposed.
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const from = i * PIXELS + ch * 1024;
      for (let c = 0; c < 32; c++) {
        for (let r = 0; r < 32; r++) {
          const v = src[from + c * 32 + r];
          images[from + r * 32 + c] = v >= 0 && v <= 255 ? BYTE_TO_UNIT[v | 0] : Math.min(1, Math.max(0, v / 255));
        }
      }
    }
  }
  return { name: 'svhn', images, labels, shape: [...SVHN_SHAPE], classes: 10, classNames: [...SVHN_CLASS_NAMES] };
}

function concat(parts: Dataset[]): Dataset {
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = new Float32Array(n * PIXELS);
  const labels = new Uint32Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * PIXELS);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return { ...parts[0], images, labels };
}
