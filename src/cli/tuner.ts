// The autotuner: finds every distinct (kernel, shape) a model's graph asks the tuning table about,
// times each candidate launch choice for it on standalone buffers of that shape (GPU timestamps
// where the device has them, else wall time to onSubmittedWorkDone; repetitions interleaved over
// the candidates; median), and returns the winners as cache entries.

import type { ArenaBuffer } from '../gpu/arena.js';
import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { median, timeLaunches } from '../gpu/timing.js';
import { gemmChoice, TuningTable, type TuningChoice, type TuningSite } from '../gpu/tuning.js';
import type { TuningCacheEntry } from '../gpu/tuning_cache.js';
import {
  chooseConvTile, chooseWorkgroupTile, conv2dBackwardFilter, conv2dBackwardFilterWorkspaceElements, conv2dBackwardInput, conv2dForward,
  conv2dOutputSize, CONV_TILES, WORKGROUP_TILES, type ConvTile, type WorkgroupTile,
} from '../kernels/conv2d.js';
import { chooseGpuFilterTile } from '../kernels/conv2d_filter_split.js';
import { kernelClass } from '../gpu/profile.js';
import { batchNormBackward, batchNormSplitWorkspaceElements, batchNormStatistics } from '../kernels/batchnorm.js';
import { splitGeometry } from '../kernels/batchnorm_split.js';
import { globalAvgPoolForward } from '../kernels/pool_global.js';
import { PARALLEL_POOL_WORKGROUP, parallelPoolLanes } from '../kernels/pool_global_parallel.js';
import { avgPool2x2Backward, avgPool2x2Forward, avgPool2x2OutputShape, defaultBlocksPerInvocation } from '../kernels/pool_average.js';
import { sizeOf, tensor } from '../kernels/tensor.js';
import type { DenseNetConfig } from '../models/densenet_config.js';
import { buildDenseNetGraph, type FreezePart, type MemoryStrategy } from '../models/densenet_graph.js';
import { DenseNetModel } from '../models/model.js';

/** What to tune for: the graph a run builds. */
/** A graph to tune: `freeze` (training only) as train --freeze builds it, so that frozen layers' backward kernels are not tuned for nothing. */
export interface TuneTarget { config: DenseNetConfig; batch: number; memory: MemoryStrategy; training: boolean; freeze?: FreezePart }

/** One candidate launch choice; `choice` undefined is the kernel's own default. */
export interface Candidate { name: string; choice: TuningChoice | undefined }

/**
 * An alternative must beat the default's median by 10% to be chosen: timings on a shared machine
 * jitter, and a kernel timed alone on tight buffers gains more than it does inside a step (on
 * lavapipe, digits-tiny b8, a 3% margin picked 9 alternatives and trained 5–10% slower; 10% picked 6, on par).
 */
const MARGIN = 0.9;

/** The distinct sites of the model's graph as this device's kernel class builds it (built, never compiled: only the ops' table look-ups run). */
export function collectSites(gpu: Gpu, t: TuneTarget): TuningSite[] {
  const model = DenseNetModel.create(gpu, t.config, 0);
  try {
    const recorder = new TuningTable();
    const optimizer = t.training ? { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0 } : undefined;
    buildDenseNetGraph(model.arch, model.layout, { batch: t.batch, strategy: t.memory, training: t.training, optimizer, freeze: t.freeze, tuning: recorder, kernels: kernelClass(gpu) });
    return [...recorder.sites.values()];
  } finally {
    model.close();
  }
}

const sameTile = (a: ConvTile, b: ConvTile) =>
  a.rows === b.rows && a.cols === b.cols && a.workgroupSize === b.workgroupSize && (a.unroll ?? 1) === (b.unroll ?? 1) && (a.splits ?? 1) === (b.splits ?? 1);

/**
 * The candidates for a site, the default first: the named tiles of conv2d_tiles.ts (and, for the
 * filter gradient, the default tile split 4 ways), or a few blocks-per-invocation for average pool.
 * Few on purpose: each is a distinct pipeline, compiled for seconds on a software adapter.
 */
export function candidatesFor(gpu: Gpu, site: TuningSite): Candidate[] {
  if (site.gpuGemm) return gpuGemmCandidates(site);
  // The GPU class's filter-gradient default is a split tile (conv2d_filter_split.ts): the graph's default, so the tuner's too.
  const gpuFilter = site.kernel === 'conv2d.backwardFilter' && kernelClass(gpu) === 'gpu'
    ? chooseGpuFilterTile(site.x, site.w!, { stride: site.stride, padding: site.padding }) : undefined;
  const out: Candidate[] = [{ name: 'default', choice: gpuFilter && { tile: gpuFilter } }];
  if (site.kernel === 'batchNorm.split') {
    // Values per chunk: a quarter and four times the default's, and the whole channel (one chunk); at least one value per invocation.
    const M = sizeOf(site.x.slice(1));
    const base = splitGeometry(site.x[0], M, BN_WORKGROUP).chunkLength;
    const lengths = [Math.ceil(base / 4), base * 4, M].filter((l) => l >= BN_WORKGROUP && l <= M && l !== base);
    for (const l of new Set(lengths)) out.push({ name: `chunk=${l}`, choice: { splitChunk: l } });
    return out;
  }
  if (site.kernel === 'globalAvgPool.forward') {
    const base = parallelPoolLanes(site.x[2] * site.x[3]);
    for (const l of [1, 4, 16, PARALLEL_POOL_WORKGROUP]) if (l !== base) out.push({ name: `lanes=${l}`, choice: { lanesPerPlane: l } });
    return out;
  }
  if (site.kernel.startsWith('avgPool2x2')) {
    const base = defaultBlocksPerInvocation(gpu);
    for (const b of [1, 2, 4, 8, 16]) if (b !== base) out.push({ name: `blocks=${b}`, choice: { blocksPerInvocation: b } });
    return out;
  }
  const kernel = site.kernel === 'conv2d.forward' ? 'forward' : site.kernel === 'conv2d.backwardInput' ? 'backwardInput' : 'backwardFilter';
  const base = chooseConvTile(kernel, site.x, site.w!, { stride: site.stride, padding: site.padding });
  const names = kernel === 'backwardFilter' ? ['filter', 'split', 'small'] : ['default', 'small', 'wide', 'tall'];
  const tiles: [string, ConvTile][] = names.map((n) => [n, { ...CONV_TILES[n] }]);
  if (kernel === 'backwardFilter' && site.x[1] * site.x[2] >= 16) tiles.splice(1, 0, ['default-split4', { ...base, splits: 4 }]);
  if (gpuFilter) tiles.unshift(['unsplit', base]);
  for (const [name, tile] of tiles) {
    if (sameTile(tile, gpuFilter ?? base) || out.some((c) => c.choice?.tile && sameTile(c.choice.tile, tile))) continue;
    // Named by shape: CONV_TILES' "default" is the default of one shape only, not necessarily this one's.
    const shape = `${tile.rows}x${tile.cols}/${tile.workgroupSize}${(tile.unroll ?? 1) > 1 ? ` unroll ${tile.unroll}` : ''}${(tile.splits ?? 1) > 1 ? ` split ${tile.splits}` : ''}`;
    out.push({ name: `${name === 'default' ? 'tile' : name} ${shape}`, choice: { tile } });
  }
  return out;
}

const sameWorkgroupTile = (a: WorkgroupTile, b: WorkgroupTile) =>
  a.m === b.m && a.n === b.n && a.k === b.k && a.rows === b.rows && a.cols === b.cols;

/**
 * A GPU-class conv GEMM site (forward, backward-input): the default workgroup tile first, then the
 * other named workgroup tiles that fit the GEMM's M rows (`tall`, 128 rows, only where M fills
 * it; `tiny` is for tests), then the register variant with its default tile as the rival.
 */
function gpuGemmCandidates(site: TuningSite): Candidate[] {
  const M = site.kernel === 'conv2d.forward' ? site.w![0] : site.w![1];
  const base = chooseWorkgroupTile(M);
  const out: Candidate[] = [{ name: 'default', choice: undefined }];
  const names = M >= 128 ? ['square', 'tall', 'wide', 'narrow'] as const : ['square', 'wide', 'narrow'] as const;
  for (const n of names) {
    const t = WORKGROUP_TILES[n];
    if (sameWorkgroupTile(t, base)) continue;
    out.push({ name: `workgroup ${n} ${t.m}x${t.n}x${t.k} ${t.rows}x${t.cols}`, choice: { workgroupTile: { ...t } } });
  }
  const kernel = site.kernel === 'conv2d.forward' ? 'forward' : 'backwardInput';
  const r = chooseConvTile(kernel, site.x, site.w!, { stride: site.stride, padding: site.padding });
  out.push({ name: `register ${r.rows}x${r.cols}/${r.workgroupSize}${(r.unroll ?? 1) > 1 ? ` unroll ${r.unroll}` : ''}`, choice: { tile: { ...r } } });
  return out;
}

/** Batch norm's workgroup size where the graph gives none (its split workspace is sized by it too: ops/layers.ts). */
const BN_WORKGROUP = 64;

/** Standalone operands of a site's shapes (zero-filled: the timing does not depend on the values). */
function allocateOperands(gpu: Gpu, site: TuningSite, candidates: Candidate[]) {
  const buffers: ArenaBuffer[] = [];
  const make = (name: string, shape: readonly number[]) => {
    const b = gpu.arena.allocate(`tune.${name}`, 'workspace', Math.max(4, sizeOf(shape) * 4));
    buffers.push(b);
    return tensor(b, shape);
  };
  const x = make('x', site.x);
  if (site.kernel.startsWith('avgPool2x2')) return { buffers, x, y: make('y', avgPool2x2OutputShape(site.x as [number, number, number, number])) };
  if (site.kernel === 'globalAvgPool.forward') return { buffers, x, y: make('y', site.x.slice(0, 2)) };
  if (site.kernel === 'batchNorm.split') {
    const C = [site.x[0]];
    const workspace = Math.max(...candidates.map((c) => batchNormSplitWorkspaceElements(site.x, { splitChunk: c.choice?.splitChunk })));
    const bn = {
      mean: make('mean', C), variance: make('variance', C), gamma: make('gamma', C), beta: make('beta', C),
      dgamma: make('dgamma', C), dbeta: make('dbeta', C), dy: make('dy', site.x), dx: make('dx', site.x), partials: make('partials', [workspace]),
    };
    return { buffers, x, y: bn.dy, bn };
  }
  const [Cin, N, H, W] = site.x;
  const [Cout, , KH, KW] = site.w!;
  const [Ho, Wo] = conv2dOutputSize(H, W, KH, KW, { stride: site.stride, padding: site.padding });
  const workspace = Math.max(0, ...candidates.map((c) => conv2dBackwardFilterWorkspaceElements(site.w!, c.choice?.tile)));
  return {
    buffers, x, w: make('w', site.w!), y: make('y', [Cout, N, Ho, Wo]),
    transform: site.transform ? { scale: make('scale', [Cin]), shift: make('shift', [Cin]) } : undefined,
    workspace: workspace > 0 ? make('workspace', [workspace]) : undefined,
  };
}

async function buildLaunches(gpu: Gpu, site: TuningSite, o: ReturnType<typeof allocateOperands>, choice: TuningChoice | undefined): Promise<Launch[]> {
  // A GPU-class GEMM site picks its variant as the graph does (gemmChoice); elsewhere the register tile.
  const conv = { stride: site.stride, padding: site.padding, ...(site.gpuGemm ? gemmChoice(choice) : { tile: choice?.tile }) };
  const blocksPerInvocation = choice?.blocksPerInvocation;
  switch (site.kernel) {
    case 'conv2d.forward': return conv2dForward(gpu, { x: o.x, w: o.w!, y: o.y, inputTransform: o.transform, ...conv });
    case 'conv2d.backwardInput': return conv2dBackwardInput(gpu, { dy: o.y, w: o.w!, dx: o.x, ...conv });
    case 'conv2d.backwardFilter': return conv2dBackwardFilter(gpu, { x: o.x, dy: o.y, dw: o.w!, inputTransform: o.transform, workspace: o.workspace, ...conv });
    case 'avgPool2x2.forward': return avgPool2x2Forward(gpu, { x: o.x, y: o.y, blocksPerInvocation });
    case 'avgPool2x2.backward': return avgPool2x2Backward(gpu, { dy: o.y, dx: o.x, blocksPerInvocation });
    case 'batchNorm.split': {
      // The statistics and the backward of a training step: both reduce with the split (the backward's dx pass is the same for all).
      const b = o.bn!;
      const split = { variant: 'split-reduction' as const, workspace: b.partials, splitChunk: choice?.splitChunk };
      const stats = await batchNormStatistics(gpu, { x: o.x, mean: b.mean, variance: b.variance, ...split });
      const backward = await batchNormBackward(gpu, {
        x: o.x, dy: b.dy, mean: b.mean, variance: b.variance, gamma: b.gamma, beta: b.beta, eps: 1e-5, relu: true, dx: b.dx, dgamma: b.dgamma, dbeta: b.dbeta, ...split,
      });
      return [...stats, ...backward];
    }
    case 'globalAvgPool.forward': return globalAvgPoolForward(gpu, { x: o.x, y: o.y, variant: 'parallel', lanesPerPlane: choice?.lanesPerPlane });
  }
}

export interface SiteResult {
  site: TuningSite;
  /** Median milliseconds of each candidate timed (the default first). */
  timed: { candidate: Candidate; ms: number }[];
  winner: { candidate: Candidate; ms: number };
  defaultMs: number;
  method: TuningCacheEntry['method'];
}

/**
 * Times a site's candidates: the default always; each alternative only while `deadline`
 * (performance.now() ms) has not passed. One warm-up run each, then `reps` rounds, each timing
 * every candidate once (interleaved, so a slow spell of a shared machine hits all alike).
 */
export async function tuneSite(gpu: Gpu, site: TuningSite, reps: number, deadline: number): Promise<SiteResult> {
  const candidates = candidatesFor(gpu, site);
  const operands = allocateOperands(gpu, site, candidates);
  const built: { candidate: Candidate; launches: Launch[]; samples: number[] }[] = [];
  let method: TuningCacheEntry['method'] = 'wall-clock';
  try {
    for (const candidate of candidates) {
      if (built.length > 0 && performance.now() > deadline) break;
      let launches: Launch[];
      try {
        launches = await buildLaunches(gpu, site, operands, candidate.choice);
      } catch (e) {
        // An alternative this adapter or shape refuses (a tile above its workgroup limit) is not a candidate; the default must build.
        if (candidate.choice === undefined) throw e;
        continue;
      }
      built.push({ candidate, launches, samples: [] });
      await gpu.run(launches); // warm-up: the driver's compile happens here, untimed
    }
    for (let r = 0; r < reps; r++) {
      for (const b of built) {
        const t = await timeLaunches(gpu, b.launches, 1, 0);
        b.samples.push(t.samples[0]);
        method = t.method;
      }
    }
  } finally {
    for (const b of built) b.launches.forEach((l) => l.destroy());
    for (const buffer of operands.buffers) gpu.arena.free(buffer);
  }
  const timed = built.map((b) => ({ candidate: b.candidate, ms: median(b.samples) }));
  const defaultMs = timed[0].ms;
  let winner = timed[0];
  for (const t of timed.slice(1)) if (t.ms < winner.ms && t.ms < defaultMs * MARGIN) winner = t;
  return { site, timed, winner, defaultMs, method };
}

export interface TuneReport { results: SiteResult[]; skipped: TuningSite[]; sites: number; seconds: number }

/** Tunes every distinct site of the targets' graphs within `budgetSeconds` (sites past it are skipped, and reported). */
export async function tuneTargets(
  gpu: Gpu, targets: TuneTarget[], o: { reps: number; budgetSeconds: number; onSite?: (r: SiteResult, k: number, n: number) => void },
): Promise<TuneReport> {
  const started = performance.now();
  const deadline = started + o.budgetSeconds * 1000;
  const sites = new Map<string, TuningSite>();
  for (const t of targets) for (const s of collectSites(gpu, t)) sites.set(`${s.kernel} ${s.key}`, s);
  const results: SiteResult[] = [];
  const skipped: TuningSite[] = [];
  let k = 0;
  for (const site of sites.values()) {
    k++;
    if (performance.now() > deadline) { skipped.push(site); continue; }
    const r = await tuneSite(gpu, site, o.reps, deadline);
    results.push(r);
    o.onSite?.(r, k, sites.size);
  }
  return { results, skipped, sites: sites.size, seconds: (performance.now() - started) / 1000 };
}

export function cacheEntries(results: SiteResult[]): TuningCacheEntry[] {
  return results.map((r) => ({
    kernel: r.site.kernel, key: r.site.key, choice: r.winner.candidate.choice ?? {}, candidate: r.winner.candidate.name,
    ms: r.winner.ms, defaultMs: r.defaultMs, method: r.method,
  }));
}

/** The site's default won (in the GPU class the filter gradient's default has a choice: its split tile, so compare candidates). */
export const keptDefault = (r: SiteResult) => r.winner.candidate === r.timed[0].candidate;

/** One line per tuned site: the winner against the default. */
export function formatSiteResult(r: SiteResult): string {
  const others = r.timed.slice(1).map((t) => `${t.candidate.name} ${t.ms.toFixed(3)}`).join(', ');
  const ratio = r.defaultMs > 0 ? r.winner.ms / r.defaultMs : 1;
  const picked = keptDefault(r)
    ? `default kept, ${r.defaultMs.toFixed(3)} ms`
    : `${r.winner.candidate.name} ${r.winner.ms.toFixed(3)} ms vs default ${r.defaultMs.toFixed(3)} ms (${ratio.toFixed(2)}×)`;
  return `${r.site.kernel} ${r.site.key}: ${picked}${others ? `; alternatives ${others} ms` : '; no alternative timed (budget)'}`;
}
