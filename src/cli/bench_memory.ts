// `densenet-wgsl bench memory`: peak GPU memory against depth for every memory strategy (bench/memory.ts).

import { adapterOptions, UsageError } from './args.js';

export async function runMemoryBenchmarkCli(flags: Record<string, unknown>): Promise<void> {
  const depths = flags.depths === undefined ? undefined : String(flags.depths).split(',').map((s) => Number(s.trim()));
  if (depths?.some((d) => !Number.isInteger(d) || d < 10 || (d - 4) % 6 !== 0)) {
    throw new UsageError(`bench memory: --depths takes DenseNet-BC depths 6n + 4 (e.g. 40,64,100), got "${flags.depths}"`);
  }
  const batch = flags.batch as number;
  if (!Number.isInteger(batch) || batch < 2) throw new UsageError(`bench memory: --batch must be a whole number >= 2, got ${batch}`);
  const budget = flags.budget as number;
  if (!(budget > 0)) throw new UsageError(`bench memory: --budget must be > 0 seconds, got ${budget}`);
  const cap = flags['tfjs-memory-cap'] as number | undefined;
  if (cap !== undefined && !(cap > 0)) throw new UsageError(`bench memory: --tfjs-memory-cap must be > 0 GB, got ${cap}`);
  const { runMemoryBenchmark } = await import('../../bench/memory.js');
  await runMemoryBenchmark({
    depths, batch, measure: flags.measure === true ? 'all' : 'first', budgetSeconds: budget, tfjsMemoryCapBytes: cap === undefined ? undefined : cap * 1e9,
    json: flags.json as string | undefined, svg: flags.svg as string | undefined,
    command: `densenet-wgsl ${process.argv.slice(2).join(' ')}`, device: adapterOptions(flags as never),
  });
}
