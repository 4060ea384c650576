// The `bench ...` commands as the CLI sees them: their flags (for parsing and --help) and a loader
// for the benchmarks' own bundle, dist/bench.js, imported by path at run time so that the CLI
// bundle carries no benchmark code (the benchmarks pull in TensorFlow.js and its helpers).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchCommand, BenchEntry } from '../base/bench_entry.js';
import { ADAPTER_FLAGS, UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { checkOutFile } from './files.js';
import { TUNE_FLAGS, tunedAdapterOptions, tuneTarget } from './tune.js';

/** dist/bench.js beside this bundle (dist/cli.js). */
const BENCH_BUNDLE = new URL('./bench.js', import.meta.url);

async function loadBench(): Promise<BenchEntry> {
  const path = fileURLToPath(BENCH_BUNDLE);
  if (!existsSync(path)) throw new UsageError(`bench: the benchmarks' bundle ${path} is missing; build it with "npm run build"`);
  // A computed specifier: esbuild leaves it to Node at run time instead of bundling the benchmarks in.
  return (await import(BENCH_BUNDLE.href)) as BenchEntry;
}

const JSON_FLAG: FlagSpec = { name: 'json', type: 'string', help: 'also write the rows as JSON to this file' };
const OVERWRITE_FLAG: FlagSpec = { name: 'overwrite', type: 'boolean', help: 'replace an existing --json (or --svg, --trace) file' };

/** Files a bench command writes when it ends, checked before it starts: minutes of measurement must not end in a refusal, nor replace a file silently. */
const OUT_FILES: { flag: string; extensions: string[]; format: string }[] = [
  { flag: 'json', extensions: ['.json'], format: 'JSON' },
  { flag: 'svg', extensions: ['.svg'], format: 'an SVG plot' },
  { flag: 'trace', extensions: ['.json'], format: 'a Chrome trace' },
];
const TFJS_CAP_FLAG: FlagSpec = { name: 'tfjs-memory-cap', type: 'number', help: "GB cap on tfjs-webgpu's buffer pool (default half the free memory on a software adapter)" };

const BENCH_FLAGS: Record<BenchCommand, { summary: string; flags: FlagSpec[] }> = {
  ops: {
    summary: 'time conv/batch norm/pool kernels against tfjs-webgpu on the same adapter',
    flags: [JSON_FLAG,
      { name: 'reps', type: 'number', help: 'timed repetitions per measurement', default: 5 },
      { name: 'ops', type: 'string', help: 'comma-separated subset: conv3x3,conv1x1,batchnorm,avgpool' }],
  },
  train: {
    summary: 'training-step images/s: ours under each memory strategy vs tfjs-webgpu (same adapter) and tfjs cpu',
    flags: [{ ...JSON_FLAG, help: 'also write { header, rows } as JSON to this file' },
      { name: 'models', type: 'string', help: 'comma-separated presets (default densenet-bc-40-12,densenet-bc-100-12)' },
      { name: 'batches', type: 'string', help: 'comma-separated batch sizes (default 16,64)' },
      { name: 'impls', type: 'string', help: 'subset of ours-naive,ours-shared,ours-recompute,ours-fused,tfjs-webgpu,tfjs-cpu' },
      { name: 'steps', type: 'number', help: 'timed steps per configuration (default 3 on a software adapter, 10 otherwise)' },
      { name: 'budget', type: 'number', help: 'seconds per configuration: a slower warm-up step is reported as not run', default: 120 },
      TFJS_CAP_FLAG],
  },
  memory: {
    summary: 'peak GPU memory against depth per memory strategy (planned, measured, tfjs-webgpu), fits, deepest in 12 GB',
    flags: [JSON_FLAG,
      { name: 'svg', type: 'string', help: 'plot peak memory against depth to this SVG file' },
      { name: 'measure', type: 'boolean', help: 'also measure peaks by running one training step (ours and tfjs-webgpu) at every depth that fits the budget; on a software adapter also the resident memory (RSS, and GPU pages) the step adds, against its plan' },
      { name: 'depths', type: 'string', help: 'comma-separated depths 6n+4 (default 40,64,100,136,172,208,250)' },
      { name: 'batch', type: 'number', help: 'batch size', default: 64 },
      { name: 'budget', type: 'number', help: 'seconds per measured configuration', default: 180 },
      TFJS_CAP_FLAG],
  },
  inference: {
    summary: 'DenseNet-121 inference at batch 1 and 8, ours against tfjs-webgpu on the same adapter and ONNX Runtime on the CPU (images/s)',
    flags: [JSON_FLAG,
      { name: 'batches', type: 'string', help: 'comma-separated batch sizes', default: '1,8' },
      { name: 'model', type: 'string', help: 'preset name', default: 'densenet121' },
      { name: 'reps', type: 'number', help: 'timed repetitions per side and batch (few: slow on software adapters)', default: 2 },
      { name: 'warmup', type: 'number', help: 'untimed runs per side and batch first', default: 1 },
      { name: 'memory', type: 'string', help: 'our memory strategy: naive, shared, recompute or fused', default: 'fused' },
      { name: 'ours-only', type: 'boolean', help: 'skip TensorFlow.js and ONNX Runtime' },
      { name: 'no-ort', type: 'boolean', help: 'skip ONNX Runtime (CPU execution provider, all cores)' }],
  },
  profile: {
    summary: "where one step's GPU time goes on this adapter: per-kernel timestamps summed by phase, kernel and layer role, with GFLOP/s and GB/s",
    flags: [JSON_FLAG,
      { name: 'model', type: 'string', help: 'preset name', default: 'densenet-bc-100-12' },
      { name: 'batch', type: 'number', help: 'batch size', default: 16 },
      { name: 'mode', type: 'string', help: 'train (forward, loss, backward, SGD update) or inference', default: 'train' },
      { name: 'memory', type: 'string', help: 'memory strategy: naive, shared, recompute or fused', default: 'fused' },
      { name: 'steps', type: 'number', help: 'timed steps (medians over them; each is run plain, timestamped whole, and timestamped launch by launch)', default: 3 },
      { name: 'top', type: 'number', help: 'rows per table', default: 15 },
      { name: 'trace', type: 'string', help: "also write the last timed step's launches as a Chrome trace (.json: ui.perfetto.dev, chrome://tracing)" }],
  },
};

/** What `--tune` tunes for: bench train's models × batches (training), bench inference's model × batches, bench profile's one session; nothing for the others. */
function benchTuneTargets(name: string, flags: ParsedFlags) {
  const split = (v: unknown, fallback: string) => String(v ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
  if (name === 'train') {
    const models = split(flags.models, 'densenet-bc-40-12,densenet-bc-100-12');
    // fused convs load through the BN→ReLU transform; recompute's (and naive's, shared's) do not: other programs, other sites.
    return models.flatMap((m) => split(flags.batches, '16,64').flatMap((b) => ['fused', 'recompute'].map((s) => tuneTarget(m, Number(b), s, true))));
  }
  if (name === 'inference') return split(flags.batches, '1,8').map((b) => tuneTarget(flags.model as string, Number(b), flags.memory as string, false));
  if (name === 'profile') return [tuneTarget(flags.model as string, Number(flags.batch), flags.memory as string, flags.mode !== 'inference')];
  return [];
}

/** The CLI's command table entries `bench ops`, `bench train`, `bench memory`, `bench inference`, `bench profile`. */
export const BENCH_COMMANDS = Object.fromEntries(Object.entries(BENCH_FLAGS).map(([name, c]) => [`bench ${name}`, {
  summary: c.summary,
  flags: [...ADAPTER_FLAGS, ...TUNE_FLAGS, ...c.flags, OVERWRITE_FLAG],
  run: async (flags: Record<string, unknown>) => {
    for (const o of OUT_FILES) {
      const path = flags[o.flag];
      if (typeof path === 'string') await checkOutFile(`bench ${name}`, path, { ...o, overwrite: flags.overwrite === true });
    }
    const bench = await loadBench();
    await bench.runBenchCommand(name as BenchCommand, flags as ParsedFlags, {
      device: tunedAdapterOptions(flags as ParsedFlags, () => benchTuneTargets(name, flags as ParsedFlags)), commandLine: `densenet-wgsl ${process.argv.slice(2).join(' ')}`,
    });
  },
}]));
