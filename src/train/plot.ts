// The training plot (plot.svg): a self-contained SVG with two panels sharing an epoch axis, loss
// on top (per step when step records are given, and the per-epoch means) and accuracy below.
// No dependencies; the output is deterministic for the same records.

import { isEpochRecord, isStepRecord } from './metrics.js';

export interface PlotOptions {
  /** Heading; default "training". */
  title?: string;
  width?: number;
  height?: number;
  /** Per-step losses beyond this many are averaged in consecutive buckets down to this many points. */
  maxStepPoints?: number;
}

/** The epoch-level fields the plot reads (metrics.ts EpochMetrics, or the trainer's history entries without `type`). */
interface EpochPoint { epoch: number; trainLoss?: number; trainAccuracy?: number; testLoss?: number; testAccuracy?: number }

interface Series { id: string; label: string; color: string; points: [number, number][]; width: number; markers: boolean }

const BLUE = '#1f77b4';
const LIGHT_BLUE = '#a6c8e4';
const ORANGE = '#e6700a';

/**
 * Renders records (metrics.jsonl lines, or epoch summaries) as an SVG document. Step records
 * (`type: "step"`, with epoch, batch, loss) are placed at epoch − 1 + batch / batchesPerEpoch
 * (their `batches` field, else the largest batch number seen); epoch records at their epoch.
 * Non-finite and missing values are left out. Accuracies are fractions, drawn as percentages.
 */
export function renderTrainingPlot(records: readonly object[], options: PlotOptions = {}): string {
  const width = options.width ?? 900;
  const height = options.height ?? 620;
  const { steps, epochs } = collect(records, options.maxStepPoints ?? 1000);
  const left = 72;
  const right = width - 24;
  const top = 76;
  const bottom = height - 52;
  const gap = 58;
  const panelHeight = (bottom - top - gap) / 2;
  const xMax = [...epochs.map((e) => e.epoch), ...steps.map((p) => p[0])].reduce((m, v) => Math.max(m, v), 1);
  const xAxis = niceTicks(0, xMax, xMax >= 2 ? 1 : 0);

  const lossSeries: Series[] = [
    { id: 'train-loss-step', label: 'train loss (per step)', color: LIGHT_BLUE, points: steps, width: 1, markers: false },
    series('train-loss', 'train loss (epoch mean)', BLUE, epochs, (e) => e.trainLoss),
    series('test-loss', 'test loss', ORANGE, epochs, (e) => e.testLoss),
  ].filter((s) => s.points.length > 0);
  const accuracySeries: Series[] = [
    series('train-accuracy', 'train accuracy', BLUE, epochs, (e) => pct(e.trainAccuracy)),
    series('test-accuracy', 'test accuracy', ORANGE, epochs, (e) => pct(e.testAccuracy)),
  ].filter((s) => s.points.length > 0);

  const lossValues = lossSeries.flatMap((s) => s.points.map((p) => p[1]));
  const lossAxis = niceTicks(0, lossValues.reduce((m, v) => Math.max(m, v), 0) || 1);
  const accValues = accuracySeries.flatMap((s) => s.points.map((p) => p[1]));
  const accAxis = accValues.length
    ? accuracyTicks(accValues.reduce((m, v) => Math.min(m, v), Infinity), accValues.reduce((m, v) => Math.max(m, v), -Infinity))
    : niceTicks(0, 100);

  const out: string[] = [];
  const title = options.title ?? 'training';
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${width / 2}" y="50" text-anchor="middle" font-size="12" fill="#444444">${esc(subtitle(epochs, steps.length > 0))}</text>`);
  panel(out, { id: 'loss', title: 'loss', yLabel: 'cross-entropy loss', x0: left, x1: right, y0: top, y1: top + panelHeight, xAxis, yAxis: lossAxis, series: lossSeries, legendAt: 'top' });
  panel(out, { id: 'accuracy', title: 'accuracy', yLabel: 'accuracy (%)', x0: left, x1: right, y0: top + panelHeight + gap, y1: bottom, xAxis, yAxis: accAxis, series: accuracySeries, legendAt: 'bottom' });
  out.push(`<text x="${(left + right) / 2}" y="${height - 12}" text-anchor="middle" font-size="13">epoch</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function collect(records: readonly object[], maxStepPoints: number): { steps: [number, number][]; epochs: EpochPoint[] } {
  const stepRecords = records.filter(isStepRecord);
  const maxBatch = stepRecords.reduce((m, r) => Math.max(m, finite(r.batch) ?? 0), 1); // no spread: may be 100k+ records
  const raw: [number, number][] = [];
  for (const r of stepRecords) {
    const perEpoch = finite(r.batches) ?? maxBatch;
    const x = (r.epoch - 1) + r.batch / perEpoch;
    const loss = finite(r.loss);
    if (loss !== undefined && Number.isFinite(x) && x >= 0) raw.push([x, loss]);
  }
  const epochs = records.filter((r): r is EpochPoint => isEpochRecord(r) || isUntypedEpoch(r))
    .filter((e) => Number.isFinite(e.epoch));
  return { steps: downsample(raw, Math.max(2, Math.floor(maxStepPoints))), epochs };
}

function isUntypedEpoch(r: object): boolean {
  const e = r as Record<string, unknown>;
  return e.type === undefined && typeof e.epoch === 'number' &&
    ['trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy'].some((k) => typeof e[k] === 'number');
}

/** Exactly `max` points when there are more: the means of consecutive, nearly equal buckets. */
export function downsample(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  for (let b = 0; b < max; b++) {
    const start = Math.floor((b * points.length) / max);
    const end = Math.floor(((b + 1) * points.length) / max);
    let sx = 0;
    let sy = 0;
    for (let i = start; i < end; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (end - start), sy / (end - start)]);
  }
  return out;
}

function series(id: string, label: string, color: string, epochs: EpochPoint[], value: (e: EpochPoint) => number | undefined): Series {
  const points: [number, number][] = [];
  for (const e of epochs) {
    const v = finite(value(e));
    if (v !== undefined) points.push([e.epoch, v]);
  }
  return { id, label, color, points, width: 2, markers: epochs.length <= 100 };
}

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function pct(v: number | undefined): number | undefined {
  return v === undefined ? undefined : 100 * v;
}

function subtitle(epochs: EpochPoint[], hasSteps: boolean): string {
  const withTest = epochs.filter((e) => finite(e.testAccuracy) !== undefined);
  if (withTest.length === 0) return epochs.length || hasSteps ? `${epochs.length} epoch${epochs.length === 1 ? '' : 's'} finished` : 'no data yet';
  const last = withTest[withTest.length - 1];
  const best = withTest.reduce((a, b) => (b.testAccuracy! > a.testAccuracy! ? b : a));
  return `after epoch ${last.epoch}: test accuracy ${(100 * last.testAccuracy!).toFixed(2)}% ` +
    `(best ${(100 * best.testAccuracy!).toFixed(2)}% at epoch ${best.epoch})`;
}

interface Axis { lo: number; hi: number; values: number[]; decimals: number }

/** Round tick values covering [lo, hi] (about `target` intervals); `minStep` keeps epoch ticks whole. */
export function niceTicks(lo: number, hi: number, minStep = 0, target = 5): Axis {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const f = raw / magnitude;
  const step = Math.max(minStep, (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude);
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const values: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) values.push(Number((first + i * step).toFixed(decimals)));
  return { lo: values[0], hi: values[values.length - 1], values, decimals };
}

function accuracyTicks(min: number, max: number): Axis {
  const span = Math.max(max - min, 2);
  const axis = niceTicks(Math.max(0, min - 0.1 * span), Math.min(100, max + 0.1 * span));
  return axis.hi > 100 ? niceTicks(axis.lo, 100) : axis;
}

interface Panel {
  id: string; title: string; yLabel: string; x0: number; x1: number; y0: number; y1: number;
  xAxis: Axis; yAxis: Axis; series: Series[]; legendAt: 'top' | 'bottom';
}

function panel(out: string[], p: Panel): void {
  // Data and ticks are inset from the frame so markers on the axis limits stay whole.
  const inset = 8;
  const sx = (x: number) => p.x0 + inset + ((x - p.xAxis.lo) / (p.xAxis.hi - p.xAxis.lo)) * (p.x1 - p.x0 - 2 * inset);
  const sy = (y: number) => p.y1 - inset - ((y - p.yAxis.lo) / (p.yAxis.hi - p.yAxis.lo)) * (p.y1 - p.y0 - 2 * inset);
  out.push(`<g class="panel" data-panel="${p.id}">`);
  out.push(`<text x="${p.x0}" y="${fmt(p.y0 - 10)}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const v of p.yAxis.values) {
    const y = fmt(sy(v));
    out.push(`<line x1="${p.x0}" y1="${y}" x2="${p.x1}" y2="${y}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<text x="${p.x0 - 7}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#333333">${v.toFixed(p.yAxis.decimals)}</text>`);
  }
  for (const v of p.xAxis.values) {
    const x = fmt(sx(v));
    out.push(`<line x1="${x}" y1="${p.y0}" x2="${x}" y2="${p.y1}" stroke="#f0f0f0" stroke-width="1"/>`);
    out.push(`<line x1="${x}" y1="${p.y1}" x2="${x}" y2="${p.y1 + 5}" stroke="#333333" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${p.y1 + 18}" text-anchor="middle" fill="#333333">${v.toFixed(p.xAxis.decimals)}</text>`);
  }
  out.push(`<rect x="${p.x0}" y="${p.y0}" width="${p.x1 - p.x0}" height="${fmt(p.y1 - p.y0)}" fill="none" stroke="#333333" stroke-width="1"/>`);
  const midY = fmt((p.y0 + p.y1) / 2);
  out.push(`<text x="18" y="${midY}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${midY})">${esc(p.yLabel)}</text>`);
  if (p.series.length === 0) {
    out.push(`<text x="${(p.x0 + p.x1) / 2}" y="${midY}" text-anchor="middle" fill="#888888">no data</text>`);
  }
  for (const s of p.series) {
    const pts = s.points.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(' ');
    out.push(`<polyline class="series" data-series="${s.id}" fill="none" stroke="${s.color}" stroke-width="${s.width}" ` +
      `stroke-linejoin="round" points="${pts}"/>`);
    if (s.markers) {
      for (const [x, y] of s.points) out.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="3" fill="${s.color}"/>`);
    }
  }
  legend(out, p, p.series.flatMap((s) => s.points.map(([x, y]) => [sx(x), sy(y)] as [number, number])));
  out.push('</g>');
}

function legend(out: string[], p: Panel, pixels: [number, number][]): void {
  if (p.series.length === 0) return;
  const rowHeight = 18;
  const boxWidth = 38 + 6.4 * Math.max(...p.series.map((s) => s.label.length));
  const boxHeight = 8 + rowHeight * p.series.length;
  // The corner that covers the fewest data points, preferring the panel's usual empty corner.
  const xs = [p.x1 - boxWidth - 12, p.x0 + 12];
  const ys = p.legendAt === 'top' ? [p.y0 + 12, p.y1 - boxHeight - 12] : [p.y1 - boxHeight - 12, p.y0 + 12];
  const corners = [[xs[0], ys[0]], [xs[0], ys[1]], [xs[1], ys[0]], [xs[1], ys[1]]];
  const covered = ([cx, cy]: number[]) => pixels.filter(([px, py]) => px >= cx - 4 && px <= cx + boxWidth + 4 && py >= cy - 4 && py <= cy + boxHeight + 4).length;
  const counts = corners.map(covered);
  const [x, y] = corners[counts.indexOf(Math.min(...counts))].map(fmtNumber);
  out.push(`<g class="legend"><rect x="${x}" y="${y}" width="${boxWidth}" height="${boxHeight}" fill="#ffffff" fill-opacity="0.9" stroke="#bbbbbb"/>`);
  p.series.forEach((s, i) => {
    const cy = y + 4 + rowHeight * i + rowHeight / 2;
    out.push(`<line x1="${x + 8}" y1="${cy}" x2="${x + 28}" y2="${cy}" stroke="${s.color}" stroke-width="${Math.max(2, s.width)}"/>`);
    out.push(`<text x="${x + 34}" y="${cy}" dominant-baseline="middle">${esc(s.label)}</text>`);
  });
  out.push('</g>');
}

function fmt(v: number): string {
  return fmtNumber(v).toString();
}

function fmtNumber(v: number): number {
  return Math.round(v * 10) / 10;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
