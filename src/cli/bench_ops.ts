// `densenet-wgsl bench ops`: the op microbenchmark (bench/ops.ts), ours against tfjs-webgpu on
// the same Dawn adapter in the same process.

import { runOpsBenchmark } from '../../bench/ops.js';
import { adapterOptions, UsageError } from './args.js';

export async function runOpsBenchmarkCli(flags: Record<string, unknown>): Promise<void> {
  const reps = flags.reps as number;
  if (!Number.isInteger(reps) || reps < 1) throw new UsageError(`bench ops: --reps must be a whole number >= 1, got ${reps}`);
  const ops = flags.ops ? String(flags.ops).split(',') : undefined;
  await runOpsBenchmark({ json: flags.json as string | undefined, reps, ops, device: adapterOptions(flags as never) });
}
