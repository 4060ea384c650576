// `densenet-wgsl tune`, and the tuning flags of the commands that run a model (--tune,
// --no-tune-cache): the per-adapter cache of launch choices is attached to the device as it opens,
// so every graph built on it consults the table (no entry: the kernel's default).

import { openDevice, type Gpu, type OpenDeviceOptions } from '../gpu/device.js';
import { setTuning, TuningTable } from '../gpu/tuning.js';
import { adapterIdentity, loadTuningCache, saveTuningCache } from '../gpu/tuning_cache.js';
import { checkFreeze, checkStrategy, type FreezePart, type MemoryStrategy } from '../models/densenet_graph.js';
import { baseModelConfig } from '../train/trainer.js';
import { ADAPTER_FLAGS, adapterOptions, UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { cacheEntries, formatSiteResult, keptDefault, tuneTargets, type TuneTarget } from './tuner.js';
import { compareWholeStep } from './tune_verify.js';

/** Flags of train, eval, predict, features and the bench commands. */
export const TUNE_FLAGS: FlagSpec[] = [
  { name: 'tune', type: 'boolean', help: 'tune the launch choices for this run\'s model and batch first (see `tune`), and cache them' },
  { name: 'no-tune-cache', type: 'boolean', help: 'ignore the tuning cache of this adapter (every kernel\'s default choices)' },
];

/** Defaults of `--tune` inside another command: few repetitions, a bounded time. */
const RUN_TUNE = { reps: 3, budgetSeconds: 300 };

export const TUNE_COMMAND_FLAGS: FlagSpec[] = [
  { name: 'model', type: 'string', help: 'preset name or a JSON config file (required)' },
  { name: 'batch', type: 'number', help: 'batch size', default: 16 },
  { name: 'memory', type: 'string', help: 'memory strategy of the graph tuned: naive, shared, recompute or fused', default: 'fused' },
  { name: 'reps', type: 'number', help: 'timed repetitions per candidate (interleaved; the median counts)', default: 3 },
  { name: 'budget', type: 'number', help: 'seconds: no new candidate or kernel shape is started after this; the rest keep their defaults', default: 300 },
  { name: 'inference', type: 'boolean', help: 'tune the inference graph only (default: the training graph, which holds the inference kernels too)' },
  { name: 'freeze', type: 'string', help: 'none, or features: the training graph of train --freeze features (features as in inference, only the classifier trained)', default: 'none' },
  ...ADAPTER_FLAGS,
];

function checkFreezeFlag(value: unknown): FreezePart {
  try { return checkFreeze(String(value ?? 'none')); } catch (e) { throw new UsageError(`tune: ${(e as Error).message}`); }
}

function positive(flags: ParsedFlags, name: string, whole: boolean): number {
  const v = flags[name] as number;
  if (!(v > 0) || (whole && !Number.isInteger(v))) throw new UsageError(`tune: --${name} must be a ${whole ? 'whole ' : ''}number > 0, got ${v}`);
  return v;
}

/**
 * Tunes `targets` on `gpu`, prints the choices, checks the whole step of the first target with
 * them against the defaults (slower: the defaults are kept), merges the winners into the adapter's
 * cache and returns them as a table.
 */
async function tuneAndSave(gpu: Gpu, targets: TuneTarget[], o: { reps: number; budgetSeconds: number }, log: (line: string) => void): Promise<TuningTable> {
  const p = gpu.profile;
  const software = p.class === 'software' ? ' — a software adapter: the CPU emulates the GPU, and these ratios say little about a real GPU' : '';
  log(`tuning on ${p.name} (${p.class}, driver "${p.driver}", backend ${p.backend})${software}`);
  const describe = (t: TuneTarget) => `${t.config.name} batch ${t.batch} ${t.memory}${t.training ? '' : ' inference'}${t.freeze ? `, --freeze ${t.freeze}` : ''}`;
  const report = await tuneTargets(gpu, targets, {
    ...o, onSite: (r, k, n) => log(`[${k}/${n}] ${formatSiteResult(r)}`),
  });
  let results = report.results;
  const changed = results.filter((r) => !keptDefault(r)).length;
  const timing = results[0]?.method ?? (gpu.hasTimestamps ? 'timestamp-query' : 'wall-clock');
  log(`${targets.map(describe).join(', ')}: ${report.sites} distinct kernel shapes, ${results.length} tuned (${changed} not the default)` +
    `${report.skipped.length ? `, ${report.skipped.length} skipped (--budget ${o.budgetSeconds} s ran out; they keep the default)` : ''}; ` +
    `${o.reps} reps, median, ${timing} timing; tuning took ${report.seconds.toFixed(1)} s`);
  if (changed > 0) {
    const started = performance.now();
    const fresh = new TuningTable(cacheEntries(results).map((e) => [e.kernel, e.key, e.choice]));
    const check = await compareWholeStep(gpu, targets[0], fresh, Math.max(5, o.reps));
    const slower = check.tunedMs > check.defaultMs;
    log(`whole step of ${describe(targets[0])}${targets[0].training ? ' (training)' : ''}: tuned ${check.tunedMs.toFixed(2)} ms vs default ` +
      `${check.defaultMs.toFixed(2)} ms (${(check.tunedMs / check.defaultMs).toFixed(2)}×, median of ${check.steps} interleaved steps, ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s)` + (slower ? '; slower with the tuned choices, so the defaults are kept' : ''));
    if (slower) results = results.map((r) => ({ ...r, winner: r.timed[0] }));
  }
  const entries = cacheEntries(results);
  const path = await saveTuningCache(adapterIdentity(p), entries);
  log(`cache: ${path}`);
  return new TuningTable(entries.map((e) => [e.kernel, e.key, e.choice]));
}

/**
 * Attaches the tuning table to a newly opened device: tunes first with --tune (for `targets()`),
 * then reads this adapter's cache unless --no-tune-cache (with both, only the fresh results count).
 */
export async function applyTuning(gpu: Gpu, flags: ParsedFlags, targets: () => TuneTarget[], log: (line: string) => void = console.error): Promise<void> {
  let fresh: TuningTable | undefined;
  if (flags.tune) {
    const list = targets();
    if (list.length === 0) throw new UsageError('--tune: this command names no model to tune for; run `densenet-wgsl tune --model M --batch B`');
    fresh = await tuneAndSave(gpu, list, RUN_TUNE, log);
  }
  if (flags['no-tune-cache']) { setTuning(gpu, fresh); return; }
  const loaded = await loadTuningCache(adapterIdentity(gpu.profile), { warn: log });
  setTuning(gpu, loaded?.table ?? fresh);
  if (loaded) log(`tune cache: ${loaded.table.size} launch choices for this adapter from ${loaded.path}`);
}

/** The adapter flags' device options, plus the tuning table attached as the device opens. */
export function tunedAdapterOptions(flags: ParsedFlags, targets: () => TuneTarget[] = () => []): OpenDeviceOptions {
  return { ...adapterOptions(flags), afterOpen: (gpu) => applyTuning(gpu, flags, targets) };
}

/** A run's model as a tuning target (the model flag's preset or JSON file). */
export function tuneTarget(model: string, batch: number, memory: string, training: boolean, freeze?: FreezePart): TuneTarget {
  return { config: baseModelConfig(model), batch, memory: checkStrategy(memory) as MemoryStrategy, training, ...(training && freeze && freeze !== 'none' ? { freeze } : {}) };
}

export async function runTune(flags: ParsedFlags, log: (line: string) => void = console.log): Promise<void> {
  const model = flags.model as string | undefined;
  if (!model) throw new UsageError('tune: --model is required (a preset name such as densenet-bc-100-12, or a JSON config file)');
  const batch = positive(flags, 'batch', true);
  const reps = positive(flags, 'reps', true);
  const budgetSeconds = positive(flags, 'budget', false);
  const memory = flags.memory as string;
  if (!['naive', 'shared', 'recompute', 'fused'].includes(memory)) throw new UsageError(`tune: --memory must be naive, shared, recompute or fused, got "${memory}"`);
  const config = baseModelConfig(model);
  const training = !flags.inference && config.classes !== null;
  if (training && batch < 2) throw new UsageError('tune: a training graph needs --batch >= 2 (or give --inference)');
  const freeze = checkFreezeFlag(flags.freeze);
  if (freeze !== 'none' && !training) throw new UsageError('tune: --freeze goes with the training graph, not --inference (an inference graph has nothing to freeze)');
  const gpu = await openDevice(adapterOptions(flags));
  try {
    await tuneAndSave(gpu, [tuneTarget(model, batch, memory, training, freeze)], { reps, budgetSeconds }, log);
  } finally {
    gpu.close();
  }
}
