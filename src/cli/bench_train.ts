// `densenet-wgsl bench train`: the training-step benchmark (bench/train.ts), ours under each memory
// strategy against tfjs-webgpu on the same adapter and tfjs's cpu backend.

import { TRAIN_IMPLS, type TrainImpl } from '../../bench/train_report.js';
import { adapterOptions, UsageError } from './args.js';

const list = (v: unknown) => (v === undefined ? undefined : String(v).split(',').map((s) => s.trim()).filter(Boolean));

export async function runTrainBenchmarkCli(flags: Record<string, unknown>): Promise<void> {
  const batches = list(flags.batches)?.map(Number);
  if (batches?.some((b) => !Number.isInteger(b) || b < 2)) throw new UsageError(`bench train: --batches takes whole numbers >= 2, got "${flags.batches}"`);
  const impls = list(flags.impls);
  const unknown = impls?.filter((i) => !TRAIN_IMPLS.includes(i as TrainImpl)) ?? [];
  if (unknown.length) throw new UsageError(`bench train: unknown implementation "${unknown[0]}" in --impls (choose from ${TRAIN_IMPLS.join(', ')})`);
  const steps = flags.steps as number | undefined;
  if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) throw new UsageError(`bench train: --steps must be a whole number >= 1, got ${steps}`);
  const budget = flags.budget as number;
  if (!(budget > 0)) throw new UsageError(`bench train: --budget must be > 0 seconds, got ${budget}`);
  const cap = flags['tfjs-memory-cap'] as number | undefined;
  if (cap !== undefined && !(cap > 0)) throw new UsageError(`bench train: --tfjs-memory-cap must be > 0 GB, got ${cap}`);
  const { runTrainBenchmark } = await import('../../bench/train.js');
  await runTrainBenchmark({
    json: flags.json as string | undefined, models: list(flags.models), batches, impls: impls as TrainImpl[] | undefined, steps,
    budgetSeconds: budget, tfjsMemoryCapBytes: cap === undefined ? undefined : cap * 1e9,
    command: `densenet-wgsl ${process.argv.slice(2).join(' ')}`, device: adapterOptions(flags as never),
  });
}
