// The `densenet-wgsl bench ...` commands: checks each one's flag values and runs its benchmark.
// This is the entry of the benchmarks' own bundle (dist/bench.js), which the CLI loads at run time
// (see src/base/bench_entry.ts); the flags themselves are declared in src/cli/bench_commands.ts.

import type { BenchContext, BenchEntry } from '../src/base/bench_entry.js';
import { UsageError } from '../src/base/usage_error.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';
import { preset } from '../src/models/presets.js';
import type { TrainImpl } from './train_report.js';

type Flags = Record<string, string | number | boolean | undefined>;

const list = (v: unknown) => (v === undefined ? undefined : String(v).split(',').map((s) => s.trim()).filter(Boolean));

function wholeNumber(command: string, flag: string, value: unknown, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min) throw new UsageError(`bench ${command}: --${flag} must be a whole number >= ${min}, got ${value}`);
  return value as number;
}

function positive(command: string, flag: string, value: unknown, unit: string): number {
  if (!((value as number) > 0)) throw new UsageError(`bench ${command}: --${flag} must be > 0 ${unit}, got ${value}`);
  return value as number;
}

/** --tfjs-memory-cap in GB → bytes. */
function tfjsMemoryCap(command: string, flags: Flags): number | undefined {
  const cap = flags['tfjs-memory-cap'];
  return cap === undefined ? undefined : positive(command, 'tfjs-memory-cap', cap, 'GB') * 1e9;
}

/** Preset names checked here: an unknown one is the user's mistake, named before any GPU work. */
function presets(command: string, names: string[] | undefined): string[] | undefined {
  for (const name of names ?? []) {
    try { preset(name); } catch (e) { throw new UsageError(`bench ${command}: ${(e as Error).message}`); }
  }
  return names;
}

async function ops(flags: Flags, context: BenchContext): Promise<void> {
  const reps = wholeNumber('ops', 'reps', flags.reps, 1);
  const { runOpsBenchmark } = await import('./ops.js');
  await runOpsBenchmark({ json: flags.json as string | undefined, reps, ops: list(flags.ops), device: context.device });
}

async function train(flags: Flags, context: BenchContext): Promise<void> {
  const { TRAIN_IMPLS } = await import('./train_report.js');
  const batches = list(flags.batches)?.map(Number);
  if (batches?.some((b) => !Number.isInteger(b) || b < 2)) throw new UsageError(`bench train: --batches takes whole numbers >= 2, got "${flags.batches}"`);
  const impls = list(flags.impls);
  const unknown = impls?.filter((i) => !TRAIN_IMPLS.includes(i as TrainImpl)) ?? [];
  if (unknown.length) throw new UsageError(`bench train: unknown implementation "${unknown[0]}" in --impls (choose from ${TRAIN_IMPLS.join(', ')})`);
  const steps = flags.steps === undefined ? undefined : wholeNumber('train', 'steps', flags.steps, 1);
  const budget = positive('train', 'budget', flags.budget, 'seconds');
  const { runTrainBenchmark } = await import('./train.js');
  await runTrainBenchmark({
    json: flags.json as string | undefined, models: presets('train', list(flags.models)), batches, impls: impls as TrainImpl[] | undefined, steps,
    budgetSeconds: budget, tfjsMemoryCapBytes: tfjsMemoryCap('train', flags), command: context.commandLine, device: context.device,
  });
}

async function memory(flags: Flags, context: BenchContext): Promise<void> {
  const depths = list(flags.depths)?.map(Number);
  if (depths?.some((d) => !Number.isInteger(d) || d < 10 || (d - 4) % 6 !== 0)) {
    throw new UsageError(`bench memory: --depths takes DenseNet-BC depths 6n + 4 (e.g. 40,64,100), got "${flags.depths}"`);
  }
  const batch = wholeNumber('memory', 'batch', flags.batch, 2);
  const budget = positive('memory', 'budget', flags.budget, 'seconds');
  const { runMemoryBenchmark } = await import('./memory.js');
  await runMemoryBenchmark({
    depths, batch, measure: flags.measure === true ? 'all' : 'first', budgetSeconds: budget, tfjsMemoryCapBytes: tfjsMemoryCap('memory', flags),
    json: flags.json as string | undefined, svg: flags.svg as string | undefined, command: context.commandLine, device: context.device,
  });
}

async function inference(flags: Flags, context: BenchContext): Promise<void> {
  const batches = (list(flags.batches ?? '1,8') ?? []).map(Number);
  if (batches.length === 0 || batches.some((b) => !Number.isInteger(b) || b < 1)) throw new UsageError(`bench inference: --batches takes whole numbers >= 1, got "${flags.batches}"`);
  const reps = wholeNumber('inference', 'reps', flags.reps, 1);
  const warmup = wholeNumber('inference', 'warmup', flags.warmup, 0);
  const strategy = flags.memory as MemoryStrategy | undefined;
  if (strategy !== undefined && !MEMORY_STRATEGIES.includes(strategy)) {
    throw new UsageError(`bench inference: --memory must be one of ${MEMORY_STRATEGIES.join(', ')}, got "${strategy}"`);
  }
  const model = presets('inference', flags.model === undefined ? undefined : [String(flags.model)])?.[0];
  const { runInferenceBenchmark } = await import('./inference.js');
  await runInferenceBenchmark({
    json: flags.json as string | undefined, batches, reps, warmup, model, memory: strategy, oursOnly: flags['ours-only'] === true, noOrt: flags['no-ort'] === true, device: context.device,
  });
}

async function profile(flags: Flags, context: BenchContext): Promise<void> {
  const mode = flags.mode;
  if (mode !== 'train' && mode !== 'inference') throw new UsageError(`bench profile: --mode must be train or inference, got "${mode}"`);
  const strategy = flags.memory as MemoryStrategy;
  if (!MEMORY_STRATEGIES.includes(strategy)) throw new UsageError(`bench profile: --memory must be one of ${MEMORY_STRATEGIES.join(', ')}, got "${strategy}"`);
  const batch = wholeNumber('profile', 'batch', flags.batch, mode === 'train' ? 2 : 1);
  const steps = wholeNumber('profile', 'steps', flags.steps, 1);
  const top = wholeNumber('profile', 'top', flags.top, 1);
  const model = presets('profile', [String(flags.model)])![0];
  const { runProfile } = await import('./profile.js');
  await runProfile({
    model, batch, mode, memory: strategy, steps, top, json: flags.json as string | undefined, trace: flags.trace as string | undefined,
    command: context.commandLine, device: context.device,
  });
}

const COMMANDS = { ops, train, memory, inference, profile };

export const runBenchCommand: BenchEntry['runBenchCommand'] = (command, flags, context) => COMMANDS[command](flags, context);
