// Rows, header and markdown table of `bench train`: training-step throughput per model, batch and
// implementation, median and spread, and the ratio against tfjs-webgpu in its own column.

import type { AdapterReport } from '../src/gpu/device.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../src/models/densenet_graph.js';

export const TRAIN_IMPLS = [...MEMORY_STRATEGIES.map((s) => `ours-${s}` as const), 'tfjs-webgpu', 'tfjs-cpu'] as const;
export type TrainImpl = typeof TRAIN_IMPLS[number];

export function strategyOf(impl: TrainImpl): MemoryStrategy | null {
  return impl.startsWith('ours-') ? impl.slice(5) as MemoryStrategy : null;
}

export interface TrainRow {
  model: string;
  batch: number;
  impl: TrainImpl;
  /** batch / median step time; null when the configuration was not run (see notRunReason). */
  imagesPerSec: number | null;
  /** imagesPerSec / tfjs-webgpu's imagesPerSec for the same model and batch (null without both). */
  ratioVsTfjsWebgpu: number | null;
  /** Wall-clock step times over the timed steps (warm-up excluded), ms. */
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  /** Images/s of the slowest and fastest timed step. */
  minImagesPerSec: number | null;
  maxImagesPerSec: number | null;
  /** Timed steps (after the warm-up). */
  steps: number;
  samplesMs: number[];
  /** Time of the warm-up step (or how long it ran before it was stopped), ms; null if it never started. */
  warmupMs: number | null;
  /** Building the implementation before the warm-up (ours: planning, allocation, pipeline compilation), ms. */
  setupMs: number | null;
  /** Mean cross-entropy of each step, warm-up first: every implementation starts from the same
   * parameters and trains on the same batch, so these agree across a model's rows. */
  losses: number[];
  /** Peak GPU bytes held (ours: the arena; tfjs-webgpu: its buffer pool); null where not known. */
  peakBytes: number | null;
  notRunReason?: string;
}

export interface TrainHeader {
  adapter: AdapterReport | null;
  versions: Record<string, string>;
  command: string;
  startedAt: string;
  budgetSeconds: number;
  stepsRequested: number;
  timing: string;
  notes: string[];
}

const fmt = (v: number | null, digits = 2) => (v === null ? '—' : v >= 100 ? v.toFixed(1) : v.toFixed(digits));
const bytes = (n: number | null) => (n === null ? '—' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/** A markdown table, one row per configuration, then the reasons for rows that did not run. */
export function formatTrainTable(rows: TrainRow[]): string {
  const head = ['model', 'batch', 'implementation', 'images/s median (min–max)', 'ms/step median (min–max)', 'steps', 'vs tfjs-webgpu', 'peak GPU memory', 'first loss'];
  const body = rows.map((r) => [
    r.model, String(r.batch), r.impl,
    r.imagesPerSec === null ? 'not run' : `${fmt(r.imagesPerSec)} (${fmt(r.minImagesPerSec)}–${fmt(r.maxImagesPerSec)})`,
    r.medianMs === null ? '—' : `${fmt(r.medianMs, 0)} (${fmt(r.minMs, 0)}–${fmt(r.maxMs, 0)})`,
    String(r.steps),
    r.ratioVsTfjsWebgpu === null ? '—' : `${r.ratioVsTfjsWebgpu.toFixed(2)}×`,
    bytes(r.peakBytes),
    r.losses.length ? r.losses[0].toFixed(5) : '—',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const lines = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)];
  const notRun = rows.filter((r) => r.notRunReason);
  if (notRun.length) {
    lines.push('', 'not run:');
    for (const r of notRun) lines.push(`- ${r.model} batch ${r.batch} ${r.impl}: ${r.notRunReason}`);
  }
  return lines.join('\n');
}

/** Fills ratioVsTfjsWebgpu for every row from its model's and batch's tfjs-webgpu row. */
export function fillRatios(rows: TrainRow[]): void {
  for (const r of rows) {
    const base = rows.find((b) => b.impl === 'tfjs-webgpu' && b.model === r.model && b.batch === r.batch);
    r.ratioVsTfjsWebgpu = r.imagesPerSec !== null && base?.imagesPerSec ? r.imagesPerSec / base.imagesPerSec : null;
  }
}

/**
 * Largest relative difference, over the steps every run row took, between the losses of a model's
 * and batch's rows (null with fewer than two rows): step 0 checks the forward pass and loss, later
 * steps the backward pass and the SGD update as well.
 */
export function lossAgreement(rows: TrainRow[], model: string, batch: number): { steps: number; maxRelDiff: number; perStep: number[] } | null {
  const runs = rows.filter((r) => r.model === model && r.batch === batch && r.losses.length > 0).map((r) => r.losses);
  if (runs.length < 2) return null;
  const steps = Math.min(...runs.map((l) => l.length));
  const perStep: number[] = [];
  for (let i = 0; i < steps; i++) {
    const values = runs.map((l) => l[i]);
    const hi = Math.max(...values);
    const lo = Math.min(...values);
    const d = (hi - lo) / Math.max(Math.abs(hi), Math.abs(lo), 1e-30);
    perStep.push(Number.isNaN(d) ? Infinity : d);
  }
  return { steps, maxRelDiff: Math.max(...perStep), perStep };
}
