// Image folders as torchvision's ImageFolder reads them: DIR/<class>/**/<image>, classes sorted by
// name, files sorted within a class; the two layouts a folder dataset takes (DIR/train + DIR/val,
// or DIR/<class> split by --val-split, stratified and seeded); and every problem named by path.
// Only names are read here: decoding (and the report of undecodable files) is folder_load.ts's.

import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { IMAGE_EXTENSIONS } from '../images.js';
import { DatasetError } from './core.js';
import { mix32, permutation, Rng, STREAM } from './rng.js';

export interface FolderFile { path: string; label: number }
/** A file left out, and why (not an image by its name, could not be decoded). */
export interface SkippedFile { path: string; reason: string }

export interface ImageFolder {
  root: string;
  /** Sorted class (sub-folder) names; index = label. */
  classNames: string[];
  /** Class by class, each class's files in ImageFolder's order. */
  files: FolderFile[];
  skipped: SkippedFile[];
}

export interface FolderSplit {
  root: string;
  classNames: string[];
  train: FolderFile[];
  val: FolderFile[];
  skipped: SkippedFile[];
  /** How the split was made, for messages: 'DIR/train + DIR/val' or '--val-split 0.1 of DIR'. */
  layout: string;
}

/**
 * Python's sort order for str (by Unicode code point), which ImageFolder's sorted() uses: JavaScript's
 * default sort compares UTF-16 code units, which differs for characters beyond U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const fix = (dir: string) => `put each class's images in its own folder: ${join(dir, '<class>', '<image>.jpg')}`;

async function isDirectory(path: string): Promise<boolean> {
  // stat (not lstat): a symlink to a folder counts, as os.scandir's is_dir() and os.walk(followlinks=True) do.
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(`folder ${dir}: ${code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is a file, not a folder' : `cannot be read (${(e as Error).message})`}`);
  }
}

/**
 * The classes and image files under `root`, as ImageFolder finds them: sub-folders of `root` are the
 * classes (sorted); a class's images are every file below its folder (sub-folders included, walked
 * in sorted order) whose name ends in .jpg, .jpeg, .png or .webp (any case). Other files are not
 * dropped silently: they are listed in `skipped`. No class folders, or a class without an image,
 * is an error naming the folder and the fix.
 */
export async function scanImageFolder(root: string): Promise<ImageFolder> {
  const names = await entries(root);
  const classNames: string[] = [];
  const skipped: SkippedFile[] = [];
  for (const name of names) {
    if (await isDirectory(join(root, name))) classNames.push(name);
  }
  classNames.sort(compareCodePoints);
  if (classNames.length === 0) {
    const loose = names.filter((n) => IMAGE_EXTENSIONS.includes(extname(n).toLowerCase() as never)).length;
    throw new DatasetError(`folder ${root} has no class folders${loose ? ` (it holds ${loose} images directly)` : ''}: ${fix(root)}`);
  }
  const files: FolderFile[] = [];
  for (let label = 0; label < classNames.length; label++) {
    const classDir = join(root, classNames[label]);
    const found: string[] = [];
    await walk(classDir, found, skipped);
    if (found.length === 0) {
      throw new DatasetError(`class folder ${classDir} has no images (JPEG, PNG or WebP files)${skipped.some((s) => s.path.startsWith(classDir)) ? ', only other files' : ''}: add images to it or remove the folder`);
    }
    for (const path of found) files.push({ path, label });
  }
  return { root, classNames, files, skipped };
}

/** os.walk order as ImageFolder sorts it: folders by path, then each folder's file names sorted. */
async function walk(top: string, found: string[], skipped: SkippedFile[]): Promise<void> {
  const folders: string[] = [];
  const collect = async (dir: string) => {
    folders.push(dir);
    for (const name of await entries(dir)) if (await isDirectory(join(dir, name))) await collect(join(dir, name));
  };
  await collect(top);
  folders.sort(compareCodePoints);
  for (const dir of folders) {
    const names: string[] = [];
    for (const name of await entries(dir)) if (!(await isDirectory(join(dir, name)))) names.push(name);
    names.sort(compareCodePoints);
    for (const name of names) {
      const path = join(dir, name);
      if (IMAGE_EXTENSIONS.includes(extname(name).toLowerCase() as never)) found.push(path);
      else skipped.push({ path, reason: 'not a JPEG, PNG or WebP file by its name' });
    }
  }
}

/**
 * Per class, `fraction` of its files (rounded, at least 1 and at most all but 1) go to validation:
 * the first ones of a permutation of the class drawn from hash(seed, class). Both lists keep
 * ImageFolder's order. A class with fewer than 2 images cannot be split: an error naming it.
 */
export function stratifiedSplit(folder: ImageFolder, fraction: number, seed: number): { train: FolderFile[]; val: FolderFile[] } {
  if (!(fraction > 0 && fraction < 1)) throw new DatasetError(`--val-split must be a fraction in (0, 1), got ${fraction}`);
  const train: FolderFile[] = [];
  const val: FolderFile[] = [];
  for (let label = 0; label < folder.classNames.length; label++) {
    const members = folder.files.filter((f) => f.label === label);
    if (members.length < 2) {
      throw new DatasetError(`class folder ${join(folder.root, folder.classNames[label])} has ${members.length} image; --val-split needs at least 2 per class (one to train on, one to validate): add images`);
    }
    const count = Math.min(members.length - 1, Math.max(1, Math.round(fraction * members.length)));
    const order = permutation(members.length, new Rng(mix32(STREAM.folderSplit, seed, label)));
    const isVal = new Uint8Array(members.length);
    for (let k = 0; k < count; k++) isVal[order[k]] = 1;
    members.forEach((f, i) => (isVal[i] ? val : train).push(f));
  }
  return { train, val };
}

/**
 * The dataset in `dir`: DIR/train/<class> and DIR/val/<class> (same classes), or DIR/<class> split
 * by `valSplit`. Errors name the folder and say which layout to use.
 */
export async function scanFolderDataset(dir: string, o: { valSplit?: number; seed: number }): Promise<FolderSplit> {
  const trainDir = join(dir, 'train');
  const valDir = join(dir, 'val');
  if (await isDirectory(trainDir)) {
    if (o.valSplit !== undefined) {
      throw new DatasetError(`folder ${dir} is already split into train/ and val/; drop --val-split (it splits a folder of class folders, DIR/<class>/)`);
    }
    if (!(await isDirectory(valDir))) {
      throw new DatasetError(`folder ${dir} has train/ but no val/: add ${join(dir, 'val', '<class>')}/ folders, or give --data-dir ${trainDir} --val-split 0.1 to hold out part of train/`);
    }
    const train = await scanImageFolder(trainDir);
    const val = await scanImageFolder(valDir);
    const missing = train.classNames.filter((c) => !val.classNames.includes(c));
    const extra = val.classNames.filter((c) => !train.classNames.includes(c));
    if (missing.length || extra.length) {
      throw new DatasetError(`folders ${trainDir} and ${valDir} must hold the same classes: ` +
        [missing.length ? `val/ lacks ${missing.join(', ')}` : '', extra.length ? `train/ lacks ${extra.join(', ')}` : ''].filter(Boolean).join('; '));
    }
    return { root: dir, classNames: train.classNames, train: train.files, val: val.files, skipped: [...train.skipped, ...val.skipped], layout: `${trainDir} + ${valDir}` };
  }
  if (o.valSplit === undefined) {
    throw new DatasetError(`folder ${dir} has no train/ folder: give --val-split 0.1 to hold out 10% of each class of ${join(dir, '<class>')}/ for validation, ` +
      `or arrange it as ${join(dir, 'train', '<class>')}/ and ${join(dir, 'val', '<class>')}/`);
  }
  const all = await scanImageFolder(dir);
  const { train, val } = stratifiedSplit(all, o.valSplit, o.seed);
  return { root: dir, classNames: all.classNames, train, val, skipped: all.skipped, layout: `--val-split ${o.valSplit} of ${dir} (seed ${o.seed})` };
}
