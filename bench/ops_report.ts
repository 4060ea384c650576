// Rows of `bench ops` and their table: times (median, min–max), achieved rates, and the ratio
// tfjs ms / ours ms (above 1: we are faster).

import type { OpName, PassName } from './ops_spec.js';

export type TimingMethod = 'timestamp-query' | 'wall-clock';

export interface OpsRow {
  op: OpName;
  pass: PassName;
  /** Median over the timed repetitions, ms; null when that side could not run (see oursError/tfjsError). */
  oursMs: number | null;
  tfjsMs: number | null;
  /** tfjsMs / oursMs: above 1 means ours is faster. */
  ratio: number | null;
  /** How oursMs and tfjsMs were measured (the same for both). */
  method: TimingMethod;
  /** Floating-point operations of the pass (convolutions). */
  flops?: number;
  /** Nominal bytes moved by the pass (batch norm, pooling; see workOf in ops_spec.ts). */
  bytes?: number;
  shape: string;
  oursMinMs: number | null;
  oursMaxMs: number | null;
  tfjsMinMs: number | null;
  tfjsMaxMs: number | null;
  /** Median wall-clock time from submit (ours) or op call (tfjs) until the GPU is idle, ms. */
  oursWallMs: number | null;
  tfjsWallMs: number | null;
  oursSamples: number[];
  tfjsSamples: number[];
  /** max |ours − tfjs| / max |tfjs| over the pass's outputs: both sides computed the same thing. */
  maxRelDiff: number | null;
  /** Median ms of each of our kernels timed alone, and tfjs's per-program times from tf.time. */
  oursParts?: { name: string; ms: number }[];
  tfjsParts?: { name: string; ms: number }[];
  /** Why a side has no time (or, with a time, why its breakdown or cross-check is missing). */
  oursError?: string;
  tfjsError?: string;
}

/** Above this relative difference the outputs disagree: the table marks the row. */
export const CHECK_LIMIT = 1e-3;

const ms = (v: number | null) => (v === null ? '—' : v >= 100 ? v.toFixed(1) : v >= 10 ? v.toFixed(2) : v.toFixed(3));
const spread = (median: number | null, min: number | null, max: number | null) =>
  median === null ? '—' : `${ms(median)} (${ms(min)}–${ms(max)})`;

export function rateOf(row: OpsRow, time: number | null): string {
  if (time === null || time <= 0) return '—';
  if (row.flops !== undefined) return `${(row.flops / (time * 1e6)).toFixed(2)} GFLOP/s`;
  if (row.bytes !== undefined) return `${(row.bytes / (time * 1e6)).toFixed(2)} GB/s`;
  return '—';
}

function pad(cells: string[][]): string[] {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

/** The results table, with a footnote for every side that could not run and why. */
export function formatOpsTable(rows: OpsRow[]): string {
  const header = ['op', 'pass', 'ours ms (min–max)', 'tfjs ms (min–max)', 'ours rate', 'tfjs rate', 'tfjs/ours', 'check'];
  const cells = [header, ...rows.map((r) => [
    r.op, r.pass,
    spread(r.oursMs, r.oursMinMs, r.oursMaxMs),
    spread(r.tfjsMs, r.tfjsMinMs, r.tfjsMaxMs),
    rateOf(r, r.oursMs), rateOf(r, r.tfjsMs),
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    r.maxRelDiff === null ? '—' : `${r.maxRelDiff.toExponential(1)}${r.maxRelDiff > CHECK_LIMIT ? ' MISMATCH' : ''}`,
  ])];
  const lines = pad(cells);
  lines.splice(1, 0, '-'.repeat(Math.max(...lines.map((l) => l.length))));
  const notes: string[] = [];
  for (const r of rows) {
    if (r.oursError) notes.push(`${r.op} ${r.pass}: ours ${r.oursMs === null ? 'did not run' : 'ran, but'}: ${r.oursError}`);
    if (r.tfjsError) notes.push(`${r.op} ${r.pass}: tfjs ${r.tfjsMs === null ? 'did not run' : 'ran, but'}: ${r.tfjsError}`);
  }
  const withWall = rows.filter((r) => r.oursWallMs !== null || r.tfjsWallMs !== null);
  if (withWall.length > 0) {
    lines.push('', 'wall-clock (call to GPU idle, median ms; includes submit and, for tfjs, its per-op JavaScript):');
    const wall = [['op', 'pass', 'ours', 'tfjs', 'tfjs/ours'], ...withWall.map((r) => [
      r.op, r.pass, ms(r.oursWallMs), ms(r.tfjsWallMs),
      r.oursWallMs && r.tfjsWallMs ? `${(r.tfjsWallMs / r.oursWallMs).toFixed(2)}×` : '—',
    ])];
    lines.push(...pad(wall).map((l) => `  ${l}`));
  }
  const withParts = rows.filter((r) => r.oursParts?.length || r.tfjsParts?.length);
  if (withParts.length > 0) {
    lines.push('', 'per kernel (ms; ours: each kernel timed alone, median; tfjs: its programs in the last timed rep):');
    const list = (parts: { name: string; ms: number }[] | undefined) => parts?.length ? parts.map((p) => `${p.name} ${ms(p.ms)}`).join(', ') : '—';
    for (const r of withParts) lines.push(`  ${r.op} ${r.pass}`, `    ours: ${list(r.oursParts)}`, `    tfjs: ${list(r.tfjsParts)}`);
  }
  if (notes.length > 0) lines.push('', ...notes);
  return lines.join('\n');
}
