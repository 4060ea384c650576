// A folder dataset ready to train on: the folders scanned (folder.ts), every image decoded once up
// front (so that an unreadable file is reported by name before any GPU work, never found mid-run),
// normalization chosen, and the images either kept in memory or streamed:
// - models with a small input (the CIFAR and digits presets, any non-ImageNet stem) keep every image
//   decoded at the input size (C·H·W float32 each: 12 KiB at 32×32 RGB) and train through
//   BatchStream like MNIST and CIFAR (pad-4 crop + flip);
// - ImageNet-stem models (224) cannot hold a folder in memory, so their images are decoded again per
//   batch (folder_stream.ts) with RandomResizedCrop + flip, and evaluated with resize + centre crop.

import { freeMemoryBytes } from '../../base/host.js';
import { decodeImageFile } from '../images.js';
import { evalInput, IMAGENET_MEAN, IMAGENET_STD, preprocessingFor, type Preprocessing } from '../preprocessing.js';
import type { DenseNetConfig } from '../../models/densenet_config.js';
import { channelStats, DatasetError, type Dataset, type DatasetSplit } from './core.js';
import { scanFolderDataset, type FolderFile, type SkippedFile } from './folder.js';
import { mix32, permutation, Rng, STREAM } from './rng.js';

/** A split whose images stay on disk: decoded per batch. */
export interface StreamedSet {
  name: 'folder';
  files: string[];
  labels: Uint32Array;
  shape: [number, number, number];
  classes: number;
  classNames: string[];
}

export interface StreamedSplit { train: StreamedSet; test: StreamedSet; mean: number[]; std: number[] }

export interface FolderData {
  split: DatasetSplit | StreamedSplit;
  streamed: boolean;
  preprocessing: Preprocessing;
  skipped: SkippedFile[];
  /** One line for the run's output: layout, counts, normalization. */
  description: string;
}

export function isStreamed(d: Dataset | StreamedSet): d is StreamedSet {
  return 'files' in d;
}

export interface FolderOptions {
  dataDir: string;
  valSplit?: number;
  seed: number;
  limit?: number;
  /** Default: 'imagenet' for 3-channel models, 'dataset' for 1-channel ones. */
  normalize?: 'imagenet' | 'dataset';
  augment: boolean;
  /**
   * Bytes the in-memory images may take (default: half the memory available when loading starts).
   * Above it the run is refused before decoding, naming the size and the fixes, instead of the
   * process dying of memory after minutes of decoding.
   */
  memoryBudgetBytes?: number;
}

/** Images decoded at once while checking (sharp decodes on libuv's thread pool). */
const IN_FLIGHT = 16;

/** Runs `work` on every item with at most `limit` in flight; results in item order. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** `count` of `files`, a seeded choice (so --limit takes every class, not the first ones in name order). */
export function take(files: FolderFile[], count: number, seed: number, which: number): FolderFile[] {
  if (count >= files.length) return files;
  const order = permutation(files.length, new Rng(mix32(STREAM.folderSplit, seed, 0xffff, which)));
  return Array.from(order.subarray(0, count)).sort((a, b) => a - b).map((i) => files[i]);
}

export async function loadFolderData(o: FolderOptions, config: DenseNetConfig, log: (line: string) => void = () => {}): Promise<FolderData> {
  const [c, h, w] = config.inputShape;
  const normalize = o.normalize ?? (c === 3 ? 'imagenet' : 'dataset');
  if (normalize === 'imagenet' && c !== 3) {
    throw new DatasetError(`--normalize imagenet needs a model with 3 input channels; ${config.name} takes ${c}: use --normalize dataset`);
  }
  const scanned = await scanFolderDataset(o.dataDir, { valSplit: o.valSplit, seed: o.seed });
  let train = scanned.train;
  let val = scanned.val;
  if (o.limit !== undefined) {
    const valCount = Math.max(1, Math.round((o.limit * val.length) / train.length));
    train = take(train, o.limit, o.seed, 0);
    val = take(val, valCount, o.seed, 1);
  }
  const streamed = config.stem === 'imagenet';
  const plane = c * h * w;
  const preprocessingWithout = preprocessingFor(config, { mean: [], std: [], normalize }, o.augment);
  // Decode everything once: broken files are found now, by name; small inputs are kept.
  const skipped: SkippedFile[] = [...scanned.skipped];
  // Streamed sets keep nothing: their check decodes, and --normalize dataset sums Σx and Σx² per
  // channel (float64; values in [0, 1], so the one-pass variance loses nothing that matters).
  const sums = new Float64Array(2 * c);
  let summed = 0;
  if (!streamed) {
    const budget = o.memoryBudgetBytes === undefined ? { bytes: freeMemoryBytes() / 2, what: ' (half the memory available now)' } : { bytes: o.memoryBudgetBytes, what: '' };
    checkMemory(scanned.root, train.length, val.length, [c, h, w], budget);
  }
  const decodeSplit = async (files: FolderFile[], isTrain: boolean) => {
    const keep = !streamed;
    // Each image is written into its place in one array as it is decoded: the split's images are
    // never held twice (once per image and once together).
    const held = new Float32Array(keep ? files.length * plane : 0);
    const inputs = await mapConcurrent(files, IN_FLIGHT, async (f, i): Promise<true | undefined> => {
      try {
        const image = await decodeImageFile(f.path);
        if (keep) {
          held.set(evalInput(image, preprocessingWithout), i * plane);
          return true;
        }
        if (isTrain && normalize === 'dataset') {
          const x = evalInput(image, preprocessingWithout);
          for (let ch = 0; ch < c; ch++) {
            for (let k = ch * h * w; k < (ch + 1) * h * w; k++) { sums[2 * ch] += x[k]; sums[2 * ch + 1] += x[k] * x[k]; }
          }
          summed++;
        }
        return true;
      } catch (e) {
        skipped.push({ path: f.path, reason: (e as Error).message.startsWith(f.path) ? (e as Error).message.slice(f.path.length + 2) : (e as Error).message });
        return undefined;
      }
    });
    const kept = files.filter((_, i) => inputs[i] !== undefined);
    // Close the gaps that unreadable files left, in place; the tail is cut off only where there was one.
    let at = 0;
    inputs.forEach((ok, i) => { if (ok && keep) held.copyWithin(plane * at++, plane * i, plane * (i + 1)); });
    const images = !keep || kept.length === files.length ? held : held.slice(0, kept.length * plane);
    return { kept, images };
  };
  const decodedTrain = await decodeSplit(train, true);
  const decodedVal = await decodeSplit(val, false);
  reportSkipped(skipped, log);
  for (const [what, d] of [['training', decodedTrain], ['validation', decodedVal]] as const) {
    const present = new Set(d.kept.map((f) => f.label));
    const empty = scanned.classNames.filter((_, label) => !present.has(label));
    if (empty.length) throw new DatasetError(`folder ${scanned.root}: no readable ${what} image is left in class ${empty.join(', ')} (see the files reported above): add images`);
  }
  const shape: [number, number, number] = [c, h, w];
  const streamedStats = () => {
    const n = summed * h * w;
    const mean = Array.from({ length: c }, (_, ch) => sums[2 * ch] / n);
    return { mean, std: mean.map((m, ch) => Math.sqrt(Math.max(0, sums[2 * ch + 1] / n - m * m))) };
  };
  const stats = normalize === 'imagenet' ? { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] } : streamed ? streamedStats() : channelStats(decodedTrain.images, shape);
  const preprocessing: Preprocessing = { ...preprocessingWithout, mean: stats.mean, std: stats.std };
  const classes = scanned.classNames.length;
  const labelsOf = (files: FolderFile[]) => Uint32Array.from(files.map((f) => f.label));
  const description = `${scanned.layout}: ${classes} classes, ${decodedTrain.kept.length} training and ${decodedVal.kept.length} validation images; ` +
    `normalized with ${normalize === 'imagenet' ? "ImageNet's" : "the training set's"} mean [${stats.mean.map((v) => v.toFixed(4)).join(', ')}] and std [${stats.std.map((v) => v.toFixed(4)).join(', ')}]; ` +
    (streamed ? `decoded per batch (${preprocessing.augment === 'random-resized-crop' ? 'RandomResizedCrop + flip' : 'no augmentation'}; evaluation: resize ${preprocessing.resizeTo}, centre crop ${h})` :
      `held in memory at ${c}×${h}×${w} (${((decodedTrain.images.byteLength + decodedVal.images.byteLength) / 2 ** 20).toFixed(1)} MiB)`);
  if (streamed) {
    const set = (files: FolderFile[]): StreamedSet => ({ name: 'folder', files: files.map((f) => f.path), labels: labelsOf(files), shape, classes, classNames: [...scanned.classNames] });
    return { split: { train: set(decodedTrain.kept), test: set(decodedVal.kept), ...stats }, streamed, preprocessing, skipped, description };
  }
  const dataset = (d: { kept: FolderFile[]; images: Float32Array }): Dataset => ({
    name: 'folder', images: d.images, labels: labelsOf(d.kept), shape, classes, classNames: [...scanned.classNames],
  });
  return { split: { train: dataset(decodedTrain), test: dataset(decodedVal), ...stats }, streamed, preprocessing, skipped, description };
}

/** Refuses a folder whose images would not fit `budgetBytes` in memory, before any is decoded. */
function checkMemory(root: string, train: number, val: number, [c, h, w]: [number, number, number], budget: { bytes: number; what: string }): void {
  const bytes = (train + val) * c * h * w * 4;
  if (bytes <= budget.bytes) return;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  // --limit counts training images and takes validation images in proportion.
  const limit = Math.floor((budget.bytes / (c * h * w * 4)) * (train / (train + val)));
  throw new DatasetError(`folder ${root}: its ${(train + val).toLocaleString('en-US')} images at ${c}×${h}×${w} would take ${gib(bytes)} in memory, ` +
    `more than the ${gib(budget.bytes)} it may${budget.what}: use --limit ${limit} or less, ` +
    'free memory, or train a model with an ImageNet stem, whose images are decoded per batch instead of held');
}

/**
 * An evaluation set of image files, streamed: every file decoded once first, so that an unreadable
 * one is reported by name (and left out) before any GPU work. `classes`/`classNames` are the
 * model's (the labels index them).
 */
export async function loadEvalFiles(files: FolderFile[], shape: [number, number, number], classNames: string[], log: (line: string) => void): Promise<StreamedSet> {
  const skipped: SkippedFile[] = [];
  const ok = await mapConcurrent(files, IN_FLIGHT, async (f) => {
    try {
      await decodeImageFile(f.path);
      return true;
    } catch (e) {
      skipped.push({ path: f.path, reason: (e as Error).message.startsWith(f.path) ? (e as Error).message.slice(f.path.length + 2) : (e as Error).message });
      return false;
    }
  });
  reportSkipped(skipped, log);
  const kept = files.filter((_, i) => ok[i]);
  if (kept.length === 0) throw new DatasetError('no readable image is left to evaluate (see the files reported above)');
  return { name: 'folder', files: kept.map((f) => f.path), labels: Uint32Array.from(kept.map((f) => f.label)), shape, classes: classNames.length, classNames };
}

/** Files left out, by name, with their count (never dropped without a word). */
export function reportSkipped(skipped: SkippedFile[], log: (line: string) => void): void {
  if (skipped.length === 0) return;
  const shown = skipped.slice(0, 50).map((s) => `  ${s.path}: ${s.reason}`);
  log(`skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} that ${skipped.length === 1 ? 'is' : 'are'} not a readable JPEG, PNG or WebP image:\n${shown.join('\n')}` +
    (skipped.length > 50 ? `\n  … and ${skipped.length - 50} more` : ''));
}
