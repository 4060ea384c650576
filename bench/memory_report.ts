// Rows and markdown tables of `bench memory`: peak bytes per strategy and depth (planned, measured,
// tfjs-webgpu), the breakdown by category, the growth fits and the deepest network in the budget.

import type { AdapterReport } from '../src/gpu/device.js';
import type { MemoryStrategy } from '../src/models/densenet_graph.js';
import type { GrowthFits } from './memory_fit.js';

export const BREAKDOWN_CATEGORIES = ['parameters', 'gradients', 'optimizer', 'activations', 'workspace', 'io', 'uniforms'] as const;

export interface MemoryRow {
  strategy: MemoryStrategy | 'tfjs-webgpu';
  depth: number;
  batch: number;
  /** Planned peak of one training step (all categories; ours only). */
  plannedPeakBytes: number | null;
  /** Measured peak after one real training step (ours: the arena; tfjs-webgpu: its buffer pool). */
  measuredPeakBytes: number | null;
  /** tfjs-webgpu stopped at the memory cap: the true peak is at least measuredPeakBytes. */
  measuredIsLowerBound?: boolean;
  plannedByCategory?: Record<string, number>;
  measuredByCategory?: Record<string, number>;
  /** The largest single tensor (one larger than a binding runs in channel chunks). */
  largestTensorBytes?: number;
  /** One channel of an activation > the adapter's maxStorageBufferBindingSize (larger tensors run in channel chunks). */
  exceedsBindingLimit?: boolean;
  /** Some category's buffer > the adapter's maxBufferSize (the executor allocates one per category). */
  exceedsMaxBufferSize?: boolean;
  /**
   * Ours on a software adapter: how far the process's resident set rose during the first step of a
   * built session (VmHWM − VmRSS before), where GPU buffers are process memory.
   */
  rssGrowthBytes?: number;
  /** Of rssGrowthBytes, the GPU buffers' pages (RssShmem: lavapipe's memfd) still resident after the step. */
  gpuPagesGrowthBytes?: number;
  /** The bytes that step is planned to make resident: the planned peak less the model's parameters (resident before it). */
  stepPlannedBytes?: number;
  /** Why there is no RSS growth (a hardware adapter, no /proc). */
  rssNote?: string;
  /** Wall-clock time of the measured step, ms. */
  stepMs?: number;
  /** Why there is no measured value (not asked, over budget, failed). */
  measureNote?: string;
}

export interface DeepestRow {
  strategy: MemoryStrategy;
  /** Deepest DenseNet-BC depth (6n + 4) whose planned peak fits the budget; null if none. */
  deepestIn12GB: number | null;
  n: number | null;
  plannedPeakBytes: number | null;
  nextDepth: number | null;
  nextDepthPlannedBytes: number | null;
  largestTensorBytes: number | null;
  exceedsBindingLimit: boolean | null;
  plansEvaluated: number;
}

export interface FitRow extends GrowthFits { strategy: MemoryStrategy | 'tfjs-webgpu'; points: number }

export interface MemoryHeader {
  adapter: AdapterReport | null;
  bindingLimitBytes: number | null;
  maxBufferSizeBytes: number | null;
  versions: Record<string, string>;
  command: string;
  startedAt: string;
  batch: number;
  growthRate: number;
  budgetBytes: number;
  notes: string[];
}

export const gbText = (n: number | null, digits = 3) => (n === null ? '—' : `${(n / 1e9).toFixed(digits)}`);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

/** Depth × strategy: planned peak, the measured one in brackets, and tfjs-webgpu's measured peak. */
export function formatPeakTable(rows: MemoryRow[], strategies: readonly string[]): string {
  const depths = [...new Set(rows.map((r) => r.depth))].sort((a, b) => a - b);
  const cell = (r: MemoryRow | undefined) => {
    if (!r) return '';
    if (r.strategy === 'tfjs-webgpu') return r.measuredPeakBytes === null ? `— (${r.measureNote ?? 'not measured'})`.slice(0, 40) : `${r.measuredIsLowerBound ? '≥ ' : ''}${gbText(r.measuredPeakBytes)}`;
    const measured = r.measuredPeakBytes === null ? '' : ` (${gbText(r.measuredPeakBytes)})`;
    return `${gbText(r.plannedPeakBytes)}${measured}${r.exceedsBindingLimit ? ' †' : ''}${r.exceedsMaxBufferSize ? ' ‡' : ''}`;
  };
  const body = depths.map((d) => [String(d), ...strategies.map((s) => cell(rows.find((r) => r.depth === d && r.strategy === s)))]);
  return table(['depth', ...strategies.map((s) => (s === 'tfjs-webgpu' ? 'tfjs-webgpu measured' : `${s} planned (measured)`))], body);
}

/** The resident-set growth over a step and its GPU pages, each with its ratio to the step's planned bytes. */
function rssCell(r: MemoryRow): string {
  if (r.rssGrowthBytes === undefined || r.stepPlannedBytes === undefined) return r.rssNote ? '—' : '';
  const ratio = (n: number) => (n / r.stepPlannedBytes!).toFixed(2);
  return `${gbText(r.rssGrowthBytes, 4)} (${ratio(r.rssGrowthBytes)}), GPU pages ${gbText(r.gpuPagesGrowthBytes ?? null, 4)} (${ratio(r.gpuPagesGrowthBytes ?? NaN)}) / ${gbText(r.stepPlannedBytes, 4)}`;
}

/** One line per strategy and depth: bytes per category (planned; measured total and resident-set growth beside). */
export function formatBreakdownTable(rows: MemoryRow[]): string {
  const ours = rows.filter((r) => r.strategy !== 'tfjs-webgpu' && r.plannedByCategory);
  const body = ours.map((r) => [
    String(r.depth), r.strategy, ...BREAKDOWN_CATEGORIES.map((c) => gbText(r.plannedByCategory![c] ?? 0, 4)),
    gbText(r.plannedPeakBytes, 4), gbText(r.measuredPeakBytes, 4), rssCell(r), r.largestTensorBytes === undefined ? '—' : mib(r.largestTensorBytes),
  ]);
  return table(['depth', 'strategy', ...BREAKDOWN_CATEGORIES, 'planned total', 'measured total', 'RSS growth (ratio), GPU pages (ratio) / step planned', 'largest tensor'], body);
}

const coef = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(3) : v.toFixed(3));
/** "a·d² + b·d + c" with the signs folded in. */
function polynomial(c: number[]): string {
  const terms = c.map((v, i) => ({ v, x: i === 0 ? '' : i === 1 ? '·d' : '·d²' })).reverse();
  return terms.map((t, i) => (i === 0 ? `${coef(t.v)}${t.x}` : `${t.v < 0 ? '−' : '+'} ${coef(Math.abs(t.v))}${t.x}`)).join(' ');
}

export function formatFitTable(fits: FitRow[]): string {
  const body = fits.map((f) => [
    f.strategy, String(f.points),
    polynomial(f.linear.coefficients), f.linear.r2.toFixed(5), `${(100 * f.linear.maxRelativeResidual).toFixed(2)}%`,
    polynomial(f.quadratic.coefficients),
    f.quadratic.r2.toFixed(5), `${(100 * f.quadratic.maxRelativeResidual).toFixed(2)}%`,
    `${f.explainedBy} (a·d² is ${(100 * f.quadraticShareAtMax).toFixed(1)}% of the peak at the deepest point)`,
  ]);
  return table(['strategy', 'points', 'linear fit (GB, d = depth)', 'R²', 'max resid.', 'quadratic fit (GB)', 'R²', 'max resid.', 'explained by'], body);
}

export function formatDeepestTable(rows: DeepestRow[], budgetText: string, bindingLimit: number | null): string {
  const body = rows.map((r) => [
    r.strategy, r.deepestIn12GB === null ? 'none' : `${r.deepestIn12GB} (n = ${r.n})`, gbText(r.plannedPeakBytes),
    r.nextDepthPlannedBytes === null ? 'not planned (search limit): deeper may fit' : `${r.nextDepth}: ${gbText(r.nextDepthPlannedBytes)}`,
    r.largestTensorBytes === null ? '—' : mib(r.largestTensorBytes),
    r.exceedsBindingLimit === null ? '—' : r.exceedsBindingLimit ? `yes (> ${bindingLimit === null ? '?' : mib(bindingLimit)})` : 'no',
  ]);
  return table(['strategy', `deepest in ${budgetText}`, 'its planned peak (GB)', 'next depth: peak (GB)', 'largest tensor', 'a channel over the binding limit'], body);
}
