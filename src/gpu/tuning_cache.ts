// The autotuner's cache: one JSON file per adapter (name, driver, backend) under the user's cache
// directory ($XDG_CACHE_HOME/densenet-wgsl/ or ~/.cache/densenet-wgsl/), holding the winning
// launch choice per kernel and shape. Written atomically; a file that cannot be read or parsed is
// reported and ignored (the defaults apply), never a crash: it is only a cache.

import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../base/atomic_file.js';
import type { AdapterProfile } from './profile.js';
import { TUNED_KERNELS, TuningTable, type TuningChoice } from './tuning.js';

export const TUNING_CACHE_FORMAT = 'densenet-wgsl-tuning';
export const TUNING_CACHE_VERSION = 1;

/** What identifies an adapter for the cache: the same chip under another driver or backend may want other choices. */
export interface AdapterIdentity { name: string; driver: string; backend: string }

/** One tuned site: the winner and what it measured against the default (milliseconds, median). */
export interface TuningCacheEntry {
  kernel: string;
  key: string;
  choice: TuningChoice;
  /** Name of the winning candidate (e.g. "default", "small", "blocks=4"). */
  candidate: string;
  ms: number;
  defaultMs: number;
  method: 'timestamp-query' | 'wall-clock';
}

interface CacheFile { format: string; version: number; adapter: AdapterIdentity; entries: TuningCacheEntry[] }

export function adapterIdentity(profile: Pick<AdapterProfile, 'name' | 'driver' | 'backend'>): AdapterIdentity {
  return { name: profile.name, driver: profile.driver, backend: profile.backend };
}

/** $XDG_CACHE_HOME/densenet-wgsl, else ~/.cache/densenet-wgsl (an empty XDG_CACHE_HOME counts as unset, as the spec says). */
export function tuningCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'densenet-wgsl');
}

/** The adapter's cache file: a readable slug of its name and a hash of its whole identity. */
export function tuningCachePath(identity: AdapterIdentity, dir = tuningCacheDir()): string {
  const slug = identity.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'adapter';
  const hash = createHash('sha256').update(JSON.stringify([identity.name, identity.driver, identity.backend])).digest('hex').slice(0, 12);
  return join(dir, `tuning-${slug}-${hash}.json`);
}

/** Why `data` is not a cache file for `identity`, or null when it is. */
function invalidReason(data: unknown, identity: AdapterIdentity): string | null {
  const f = data as Partial<CacheFile> | null;
  if (typeof f !== 'object' || f === null || f.format !== TUNING_CACHE_FORMAT) return `not a ${TUNING_CACHE_FORMAT} file`;
  if (f.version !== TUNING_CACHE_VERSION) return `version ${f.version}, this build reads ${TUNING_CACHE_VERSION}`;
  const a = f.adapter;
  if (!a || a.name !== identity.name || a.driver !== identity.driver || a.backend !== identity.backend) return 'written for another adapter';
  if (!Array.isArray(f.entries)) return 'no entries list';
  for (const e of f.entries) {
    const ok = typeof e === 'object' && e !== null && (TUNED_KERNELS as readonly string[]).includes(e.kernel) && typeof e.key === 'string' &&
      typeof e.choice === 'object' && e.choice !== null && validChoice(e.choice);
    if (!ok) return `a bad entry ${JSON.stringify(e).slice(0, 120)}`;
  }
  return null;
}

const whole = (v: unknown, max: number) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max;

function validChoice(c: TuningChoice): boolean {
  if (c.blocksPerInvocation !== undefined && !whole(c.blocksPerInvocation, 64)) return false;
  // A power of two (the kernel's rule; its upper bound, one workgroup, is checked when the op builds).
  if (c.splitChunk !== undefined && !whole(c.splitChunk, 2 ** 31)) return false;
  if (c.lanesPerPlane !== undefined && !(whole(c.lanesPerPlane, 1024) && (c.lanesPerPlane & (c.lanesPerPlane - 1)) === 0)) return false;
  const wt = c.workgroupTile;
  if (wt !== undefined) {
    // Whole numbers in range here; whether the adapter can run the tile is the kernel's check (checkWorkgroupTile) when the op builds.
    // A register tile with it is ambiguous (which variant?), so refused.
    return c.tile === undefined && typeof wt === 'object' && wt !== null &&
      whole(wt.m, 1024) && whole(wt.n, 1024) && whole(wt.k, 256) && whole(wt.rows, 64) && whole(wt.cols, 64);
  }
  const t = c.tile;
  if (t === undefined) return true;
  return typeof t === 'object' && t !== null && whole(t.rows, 128) && whole(t.cols, 128) && whole(t.workgroupSize, 1024) &&
    (t.unroll === undefined || whole(t.unroll, 16)) && (t.splits === undefined || whole(t.splits, 1024));
}

export interface LoadedTuning { table: TuningTable; entries: TuningCacheEntry[]; path: string }

/**
 * The adapter's cached table, or undefined when there is none. A file that cannot be read or is
 * not a valid cache for this adapter is reported through `warn` and ignored.
 */
export async function loadTuningCache(
  identity: AdapterIdentity, options: { dir?: string; warn?: (message: string) => void } = {},
): Promise<LoadedTuning | undefined> {
  const path = tuningCachePath(identity, options.dir);
  const warn = options.warn ?? ((m: string) => console.error(m));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    warn(`tune cache ${path} cannot be read (${(e as Error).message}); using the default launch choices`);
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    warn(`tune cache ${path} is corrupt (${(e as Error).message}); ignored, using the default launch choices (\`densenet-wgsl tune\` rewrites it)`);
    return undefined;
  }
  const reason = invalidReason(data, identity);
  if (reason) {
    warn(`tune cache ${path} is ignored (${reason}); using the default launch choices (\`densenet-wgsl tune\` rewrites it)`);
    return undefined;
  }
  const entries = (data as CacheFile).entries;
  return { table: new TuningTable(entries.map((e) => [e.kernel, e.key, e.choice])), entries, path };
}

/**
 * Merges `entries` into the adapter's cache file (new ones replace old ones of the same kernel and
 * shape; an unreadable old file is replaced) and writes it atomically. Returns the path.
 */
export async function saveTuningCache(identity: AdapterIdentity, entries: TuningCacheEntry[], options: { dir?: string } = {}): Promise<string> {
  const dir = options.dir ?? tuningCacheDir();
  const path = tuningCachePath(identity, dir);
  const old = await loadTuningCache(identity, { dir, warn: () => undefined });
  const merged = new Map<string, TuningCacheEntry>();
  for (const e of [...(old?.entries ?? []), ...entries]) merged.set(`${e.kernel} ${e.key}`, e);
  const file: CacheFile = { format: TUNING_CACHE_FORMAT, version: TUNING_CACHE_VERSION, adapter: identity, entries: [...merged.values()] };
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(path, [new TextEncoder().encode(`${JSON.stringify(file, null, 1)}\n`)]);
  return path;
}
