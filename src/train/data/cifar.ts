// CIFAR-10 and CIFAR-100 from their standard binary versions
// (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version (suitable for C programs)").
// CIFAR-10: data_batch_1..5.bin and test_batch.bin, 10,000 records of 3073 bytes each: a label byte
// (0..9), then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each plane row-major 32×32, i.e.
// exactly CHW. CIFAR-100: train.bin (50,000) and test.bin (10,000), 3074-byte records: coarse label
// (0..19), fine label (0..99), then the same 3072 bytes. We use the FINE labels (100 classes).

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { channelStats, DatasetError, type Dataset, type DatasetSplit } from './core.js';
import { CIFAR100_FINE_CLASS_NAMES, CIFAR10_CLASS_NAMES } from './cifar_names.js';

export const CIFAR_SHAPE: [number, number, number] = [3, 32, 32];
const PIXELS = 3 * 32 * 32;

interface CifarFormat {
  title: string;
  /** Folder the official tarball extracts to. */
  tarFolder: string;
  train: string[];
  test: string;
  /** Label bytes before the pixels; the label we keep is the last one. */
  labelBytes: number;
  /** Records per train file and in the test file in the official files. */
  trainRecords: number;
  testRecords: number;
  classes: number;
  classNames: string[];
}

const FORMATS: Record<'cifar10' | 'cifar100', CifarFormat> = {
  cifar10: {
    title: 'CIFAR-10', tarFolder: 'cifar-10-batches-bin', train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: 'test_batch.bin',
    labelBytes: 1, trainRecords: 10_000, testRecords: 10_000, classes: 10, classNames: CIFAR10_CLASS_NAMES,
  },
  cifar100: {
    title: 'CIFAR-100', tarFolder: 'cifar-100-binary', train: ['train.bin'], test: 'test.bin',
    labelBytes: 2, trainRecords: 50_000, testRecords: 10_000, classes: 100, classNames: CIFAR100_FINE_CLASS_NAMES,
  },
};
const CIFAR100_COARSE_CLASSES = 20;

export interface CifarOptions {
  /**
   * Accept files holding any whole, non-zero number of records (small test files, subsets). Default
   * false: every file must hold the official count (10,000 per CIFAR-10 file; 50,000 / 10,000 in
   * CIFAR-100's train.bin / test.bin), which also catches a file truncated at a record boundary.
   */
  anyRecordCount?: boolean;
}

async function statOrUndefined(path: string): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** Record size in bytes of `kind`'s binary files. */
export function cifarRecordSize(kind: 'cifar10' | 'cifar100'): number {
  return FORMATS[kind].labelBytes + PIXELS;
}

/**
 * Loads CIFAR-10 or CIFAR-100 (fine labels) from the binary files directly in `dir`.
 * Images are byte / 255 in CHW order; mean/std are computed on the train split (float64; on the
 * full CIFAR-10 train set 0.4914, 0.4822, 0.4465 / 0.2470, 0.2435, 0.2616).
 * Throws DatasetError naming the directory or file and what to do, for a missing directory, a missing
 * file, a file whose size is not a whole number of records (or, unless `anyRecordCount`, not the
 * official count), and a label out of range (file, record index).
 */
export async function loadCifar(kind: 'cifar10' | 'cifar100', dir: string, options: CifarOptions = {}): Promise<DatasetSplit> {
  const format = FORMATS[kind];
  if (!format) throw new DatasetError(`unknown CIFAR kind "${String(kind)}" (cifar10 or cifar100)`);
  const dirStat = await statOrUndefined(dir);
  if (!dirStat) throw new DatasetError(`--data-dir ${dir} does not exist`);
  if (!dirStat.isDirectory()) throw new DatasetError(`--data-dir ${dir} is not a directory`);

  const files = [...format.train, format.test];
  const sizes: number[] = [];
  const missing: string[] = [];
  for (const f of files) {
    const s = await statOrUndefined(join(dir, f));
    if (!s || !s.isFile()) missing.push(f);
    sizes.push(s?.isFile() ? Number(s.size) : 0);
  }
  if (missing.length > 0) throw new DatasetError(await missingMessage(kind, dir, missing));

  const recordSize = cifarRecordSize(kind);
  const counts = files.map((f, i) => {
    const path = join(dir, f);
    const official = i < format.train.length ? format.trainRecords : format.testRecords;
    const expected = `${official * recordSize} bytes: ${official} records of ${recordSize}`;
    if (sizes[i] === 0 || sizes[i] % recordSize !== 0) {
      throw new DatasetError(`${format.title}: ${path} is ${sizes[i]} bytes, not a whole non-zero number of ${recordSize}-byte records ` +
        `(expected ${expected}); the file is truncated or not the ${format.title} binary version: download it again`);
    }
    const n = sizes[i] / recordSize;
    if (!options.anyRecordCount && n !== official) {
      throw new DatasetError(`${format.title}: ${path} is ${sizes[i]} bytes (${n} record${n === 1 ? '' : 's'}), expected ${expected}; the file is truncated or not the official one: download it again`);
    }
    return n;
  });

  const nTrain = counts.slice(0, -1).reduce((a, b) => a + b, 0);
  const train = emptyDataset(kind, nTrain);
  const test = emptyDataset(kind, counts[counts.length - 1]);
  let at = 0;
  for (let i = 0; i < format.train.length; i++) {
    await readRecords(kind, join(dir, files[i]), train, at, counts[i]);
    at += counts[i];
  }
  await readRecords(kind, join(dir, format.test), test, 0, test.labels.length);
  return { train, test, ...channelStats(train.images, train.shape) };
}

function emptyDataset(kind: 'cifar10' | 'cifar100', n: number): Dataset {
  const f = FORMATS[kind];
  return { name: kind, images: new Float32Array(n * PIXELS), labels: new Uint32Array(n), shape: [...CIFAR_SHAPE], classes: f.classes, classNames: [...f.classNames] };
}

/** byte → byte / 255 as float32 (the same value as torchvision's ToTensor). */
const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);

async function readRecords(kind: 'cifar10' | 'cifar100', path: string, into: Dataset, first: number, count: number): Promise<void> {
  const f = FORMATS[kind];
  const bytes = await readFile(path);
  const recordSize = f.labelBytes + PIXELS;
  if (bytes.length !== count * recordSize) throw new DatasetError(`${f.title}: ${path} changed while reading (${bytes.length} bytes, expected ${count * recordSize})`);
  for (let r = 0; r < count; r++) {
    const base = r * recordSize;
    if (kind === 'cifar100' && bytes[base] >= CIFAR100_COARSE_CLASSES) {
      throw new DatasetError(`${f.title}: ${path} record ${r} has coarse label ${bytes[base]}, expected 0..${CIFAR100_COARSE_CLASSES - 1} (is this the ${f.title} binary version?)`);
    }
    const label = bytes[base + f.labelBytes - 1];
    if (label >= f.classes) {
      throw new DatasetError(`${f.title}: ${path} record ${r} has ${kind === 'cifar100' ? 'fine ' : ''}label ${label}, expected 0..${f.classes - 1} (is this the ${f.title} binary version?)`);
    }
    into.labels[first + r] = label;
    const dst = (first + r) * PIXELS;
    const src = base + f.labelBytes;
    for (let k = 0; k < PIXELS; k++) into.images[dst + k] = BYTE_TO_UNIT[bytes[src + k]];
  }
}

async function missingMessage(kind: 'cifar10' | 'cifar100', dir: string, missing: string[]): Promise<string> {
  const f = FORMATS[kind];
  const other = kind === 'cifar10' ? 'cifar100' : 'cifar10';
  const all = [...f.train, f.test];
  let hint = '';
  if ((await statOrUndefined(join(dir, f.tarFolder)))?.isDirectory()) {
    hint = ` (${join(dir, f.tarFolder)} exists: pass --data-dir ${join(dir, f.tarFolder)})`;
  } else if ((await statOrUndefined(join(dir, FORMATS[other].test)))?.isFile()) {
    hint = ` (${dir} holds ${FORMATS[other].test}: is this ${FORMATS[other].title}?)`;
  }
  return `${f.title}: ${missing.join(', ')} not found in ${dir}${hint}. Download the ${f.title} binary version ` +
    `("binary version (suitable for C programs)") from https://www.cs.toronto.edu/~kriz/cifar.html and extract it so that ` +
    `${all.length > 2 ? `${all[0]} … ${all[all.length - 1]}` : all.join(' and ')} are directly in ${dir}`;
}
