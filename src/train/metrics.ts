// The metrics log of a training run (metrics.jsonl: one JSON object per line, appended and
// flushed as it happens, so a crash loses at most the line being written) and summary.json.
//
// Records carry a `type`; the trainer writes three kinds (others pass through untouched):
//   {"type":"step","epoch":3,"batch":17,"step":329,"loss":0.84,"accuracy":0.72,"lr":0.1}
//   {"type":"epoch","epoch":3,"trainLoss":0.8,"trainAccuracy":0.73,"testLoss":0.9,"testAccuracy":0.7,"seconds":41,"imagesPerSec":1210}
//   {"type":"resume","step":329,"epoch":2,"from":"runs/x/last.ckpt","changed":{"lr":{"from":0.1,"to":0.01}}}
// (a resume record's epoch is the number of epochs finished before it).
// `epoch` and `batch` count from 1 (a step record's epoch is the epoch in progress, an epoch
// record's the epoch just finished). JSON has no NaN/Infinity: such numbers are written as null.

import { appendFile, mkdir, readFile, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from './checkpoint.js';

export interface MetricsRecord { type: string; [field: string]: unknown }

export interface StepMetrics extends MetricsRecord {
  type: 'step';
  epoch: number;
  batch: number;
  step: number;
  loss: number;
  accuracy?: number;
  lr?: number;
  /** Batches per epoch, when known (the plot infers it otherwise). */
  batches?: number;
}

export interface EpochMetrics extends MetricsRecord {
  type: 'epoch';
  epoch: number;
  trainLoss?: number;
  trainAccuracy?: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds?: number;
  imagesPerSec?: number;
}

export class MetricsError extends Error {}

export function isStepRecord(r: unknown): r is StepMetrics {
  const s = r as Partial<StepMetrics> | null;
  return !!s && s.type === 'step' && typeof s.epoch === 'number' && typeof s.batch === 'number' && typeof s.step === 'number';
}

export function isEpochRecord(r: unknown): r is EpochMetrics {
  const e = r as Partial<EpochMetrics> | null;
  return !!e && e.type === 'epoch' && typeof e.epoch === 'number';
}

// Appends to one file are chained so that calls not awaited still land in call order.
const queues = new Map<string, Promise<void>>();
const repaired = new Set<string>();

/**
 * Appends one record as a line to `path` (creating its directory), and returns once the line is
 * written. The first append to a file in this process drops a torn last line (no newline: the
 * previous run died mid-write) so the new lines do not run into it.
 */
export function appendMetrics(path: string, record: MetricsRecord): Promise<void> {
  if (!record || typeof record !== 'object' || typeof record.type !== 'string') {
    return Promise.reject(new MetricsError(`metrics ${path}: a record needs a string "type" field, got ${JSON.stringify(record)}`));
  }
  const line = `${JSON.stringify(record)}\n`;
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(async () => {
    if (!repaired.has(path)) {
      await mkdir(dirname(path), { recursive: true });
      await dropTornLine(path);
      repaired.add(path);
    }
    try {
      await appendFile(path, line, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(dirname(path), { recursive: true }); // the directory was removed since the first append
      await appendFile(path, line, 'utf8');
    }
  });
  queues.set(path, next);
  void next.finally(() => { if (queues.get(path) === next) queues.delete(path); }).catch(() => undefined);
  return next;
}

async function dropTornLine(path: string): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (bytes.length === 0 || bytes[bytes.length - 1] === 0x0a) return;
  await truncate(path, bytes.lastIndexOf(0x0a) + 1);
}

/**
 * Reads a metrics log. A torn last line is skipped; any other line that is not a JSON object with
 * a string `type` is a MetricsError naming the file and line. With `rewind` (the default), a run
 * resumed from an earlier checkpoint supersedes what the log holds past that point: a step record
 * drops earlier step records of the same or a later step and epoch records of its epoch or later;
 * an epoch record drops earlier epoch records of the same or a later epoch.
 */
export async function readMetrics(path: string, options: { rewind?: boolean } = {}): Promise<MetricsRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MetricsError(`metrics ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n');
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  let records: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    let r: unknown;
    try {
      r = JSON.parse(lines[i]);
    } catch (e) {
      if (i === torn) break;
      throw new MetricsError(`metrics ${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (!r || typeof r !== 'object' || Array.isArray(r) || typeof (r as MetricsRecord).type !== 'string') {
      if (i === torn) break;
      throw new MetricsError(`metrics ${path}:${i + 1}: not a JSON object with a string "type" field`);
    }
    const record = r as MetricsRecord;
    if (options.rewind ?? true) {
      if (isStepRecord(record)) {
        records = records.filter((p) => !(isStepRecord(p) && p.step >= record.step) && !(isEpochRecord(p) && p.epoch >= record.epoch));
      } else if (isEpochRecord(record)) {
        records = records.filter((p) => !(isEpochRecord(p) && p.epoch >= record.epoch));
      }
    }
    records.push(record);
  }
  return records;
}

/**
 * Rewinds the metrics log `from` to a checkpoint taken after `step` steps and `epochs` finished
 * epochs, and writes it atomically to `to` (the same file, or a resumed run's new --out): later
 * lines supersede earlier ones as in readMetrics, then step records past `step`, epoch records
 * past `epochs` and any other record with a `step` past it are dropped (a run killed after its
 * last checkpoint logged steps the checkpoint does not hold). Returns how many lines were dropped;
 * a missing `from` leaves everything as it is (0).
 */
export async function rewindMetricsLog(from: string, to: string, at: { step: number; epochs: number }): Promise<number> {
  let lines: number;
  let records: MetricsRecord[];
  try {
    lines = (await readFile(from, 'utf8')).split('\n').filter((l) => l.trim() !== '').length;
    records = await readMetrics(from);
  } catch (e) {
    const error = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    if ((error.code ?? error.cause?.code) === 'ENOENT') return 0;
    throw e;
  }
  const kept = records.filter((r) => {
    if (isEpochRecord(r)) return r.epoch <= at.epochs;
    return !(typeof r.step === 'number' && r.step > at.step);
  });
  if (kept.length === lines && from === to) return 0;
  await mkdir(dirname(to), { recursive: true });
  await writeFileAtomic(to, [new TextEncoder().encode(kept.map((r) => `${JSON.stringify(r)}\n`).join(''))]);
  return lines - kept.length;
}

/** Writes summary.json atomically (pretty-printed, creating the directory). */
export async function writeSummary(path: string, summary: object): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, [new TextEncoder().encode(`${JSON.stringify(summary, null, 2)}\n`)]);
}

/** Reads a JSON file such as summary.json, with errors that name the file. */
export async function readSummary(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new MetricsError(`summary ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new MetricsError(`summary ${path}: not valid JSON (${(e as Error).message})`);
  }
}
