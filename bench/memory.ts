// `densenet-wgsl bench memory`: peak GPU memory of one DenseNet-BC (k = 12) training step against
// depth, batch 64, CIFAR shapes. Planned peaks (the executor's own plan, computed without a GPU)
// for all four memory strategies at every depth; measured peaks (the arena's peak after one real
// step, and tfjs-webgpu's buffer pool on the same device) where they run within the budget;
// least-squares linear and quadratic fits per strategy; the plot; and, per strategy, the deepest
// network whose planned peak fits 12 GB (binary search over n), with the binding-size check.

import { writeFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { formatAdapter, kernelClass, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { describeDenseNet } from '../src/models/architecture.js';
import { denseNetConfig, type DenseNetConfig } from '../src/models/densenet_config.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';
import { planDenseNetMemory } from '../src/models/memory_plan.js';
import { parameterOffsets } from '../src/models/model.js';
import { dawnVersion } from './tfjs_webgpu.js';
import { deepestWithin, fitGrowth } from './memory_fit.js';
import { formatBreakdownTable, formatDeepestTable, formatFitTable, formatPeakTable, gbText, type DeepestRow, type FitRow, type MemoryHeader, type MemoryRow } from './memory_report.js';
import { measureRssGrowth, type RssGrowth } from './memory_rss.js';
import { memorySvg, STRATEGY_COLORS } from './memory_svg.js';
import { MemoryCapExceeded, oursRunner, tfjsWebgpuRunner, type StepRunner, type TrainProblem } from './train_impls.js';

export { formatPeakTable, type DeepestRow, type FitRow, type MemoryRow } from './memory_report.js';

export const MEMORY_DEPTHS = [40, 64, 100, 136, 172, 208, 250];
/** Deeper networks planned for a strategy while they fit the budget. */
export const EXTRA_DEPTHS = [304, 400, 502, 604, 754, 1000, 1252, 1504, 2002, 2500, 3004];
export const BUDGET_BYTES = 12e9;
export const PLEISS_DEPTHS = [{ depth: 154, label: 'Pleiss naive ~154' }, { depth: 478, label: 'Pleiss efficient ~478' }];
export const PLEISS_REFERENCE = 'Pleiss et al. (arXiv 1707.06990), 12 GB GPU, batch 64, PyTorch: naive ~154 layers, their most efficient implementation ~478 layers';

export interface MemoryBenchmarkOptions {
  depths?: number[];
  batch?: number;
  growthRate?: number;
  /** [C, H, W] of the images (default [3, 32, 32]). */
  inputShape?: [number, number, number];
  /** Which depths get a measured peak (one real training step): 'first' (default), 'all' (while within the budget) or 'none'. */
  measure?: 'first' | 'all' | 'none';
  /** Skip tfjs-webgpu. */
  noTfjs?: boolean;
  /** Seconds per measured configuration: a slower step stops measuring deeper ones for that implementation (default 180). */
  budgetSeconds?: number;
  /** Memory budget for the deepest-network search (default 12e9 bytes). */
  budgetBytes?: number;
  /** The deepest-network search stops here (default 6004 = 6·1000 + 4); a result equal to it means "at least". */
  maxSearchDepth?: number;
  /** Extra depths planned beyond `depths` while they fit the budget (default EXTRA_DEPTHS). */
  extraDepths?: number[];
  tfjsMemoryCapBytes?: number;
  json?: string;
  svg?: string;
  command?: string;
  log?: (line: string) => void;
  gpu?: Gpu;
  device?: OpenDeviceOptions;
}

export interface MemoryBenchmarkResult { header: MemoryHeader; rows: MemoryRow[]; deepest: DeepestRow[]; fits: FitRow[]; svg: string }

export function bcConfig(depth: number, growthRate: number, inputShape: [number, number, number]): DenseNetConfig {
  return denseNetConfig({ name: `densenet-bc-${depth}-${growthRate}`, depth, growthRate, bottleneck: true, inputShape, classes: 10 });
}

/** Bytes of the model's own parameter buffers (trainable and running), allocated before any session. */
function modelParameterBytes(config: DenseNetConfig): number {
  const { trainableElements, runningElements } = parameterOffsets(describeDenseNet(config));
  return (trainableElements + runningElements) * 4;
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];
const depthOf = (n: number) => 6 * n + 4;

interface Measured {
  bytes: number; byCategory?: Record<string, number>; stepMs: number; lowerBound?: boolean;
  /** Ours on a software adapter: the resident-set growth over a step of a freshly built session. */
  rss?: RssGrowth | null; rssNote?: string;
}

/** One real training step; the implementation's peak bytes once it is done. */
async function measureOnce(build: () => Promise<StepRunner>): Promise<Measured> {
  const runner = await build();
  try {
    const t0 = performance.now();
    try {
      await runner.step();
    } catch (e) {
      if (e instanceof MemoryCapExceeded) return { bytes: runner.peakBytes()!, stepMs: performance.now() - t0, lowerBound: true };
      throw e;
    }
    return { bytes: runner.peakBytes()!, byCategory: runner.peakByCategory?.(), stepMs: performance.now() - t0 };
  } finally {
    await runner.close();
  }
}

/**
 * Ours, with the resident set measured where GPU buffers are process memory (a software adapter).
 * The session's buffers become resident during its first step (Dawn clears each on first use), so
 * the peak growth over that step is the step's real footprint. A step that compiled pipelines also
 * holds the compiler's memory (lavapipe JIT-compiles a pipeline on its first dispatch), so then a
 * second, fresh session of the same configuration is built and its first step is the one measured.
 */
async function measureOurs(gpu: Gpu, build: () => Promise<StepRunner>): Promise<Measured> {
  if (!gpu.adapter.isSoftware) return { ...(await measureOnce(build)), rssNote: 'not measured: a hardware adapter\'s memory is not process memory' };
  const pipelinesBefore = gpu.pipelines.pipelinesCreated;
  const runner = await build();
  const compiled = gpu.pipelines.pipelinesCreated > pipelinesBefore;
  let measured: Measured;
  try {
    let stepMs = 0;
    const timed = async () => { const t0 = performance.now(); await runner.step(); stepMs = performance.now() - t0; };
    const rss = compiled ? (await timed(), undefined) : (await measureRssGrowth(gpu, timed)).rss;
    measured = { bytes: runner.peakBytes()!, byCategory: runner.peakByCategory?.(), stepMs, rss };
  } finally {
    await runner.close();
  }
  if (compiled) {
    const again = await build();
    try { measured.rss = (await measureRssGrowth(gpu, () => again.step())).rss; } finally { await again.close(); }
  }
  if (measured.rss === null) measured.rssNote = 'not measured: VmHWM cannot be read or reset here (Linux /proc/self)';
  return measured;
}

function problemFor(config: DenseNetConfig, batch: number): TrainProblem {
  const [c, h, w] = config.inputShape;
  const images = new Float32Array(batch * c * h * w).map((_, i) => Math.sin(i * 0.7));
  const labels = Uint32Array.from({ length: batch }, (_, i) => i % 10);
  return { config, arch: describeDenseNet(config), batch, seed: 1, images, labels, lr: 0.1, momentum: 0.9, weightDecay: 1e-4 };
}

export async function runMemoryBenchmark(o: MemoryBenchmarkOptions = {}): Promise<MemoryBenchmarkResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const depths = [...(o.depths ?? MEMORY_DEPTHS)].sort((a, b) => a - b);
  const batch = o.batch ?? 64;
  const growthRate = o.growthRate ?? 12;
  const inputShape = o.inputShape ?? [3, 32, 32];
  const budgetBytes = o.budgetBytes ?? BUDGET_BYTES;
  const budgetMs = (o.budgetSeconds ?? 180) * 1000;
  for (const d of depths) bcConfig(d, growthRate, inputShape); // refuses depths that are not 6n + 4, naming them
  if (!Number.isInteger(batch) || batch < 2) throw new Error(`bench memory: batch must be a whole number >= 2, got ${batch}`);

  let gpu: Gpu | undefined = o.gpu;
  let adapterError: string | undefined;
  if (!gpu) {
    try { gpu = await openDevice(o.device); } catch (e) { adapterError = firstLine(e); }
  }
  const bindingLimit = gpu?.limits.maxStorageBufferBindingSize ?? null;
  const maxBufferSize = gpu?.limits.maxBufferSize ?? null;
  const memoryCap = o.tfjsMemoryCapBytes ?? (gpu?.adapter.isSoftware ? Math.floor(freemem() * 0.5) : Infinity);
  const header: MemoryHeader = {
    adapter: gpu?.adapter ?? null, bindingLimitBytes: bindingLimit, maxBufferSizeBytes: maxBufferSize,
    versions: { node: process.versions.node, webgpuDawn: dawnVersion() },
    command: o.command ?? process.argv.slice(1).join(' '), startedAt: new Date().toISOString(), batch, growthRate, budgetBytes,
    notes: [
      `GB = 10⁹ bytes; the budget is ${budgetBytes / 1e9} GB = ${(budgetBytes / 2 ** 30).toFixed(2)} GiB.`,
      'planned: the executor\'s memory plan of one training step (SGD with momentum), computed on the CPU; it is what the arena allocates.',
      'measured (ours): the arena\'s peak bytes after one real training step (adds the uniform buffers of the recorded launches).',
      'RSS growth (ours, software adapter only, where GPU buffers are pages of this process): VmHWM during the first step of a freshly built session minus VmRSS before it, ' +
        'and the GPU pages among them (RssShmem: lavapipe\'s memfd), against the step\'s planned bytes (the planned peak less the model\'s parameters, which are resident before the step); ' +
        'pipelines are compiled before the measured session.',
      `measured (tfjs-webgpu): the peak of its buffer pool (numBytesAllocatedInGPU, tracked at every buffer it creates) over one training step of the same network on the same device; ` +
        (memoryCap < Infinity ? `capped at ${(memoryCap / 1e9).toFixed(1)} GB of host memory: a step stopped at the cap gives a lower bound (≥).` : 'no cap.'),
      `reference: ${PLEISS_REFERENCE}.`,
    ],
  };
  const rows: MemoryRow[] = [];
  const deepest: DeepestRow[] = [];
  const fits: FitRow[] = [];
  try {
    if (gpu) log(formatAdapter(gpu.adapter));
    else log(`adapter: none (${adapterError}); nothing is measured, and the binding limit is unknown (WebGPU's default maxStorageBufferBindingSize is 128 MiB)`);
    log(`command: ${header.command}`);
    for (const n of header.notes) log(`note: ${n}`);

    // Planned peaks: the standard depths for every strategy, then deeper ones while they fit.
    // The kernel class decides small workspaces (split batch-norm partials): plan what the device will run.
    const kernels = gpu ? kernelClass(gpu) : 'software';
    const plan = (strategy: MemoryStrategy, depth: number) => planDenseNetMemory(bcConfig(depth, growthRate, inputShape), { batch, strategy, training: true, kernels });
    const planned = (strategy: MemoryStrategy, depth: number): MemoryRow => {
      const p = plan(strategy, depth);
      return {
        strategy, depth, batch, plannedPeakBytes: p.totalBytes, measuredPeakBytes: null, plannedByCategory: { ...p.byCategory },
        largestTensorBytes: p.largestTensorBytes,
        exceedsBindingLimit: bindingLimit === null ? undefined : p.largestChannelBytes > bindingLimit,
        exceedsMaxBufferSize: maxBufferSize === null ? undefined : Object.values(p.byCategory).some((b) => b > maxBufferSize),
      };
    };
    for (const strategy of MEMORY_STRATEGIES) {
      for (const d of depths) rows.push(planned(strategy, d));
      for (const d of (o.extraDepths ?? EXTRA_DEPTHS).filter((x) => x > depths.at(-1)!)) {
        const row = planned(strategy, d);
        if (row.plannedPeakBytes! > budgetBytes) break;
        rows.push(row);
      }
    }
    log(`planned ${rows.length} configurations`);

    // Deepest within the budget, by planning (binary search over n).
    for (const strategy of MEMORY_STRATEGIES) {
      const found = deepestWithin(budgetBytes, (n) => plan(strategy, depthOf(n)).totalBytes, 1, Math.floor(((o.maxSearchDepth ?? 6004) - 4) / 6));
      const at = found.n === null ? null : plan(strategy, depthOf(found.n));
      deepest.push({
        strategy, deepestIn12GB: found.n === null ? null : depthOf(found.n), n: found.n, plannedPeakBytes: found.bytes,
        nextDepth: found.n === null ? depthOf(1) : depthOf(found.n + 1), nextDepthPlannedBytes: found.nextBytes,
        largestTensorBytes: at?.largestTensorBytes ?? null,
        exceedsBindingLimit: at === null || bindingLimit === null ? null : at.largestChannelBytes > bindingLimit,
        plansEvaluated: found.evaluations,
      });
      if (found.n !== null && !rows.some((r) => r.strategy === strategy && r.depth === depthOf(found.n!))) rows.push(planned(strategy, depthOf(found.n)));
      log(`deepest ${strategy} within ${budgetBytes / 1e9} GB: ${found.n === null ? 'none' : `depth ${depthOf(found.n)}`}` +
        `${found.n !== null && found.nextBytes === null ? ' or deeper (the search stopped at its maximum depth)' : ''} (${found.evaluations} plans)`);
    }

    // Measured peaks: the first depth by default, every depth with `measure`, while within the budget.
    const measure = o.measure ?? 'first';
    if (gpu && measure !== 'none') {
      const toMeasure = measure === 'all' ? depths : depths.slice(0, 1);
      const impls = [...MEMORY_STRATEGIES, ...(o.noTfjs ? [] : ['tfjs-webgpu' as const])];
      for (const impl of impls) {
        let stop: string | undefined;
        for (const depth of toMeasure) {
          let row = rows.find((r) => r.strategy === impl && r.depth === depth);
          if (!row) rows.push(row = { strategy: 'tfjs-webgpu', depth, batch, plannedPeakBytes: null, measuredPeakBytes: null });
          if (stop) { row.measureNote = stop; continue; }
          if (row.exceedsBindingLimit || row.exceedsMaxBufferSize) {
            row.measureNote = `not run: a tensor or category buffer exceeds the adapter's limits`;
            continue;
          }
          const problem = problemFor(bcConfig(depth, growthRate, inputShape), batch);
          log(`measuring ${impl} at depth ${depth}...`);
          try {
            const m = impl === 'tfjs-webgpu' ? await measureOnce(() => tfjsWebgpuRunner(gpu!, problem, memoryCap)) : await measureOurs(gpu, () => oursRunner(gpu!, problem, impl));
            row.measuredPeakBytes = m.bytes;
            row.stepMs = m.stepMs;
            if (m.byCategory) row.measuredByCategory = m.byCategory;
            if (m.rss) {
              row.rssGrowthBytes = m.rss.peakGrowthBytes;
              row.gpuPagesGrowthBytes = m.rss.shmemGrowthBytes;
              row.stepPlannedBytes = row.plannedPeakBytes! - modelParameterBytes(problem.config);
            }
            if (m.rssNote) row.rssNote = m.rssNote;
            if (m.lowerBound) {
              row.measuredIsLowerBound = true;
              // Stopped early, so cheap: deeper networks are still measured (each against the cap itself).
              row.measureNote = `stopped at the ${(memoryCap / 1e9).toFixed(1)} GB cap: the peak is at least this`;
            } else if (m.stepMs > budgetMs) {
              stop = `not run: the step at depth ${depth} took ${(m.stepMs / 1000).toFixed(0)} s, over the ${(budgetMs / 1000).toFixed(0)} s budget`;
            }
            log(`  ${row.measuredIsLowerBound ? '≥ ' : ''}${gbText(m.bytes)} GB` + (row.plannedPeakBytes ? ` (planned ${gbText(row.plannedPeakBytes)} GB)` : '') + `, step ${(m.stepMs / 1000).toFixed(1)} s` +
              (row.rssGrowthBytes === undefined ? '' : `; resident set +${gbText(row.rssGrowthBytes, 4)} GB over a step, GPU pages +${gbText(row.gpuPagesGrowthBytes!, 4)} GB (its planned bytes ${gbText(row.stepPlannedBytes!, 4)} GB)`));
          } catch (e) {
            row.measureNote = `failed: ${firstLine(e)}`;
            stop = `not run: depth ${depth} failed`;
            log(`  ${row.measureNote}`);
          }
        }
      }
      if (measure === 'first') for (const r of rows) if (r.measuredPeakBytes === null && !r.measureNote && depths.includes(r.depth) && r.depth !== depths[0]) r.measureNote = 'not measured (--measure measures every depth)';
    }
  } finally {
    if (!o.gpu) gpu?.close();
  }

  const order = (r: MemoryRow) => (MEMORY_STRATEGIES as readonly string[]).indexOf(r.strategy) >>> 0;
  rows.sort((a, b) => order(a) - order(b) || a.depth - b.depth);

  // Fits (in GB) over the planned peaks at the standard depths, and over tfjs's full measurements.
  const fitOf = (strategy: FitRow['strategy'], points: { depth: number; bytes: number }[]) => {
    if (points.length < 3) return;
    fits.push({ strategy, points: points.length, ...fitGrowth(points.map((p) => p.depth), points.map((p) => p.bytes / 1e9)) });
  };
  for (const s of MEMORY_STRATEGIES) fitOf(s, rows.filter((r) => r.strategy === s && depths.includes(r.depth)).map((r) => ({ depth: r.depth, bytes: r.plannedPeakBytes! })));
  fitOf('tfjs-webgpu', rows.filter((r) => r.strategy === 'tfjs-webgpu' && r.measuredPeakBytes !== null && !r.measuredIsLowerBound).map((r) => ({ depth: r.depth, bytes: r.measuredPeakBytes! })));

  const svg = memorySvg({
    title: `DenseNet-BC (k = ${growthRate}) training step, batch ${batch}, ${inputShape.join('×')}: peak GPU memory against depth`,
    series: MEMORY_STRATEGIES.map((s) => ({
      name: s, color: STRATEGY_COLORS[s],
      planned: rows.filter((r) => r.strategy === s).map((r) => ({ depth: r.depth, bytes: r.plannedPeakBytes! })),
      measured: rows.filter((r) => r.strategy === s && r.measuredPeakBytes !== null).map((r) => ({ depth: r.depth, bytes: r.measuredPeakBytes! })),
      deepest: deepest.find((d) => d.strategy === s)?.deepestIn12GB ?? null,
    })),
    tfjs: rows.filter((r) => r.strategy === 'tfjs-webgpu' && r.measuredPeakBytes !== null).map((r) => ({ depth: r.depth, bytes: r.measuredPeakBytes!, lowerBound: !!r.measuredIsLowerBound })),
    budgetBytes, budgetLabel: `${budgetBytes / 1e9} GB budget`,
    references: growthRate === 12 && batch === 64 && inputShape.join() === '3,32,32' ? PLEISS_DEPTHS : [],
  });

  report(log, header, rows, deepest, fits, depths);
  if (o.svg) { writeFileSync(o.svg, svg); log(`wrote the plot to ${o.svg}`); }
  if (o.json) { writeFileSync(o.json, JSON.stringify({ header, rows, deepest, fits }, null, 2) + '\n'); log(`wrote ${rows.length} rows to ${o.json}`); }
  return { header, rows, deepest, fits, svg };
}

function report(log: (l: string) => void, h: MemoryHeader, rows: MemoryRow[], deepest: DeepestRow[], fits: FitRow[], depths: number[]): void {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  log('');
  log(`## Peak GPU memory of one training step (GB), DenseNet-BC k=${h.growthRate}, batch ${h.batch}`);
  log(formatPeakTable(rows, [...MEMORY_STRATEGIES, 'tfjs-webgpu']));
  if (h.bindingLimitBytes !== null) {
    log(`† one channel (N·H·W values) of an activation exceeds this adapter's maxStorageBufferBindingSize (${mib(h.bindingLimitBytes)}): ` +
      'channel chunks cannot split it (larger tensors run in channel chunks)');
    log(`‡ a memory category's buffer exceeds this adapter's maxBufferSize (${mib(h.maxBufferSizeBytes!)}): the executor allocates one buffer per category`);
    for (const s of MEMORY_STRATEGIES) {
      const over = rows.filter((r) => r.strategy === s && r.exceedsBindingLimit).map((r) => r.depth);
      const overBuffer = rows.filter((r) => r.strategy === s && r.exceedsMaxBufferSize).map((r) => r.depth);
      log(`  ${s}: depths over the binding limit: ${over.length ? over.join(', ') : 'none of those planned'}; over maxBufferSize: ${overBuffer.length ? overBuffer.join(', ') : 'none'}`);
    }
  }
  // Failures and caps one by one; the depths skipped after them one line per implementation.
  for (const r of rows.filter((x) => x.measureNote && !x.measureNote.startsWith('not'))) log(`  ${r.strategy} at depth ${r.depth}: ${r.measureNote}`);
  for (const s of [...MEMORY_STRATEGIES, 'tfjs-webgpu']) {
    const skipped = rows.filter((x) => x.strategy === s && x.measureNote?.startsWith('not run'));
    for (const reason of new Set(skipped.map((x) => x.measureNote))) {
      log(`  ${s} at depth ${skipped.filter((x) => x.measureNote === reason).map((x) => x.depth).join(', ')}: ${reason}`);
    }
  }
  if (rows.some((r) => r.measureNote?.startsWith('not measured'))) log(`  measured at depth ${depths[0]} only (--measure measures every depth that runs within the budget)`);
  log('');
  log('## By category (planned, GB)');
  log(formatBreakdownTable(rows));
  if (rows.some((r) => r.rssGrowthBytes !== undefined)) {
    log('RSS growth: the resident set\'s peak rise (VmHWM) over the first step of a built session (GPU buffers are process memory on this software adapter), against that step\'s planned bytes ' +
      '(planned total less the model\'s parameters); GPU pages: the part of it in lavapipe\'s memfd (RssShmem), the GPU buffers alone. The resident peak also holds the batch\'s staging copies, ' +
      'and the process\'s own pools grow by some MB over its first sessions (see test/memory_measured.test.ts)');
  }
  for (const note of new Set(rows.filter((r) => r.rssNote?.startsWith('not')).map((r) => r.rssNote))) log(`RSS growth ${note}`);
  log('');
  log('## Growth with depth: least-squares fits of the planned peak (GB) over the standard depths');
  log(formatFitTable(fits));
  log('');
  log(`## Deepest DenseNet-BC (k=${h.growthRate}, batch ${h.batch}) whose planned peak fits ${h.budgetBytes / 1e9} GB (GB = 10⁹ bytes)`);
  log(formatDeepestTable(deepest, `${h.budgetBytes / 1e9} GB`, h.bindingLimitBytes));
  log(`reference: ${PLEISS_REFERENCE}`);
  // The goals, computed from the rows at depth 100 (when present).
  const at = (s: string) => rows.find((r) => r.strategy === s && r.depth === 100);
  const fused = at('fused');
  const naive = at('naive');
  const tfjs = at('tfjs-webgpu');
  if (fused?.plannedPeakBytes && naive?.plannedPeakBytes) {
    log(`BC-100 batch ${h.batch}: fused / naive planned peak = ${(fused.plannedPeakBytes / naive.plannedPeakBytes).toFixed(3)} (goal ≤ 1/3)`);
    if (tfjs?.measuredPeakBytes) {
      const ours = fused.measuredPeakBytes ?? fused.plannedPeakBytes;
      log(`BC-100 batch ${h.batch}: fused ${fused.measuredPeakBytes ? 'measured' : 'planned'} / tfjs-webgpu measured ${tfjs.measuredIsLowerBound ? '(a lower bound, so the ratio is an upper bound) ' : ''}` +
        `${tfjs.measuredIsLowerBound ? '≤ ' : '= '}${(ours / tfjs.measuredPeakBytes).toFixed(3)} (goal ≤ 1/4)`);
    } else {
      log(`BC-100 batch ${h.batch}: tfjs-webgpu was not measured at depth 100 (run with --measure)`);
    }
  }
}
