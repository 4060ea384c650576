// `densenet-wgsl bench train`: training-step throughput (images/s of whole steps: forward, loss,
// backward, SGD update, the loss read back) of DenseNet-BC on CIFAR-shaped batches, ours under each
// memory strategy against the same network in TensorFlow.js on tfjs-backend-webgpu on the SAME Dawn
// device, and on tfjs's cpu backend. Every implementation starts from the same parameters and trains
// on the same batch, so their first-step losses must agree (printed as a cross-check). Each
// configuration: build, one warm-up step, then timed steps (wall-clock, each awaited to the end);
// a warm-up over the time budget marks the configuration as not run, with the time it took.

import { commandLine, freeMemoryBytes, packageVersion, projectVersion, runtimeVersions, writeFile } from '../src/base/host.js';
import { formatAdapter, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { describeDenseNet } from '../src/models/architecture.js';
import { SeededRandom } from '../src/models/init.js';
import { preset } from '../src/models/presets.js';
import { dawnVersion } from './tfjs_webgpu.js';
import { oursRunner, tfjsCpuRunner, tfjsWebgpuRunner, type StepRunner, type TrainProblem } from './train_impls.js';
import { measureSteps, summarize } from './train_measure.js';
import { fillRatios, formatTrainTable, lossAgreement, strategyOf, TRAIN_IMPLS, type TrainHeader, type TrainImpl, type TrainRow } from './train_report.js';

export { formatTrainTable, TRAIN_IMPLS, type TrainHeader, type TrainImpl, type TrainRow } from './train_report.js';

export const DEFAULT_TRAIN_MODELS = ['densenet-bc-40-12', 'densenet-bc-100-12'];
export const DEFAULT_TRAIN_BATCHES = [16, 64];
export const DEFAULT_BUDGET_SECONDS = 120;

export const WASM_NOTE = "tfjs's wasm backend (@tensorflow/tfjs-backend-wasm) cannot train convolutions: it registers Conv2D and " +
  'Conv2DBackpropInput but no Conv2DBackpropFilter kernel, so no weight gradient; it has no row here (and is not installed).';

export interface TrainBenchmarkOptions {
  /** Preset names (default densenet-bc-40-12, densenet-bc-100-12). */
  models?: string[];
  /** Batch sizes (default 16, 64). */
  batches?: number[];
  /** Implementations (default all of TRAIN_IMPLS). */
  impls?: TrainImpl[];
  /** Timed steps per configuration (default 3 on a software adapter, 10 otherwise). */
  steps?: number;
  /** Time budget per configuration in seconds (default 120): see measureSteps. */
  budgetSeconds?: number;
  /** Timed steps taken even past the budget once the warm-up fitted (default 2, at most `steps`). */
  minSteps?: number;
  /** Cap on tfjs-webgpu's buffer pool in bytes (default: half the free host memory on a software adapter, else none). */
  tfjsMemoryCapBytes?: number;
  /** Parameters and batch seed (default 1). */
  seed?: number;
  /** Also write { header, rows } as JSON to this file. */
  json?: string;
  /** The command line recorded in the header (default: this process's arguments). */
  command?: string;
  log?: (line: string) => void;
  /** Use this device (left open) instead of opening one (closed at the end). */
  gpu?: Gpu;
  device?: OpenDeviceOptions;
}

export interface LossAgreement { model: string; batch: number; steps: number; maxRelDiff: number; perStep: number[] }
export interface TrainBenchmarkResult { header: TrainHeader; rows: TrainRow[]; lossAgreement: LossAgreement[] }

/** The one batch every step trains on: seeded normal images (NCHW) and uniform labels. */
export function trainProblem(model: string, batch: number, seed: number): TrainProblem {
  const config = preset(model);
  const arch = describeDenseNet(config);
  const [c, h, w] = config.inputShape;
  const rng = new SeededRandom(seed ^ 0x5eed);
  const images = Float32Array.from({ length: batch * c * h * w }, () => rng.normal());
  const labels = Uint32Array.from({ length: batch }, () => Math.floor(rng.next() * config.classes!));
  return { config, arch, batch, seed, images, labels, lr: 0.1, momentum: 0.9, weightDecay: config.weightDecay };
}

function checkOptions(o: TrainBenchmarkOptions): void {
  for (const b of o.batches ?? []) if (!Number.isInteger(b) || b < 2) throw new Error(`bench train: batch sizes must be whole numbers >= 2, got ${b}`);
  for (const m of o.models ?? []) preset(m);
  const unknown = (o.impls ?? []).filter((i) => !TRAIN_IMPLS.includes(i));
  if (unknown.length) throw new Error(`bench train: unknown implementation ${unknown.map((u) => `"${u}"`).join(', ')}; choose from ${TRAIN_IMPLS.join(', ')}`);
  if (o.steps !== undefined && (!Number.isInteger(o.steps) || o.steps < 1)) throw new Error(`bench train: steps must be a whole number >= 1, got ${o.steps}`);
  if (o.budgetSeconds !== undefined && !(o.budgetSeconds > 0)) throw new Error(`bench train: the budget must be > 0 seconds, got ${o.budgetSeconds}`);
}

export async function runTrainBenchmark(o: TrainBenchmarkOptions = {}): Promise<TrainBenchmarkResult> {
  checkOptions(o);
  const log = o.log ?? ((line: string) => console.log(line));
  const models = o.models ?? DEFAULT_TRAIN_MODELS;
  const batches = o.batches ?? DEFAULT_TRAIN_BATCHES;
  const impls = TRAIN_IMPLS.filter((i) => (o.impls ?? TRAIN_IMPLS).includes(i));
  const budgetSeconds = o.budgetSeconds ?? DEFAULT_BUDGET_SECONDS;
  const seed = o.seed ?? 1;
  const needsGpu = impls.some((i) => i !== 'tfjs-cpu');
  const gpu = o.gpu ?? (needsGpu ? await openDevice(o.device) : undefined);
  const software = gpu?.adapter.isSoftware ?? true;
  const steps = o.steps ?? (software ? 3 : 10);
  const minSteps = Math.min(o.minSteps ?? 2, steps);
  const memoryCap = o.tfjsMemoryCapBytes ?? (software ? Math.floor(freeMemoryBytes() * 0.5) : Infinity);
  const header: TrainHeader = {
    adapter: gpu?.adapter ?? null,
    versions: {
      ...runtimeVersions(), densenetWgsl: projectVersion(), webgpuDawn: dawnVersion(),
      tfjsCore: packageVersion('@tensorflow/tfjs-core', 'not installed'), tfjsBackendWebgpu: packageVersion('@tensorflow/tfjs-backend-webgpu', 'not installed'),
      tfjsBackendCpu: packageVersion('@tensorflow/tfjs-backend-cpu', 'not installed'),
    },
    command: o.command ?? commandLine(),
    startedAt: new Date().toISOString(),
    budgetSeconds,
    stepsRequested: steps,
    timing: 'wall-clock per step, from handing over the batch until the GPU work is done and the loss is read back; ' +
      'warm-up step excluded; median and min–max over the timed steps; implementations run one after another',
    notes: [
      WASM_NOTE,
      `Each configuration: one warm-up step; if it takes longer than the ${budgetSeconds} s budget the row is "not run" with the time it took ` +
        `(tfjs cpu is stopped between kernels at the budget); otherwise up to ${steps} timed steps, fewer once the budget is spent but at least ${minSteps}.`,
      'ours: SGD (momentum 0.9, Nesterov, weight decay 1e-4) as kernels in the same command buffer; tfjs: tf.variableGrads + tf.train.momentum ' +
        '(Nesterov) with weight decay added to each gradient, BN running statistics assigned on the backend, on the same initial parameters and batch.',
      ...(memoryCap < Infinity ? [`tfjs-webgpu's buffer pool is capped at ${(memoryCap / 1e9).toFixed(1)} GB (a software adapter's GPU memory is host memory).`] : []),
    ],
  };
  const rows: TrainRow[] = [];
  const agreements: LossAgreement[] = [];
  try {
    if (gpu) log(formatAdapter(gpu.adapter));
    log(`versions: ${Object.entries(header.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    log(`command: ${header.command}`);
    log(`timing: ${header.timing}`);
    for (const n of header.notes) log(`note: ${n}`);
    for (const model of models) {
      for (const batch of batches) {
        const problem = trainProblem(model, batch, seed);
        for (const impl of impls) {
          const strategy = strategyOf(impl);
          const build = (): Promise<StepRunner> => strategy ? oursRunner(gpu!, problem, strategy)
            : impl === 'tfjs-webgpu' ? tfjsWebgpuRunner(gpu!, problem, memoryCap) : tfjsCpuRunner(problem);
          log(`${model} batch ${batch} ${impl}: running (budget ${budgetSeconds} s)...`);
          const m = await measureSteps(build, { budgetMs: budgetSeconds * 1000, steps, minSteps });
          const row: TrainRow = {
            model, batch, impl, ...summarize(m.samplesMs, batch), ratioVsTfjsWebgpu: null, steps: m.samplesMs.length,
            samplesMs: m.samplesMs, warmupMs: m.warmupMs, setupMs: m.setupMs, losses: m.losses, peakBytes: m.peakBytes,
          };
          if (m.notRunReason) row.notRunReason = m.notRunReason;
          rows.push(row);
          const s = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`);
          log(`  setup ${s(m.setupMs)}, warm-up ${s(m.warmupMs)}` + (row.imagesPerSec !== null
            ? `, ${row.steps} timed step${row.steps > 1 ? 's' : ''}: median ${s(row.medianMs)} → ${row.imagesPerSec.toFixed(2)} images/s, first loss ${m.losses[0]}`
            : `; not run: ${row.notRunReason}`));
        }
        const agreement = lossAgreement(rows, model, batch);
        if (agreement) agreements.push({ model, batch, ...agreement });
        if (agreement) log(`  ${model} batch ${batch}: the implementations' losses over their first ${agreement.steps} steps agree to ${agreement.maxRelDiff.toExponential(1)} ` +
          `(relative; by step: ${agreement.perStep.map((d) => d.toExponential(1)).join(', ')}: float rounding differences grow with each SGD update)`);
      }
    }
  } finally {
    if (!o.gpu) gpu?.close();
  }
  fillRatios(rows);
  log('');
  log(formatTrainTable(rows));
  log('');
  for (const n of header.notes) log(`note: ${n}`);
  if (o.json) {
    await writeFile(o.json, JSON.stringify({ header, rows, lossAgreement: agreements }, null, 2) + '\n');
    log(`wrote ${rows.length} rows to ${o.json}`);
  }
  return { header, rows, lossAgreement: agreements };
}
