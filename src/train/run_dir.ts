// The output directory of a training run, checked before any GPU work: it must be a directory we
// can write to, an earlier run in it is never overwritten without --overwrite, and temporary
// checkpoint files left by killed runs are cleaned up.

import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { readCheckpointHeader } from './checkpoint.js';
import { rewindMetricsLog } from './metrics.js';
import { OptionsError, type TrainOptions } from './options.js';

/** The files a run writes into its --out directory; any of them there means a run lives there. */
export const RUN_FILES = ['metrics.jsonl', 'last.ckpt', 'best.ckpt', 'summary.json', 'plot.svg'] as const;

/** A temporary file of writeFileAtomic (checkpoint.ts): `${path}.tmp-${pid}-${random hex}`. */
const TEMP_FILE = /^(.+)\.tmp-(\d+)-[0-9a-f]+$/;

export interface ExistingRun {
  /** The run files found, in RUN_FILES order. */
  files: string[];
  /** One line on what the run is, e.g. `model digits-fast on mnist, 2 of 6 epochs done (step 250)`. */
  description: string;
}

/**
 * Gets --out ready, before any GPU work: a directory we can write to; an earlier run there is
 * refused unless it is the run being resumed, or --overwrite deletes it first; temporary files
 * of killed runs are removed; on resume the metrics log is rewound to the checkpoint (copied into
 * a new --out). `savedAt`: the resumed checkpoint's steps and finished epochs. Returns how many
 * metrics lines the rewind dropped.
 */
export async function prepareRunDir(o: TrainOptions, savedAt: { step: number; epochs: number } | undefined, log: (line: string) => void): Promise<number> {
  await prepareOutDir(o.outDir);
  const sameRun = o.resume !== undefined && resolve(dirname(o.resume)) === resolve(o.outDir);
  if (sameRun && o.overwrite) {
    throw new OptionsError(`train: --overwrite would delete the run that --resume ${o.resume} continues; drop --overwrite (or give another --out)`);
  }
  if (!sameRun) {
    const existing = await findExistingRun(o.outDir);
    if (existing && !o.overwrite) throw existingRunError(o.outDir, existing);
    if (existing) {
      await removeRun(o.outDir, existing);
      log(`--overwrite: deleted the earlier run in ${o.outDir} (${existing.description}; ${existing.files.join(', ')})`);
    }
  }
  const stale = await removeStaleTempFiles(o.outDir);
  if (stale.length > 0) log(`removed ${stale.length} temporary file${stale.length > 1 ? 's' : ''} left by killed runs in ${o.outDir}: ${stale.join(', ')}`);
  if (!savedAt) return 0;
  return rewindMetricsLog(join(dirname(o.resume!), 'metrics.jsonl'), join(o.outDir, 'metrics.jsonl'), savedAt);
}

/** Makes `outDir` (and its parents) and proves it writable, with a message that names the problem instead of an errno. */
export async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    const probe = join(outDir, `.write-test-${process.pid}`);
    await (await open(probe, 'w')).close();
    await rm(probe, { force: true });
  } catch (e) {
    throw outDirError(outDir, e as NodeJS.ErrnoException, await blockingFile(outDir));
  }
}

/** The error for an --out that cannot hold a run (exported for tests: EACCES cannot be provoked as root). */
export function outDirError(outDir: string, e: NodeJS.ErrnoException, file?: string): OptionsError {
  const code = e.code ?? '';
  if ((code === 'EEXIST' || code === 'ENOTDIR') && file) {
    return new OptionsError(`train: --out ${outDir}: ${file === resolve(outDir) ? 'it is' : `${file} is`} a file, not a directory; give --out a directory (new or holding no run)`);
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new OptionsError(`train: --out ${outDir}: cannot write there (${code === 'EROFS' ? 'read-only file system' : 'permission denied'}); give --out a directory you can write to`);
  }
  return new OptionsError(`train: --out ${outDir}: cannot create or write the directory (${e.message})`);
}

/** The nearest existing path at or above `outDir` when it is not a directory (what blocks mkdir). */
async function blockingFile(outDir: string): Promise<string | undefined> {
  for (let p = resolve(outDir); ; p = dirname(p)) {
    try {
      return (await stat(p)).isDirectory() ? undefined : p;
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

/** The run in `outDir`, if there is one: which of its files exist and what it was. */
export async function findExistingRun(outDir: string): Promise<ExistingRun | undefined> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return undefined;
  }
  const files = RUN_FILES.filter((f) => names.includes(f));
  if (files.length === 0) return undefined;
  return { files, description: await describeRun(outDir, files) };
}

async function describeRun(outDir: string, files: string[]): Promise<string> {
  if (files.includes('summary.json')) {
    try {
      const s = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
      const status = typeof s.status === 'string' ? `, ${s.status}` : s.stoppedEarly ? ', stopped early' : '';
      const accuracy = typeof s.testAccuracy === 'number' ? `, test accuracy ${(100 * s.testAccuracy).toFixed(2)}%` : '';
      return `model ${String(s.model)} on ${String(s.dataset)}, ${String(s.epochs)} epoch${s.epochs === 1 ? '' : 's'} done${accuracy}${status}`;
    } catch { /* fall through to the checkpoint */ }
  }
  for (const name of ['last.ckpt', 'best.ckpt']) {
    if (!files.includes(name)) continue;
    const header = await readCheckpointHeader(join(outDir, name));
    const config = header?.config as { name?: string } | undefined;
    const options = header?.options as { dataset?: string; epochs?: number } | undefined;
    const progress = header?.progress as { epoch?: number } | undefined;
    if (config?.name) {
      return `model ${config.name} on ${options?.dataset ?? '?'}, ${progress?.epoch ?? '?'} of ${options?.epochs ?? '?'} epochs done (step ${String(header!.stepsTaken)}, from ${name})`;
    }
  }
  return 'nothing in it tells which model';
}

/** The refusal for a run found in --out, naming the run and the three ways on. */
export function existingRunError(outDir: string, run: ExistingRun): OptionsError {
  const last = join(outDir, 'last.ckpt');
  return new OptionsError(`train: --out ${outDir} already holds a run (${run.description}; ${run.files.join(', ')}). ` +
    `Nothing was changed. ${run.files.includes('last.ckpt') ? `To continue it: --resume ${last}` : 'It has no last.ckpt to --resume from'}; ` +
    `to keep it: another --out; to replace it: --overwrite (deletes ${run.files.join(', ')})`);
}

/** Deletes the run files of `outDir` (--overwrite); returns the names removed. */
export async function removeRun(outDir: string, run: ExistingRun): Promise<string[]> {
  for (const f of run.files) await rm(join(outDir, f), { force: true });
  return run.files;
}

/** Whether process `pid` exists: signal 0 checks without sending anything (EPERM: it exists, owned by another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temporary files (`NAME.tmp-PID-RANDOM`) that runs killed mid-write left in `outDir`:
 * only those whose PID is no live process (a live one may be writing it right now). Returns the names removed.
 */
export async function removeStaleTempFiles(outDir: string, alive: (pid: number) => boolean = processAlive): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    const m = TEMP_FILE.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    await rm(join(outDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
