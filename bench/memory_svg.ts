// The memory-against-depth plot of `bench memory`: log-log axes (a line of slope 1 grows linearly
// with depth, slope 2 quadratically), one polyline per strategy through its planned peaks, measured
// peaks as hollow circles on top, tfjs-webgpu's measured peaks as squares (a triangle where only a
// lower bound is known), the memory budget as a dashed line, and each strategy's deepest network
// within it marked with a tick.

export interface PlotSeries {
  name: string;
  color: string;
  /** Planned peaks (the polyline). */
  planned: { depth: number; bytes: number }[];
  /** Measured peaks (hollow circles). */
  measured: { depth: number; bytes: number }[];
  /** Deepest depth within the budget (a tick on the budget line). */
  deepest?: number | null;
}

export interface PlotInput {
  title: string;
  series: PlotSeries[];
  /** tfjs-webgpu points; lowerBound: the true peak is at least `bytes`. */
  tfjs: { depth: number; bytes: number; lowerBound: boolean }[];
  budgetBytes: number;
  budgetLabel: string;
  /** Published depths to mark with a dotted vertical line (e.g. Pleiss et al.'s). */
  references?: { depth: number; label: string }[];
}

export const STRATEGY_COLORS: Record<string, string> = { naive: '#d62728', shared: '#ff7f0e', recompute: '#2ca02c', fused: '#1f77b4' };

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Tick values at 1, 2, 5 × 10^k inside [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

const gb = (bytes: number) => bytes / 1e9;
const label = (v: number) => (v >= 1 ? String(Number(v.toPrecision(3))) : String(Number(v.toPrecision(2))));

export function memorySvg(p: PlotInput): string {
  const W = 960;
  const H = 560;
  const m = { left: 80, right: 230, top: 50, bottom: 60 };
  const all = [...p.series.flatMap((s) => [...s.planned, ...s.measured]), ...p.tfjs];
  const depths = [...all.map((q) => q.depth), ...p.series.flatMap((s) => (s.deepest ? [s.deepest] : [])), ...(p.references ?? []).map((r) => r.depth)];
  const values = [...all.map((q) => gb(q.bytes)), gb(p.budgetBytes)];
  const x0 = Math.min(...depths) / 1.15;
  const x1 = Math.max(...depths) * 1.15;
  const y0 = Math.min(...values) / 1.3;
  const y1 = Math.max(...values) * (p.tfjs.some((q) => q.lowerBound) ? 2 : 1.3);
  const px = (d: number) => m.left + ((Math.log(d) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))) * (W - m.left - m.right);
  const py = (bytes: number) => H - m.bottom - ((Math.log(gb(bytes)) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * (H - m.top - m.bottom);
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2 - m.right / 2 + m.left / 2}" y="28" text-anchor="middle" font-size="15">${escape(p.title)}</text>`);
  // Grid and axes.
  const bottom = H - m.bottom;
  const right = W - m.right;
  for (const t of logTicks(x0, x1)) {
    out.push(`<line x1="${f(px(t))}" y1="${m.top}" x2="${f(px(t))}" y2="${bottom}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${f(px(t))}" y="${bottom + 18}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of logTicks(y0, y1)) {
    const y = py(t * 1e9);
    out.push(`<line x1="${m.left}" y1="${f(y)}" x2="${right}" y2="${f(y)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${f(y + 4)}" text-anchor="end">${label(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${right - m.left}" height="${bottom - m.top}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(m.left + right) / 2}" y="${H - 18}" text-anchor="middle">depth (layers, DenseNet-BC 6n+4), log scale</text>`);
  out.push(`<text x="20" y="${(m.top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 20 ${(m.top + bottom) / 2})">peak GPU memory (GB = 10⁹ bytes), log scale</text>`);
  // Budget line.
  const yb = py(p.budgetBytes);
  out.push(`<line class="budget" x1="${m.left}" y1="${f(yb)}" x2="${right}" y2="${f(yb)}" stroke="#555" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${m.left + 6}" y="${f(yb - 6)}" fill="#555">${escape(p.budgetLabel)}</text>`);
  // Reference depths.
  for (const [i, r] of (p.references ?? []).entries()) {
    const x = px(r.depth);
    out.push(`<line class="reference" x1="${f(x)}" y1="${m.top}" x2="${f(x)}" y2="${bottom}" stroke="#888" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${f(x + 4)}" y="${f(bottom - 10 - 16 * i)}" fill="#666">${escape(r.label)}</text>`);
  }
  // Series.
  for (const s of p.series) {
    const pts = [...s.planned].sort((a, b) => a.depth - b.depth).map((q) => `${f(px(q.depth))},${f(py(q.bytes))}`).join(' ');
    out.push(`<polyline class="planned" data-strategy="${escape(s.name)}" points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const q of s.planned) out.push(`<circle cx="${f(px(q.depth))}" cy="${f(py(q.bytes))}" r="2.5" fill="${s.color}"/>`);
    for (const q of s.measured) out.push(`<circle class="measured" data-strategy="${escape(s.name)}" cx="${f(px(q.depth))}" cy="${f(py(q.bytes))}" r="6" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    if (s.deepest) out.push(`<line class="deepest" data-strategy="${escape(s.name)}" x1="${f(px(s.deepest))}" y1="${f(yb - 8)}" x2="${f(px(s.deepest))}" y2="${f(yb + 8)}" stroke="${s.color}" stroke-width="3"/>`);
  }
  for (const q of p.tfjs) {
    const x = px(q.depth);
    const y = py(q.bytes);
    // A lower bound: a triangle with an arrow pointing up (the true peak is higher).
    out.push(q.lowerBound
      ? `<path class="tfjs lower-bound" d="M${f(x - 6)},${f(y + 5)} L${f(x + 6)},${f(y + 5)} L${f(x)},${f(y - 6)} Z M${f(x)},${f(y - 6)} L${f(x)},${f(y - 26)} M${f(x - 4)},${f(y - 20)} L${f(x)},${f(y - 26)} L${f(x + 4)},${f(y - 20)}" fill="#000" stroke="#000" stroke-width="1.5"/>`
      : `<rect class="tfjs" x="${f(x - 5)}" y="${f(y - 5)}" width="10" height="10" fill="#000"/>`);
  }
  // Legend.
  let ly = m.top + 10;
  const lx = right + 16;
  for (const s of p.series) {
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${escape(s.name)} (planned)</text>`);
    ly += 20;
  }
  out.push(`<circle cx="${lx + 12}" cy="${ly}" r="6" fill="none" stroke="#333" stroke-width="1.5"/><text x="${lx + 30}" y="${ly + 4}">measured (arena peak)</text>`);
  ly += 20;
  out.push(`<rect x="${lx + 7}" y="${ly - 5}" width="10" height="10" fill="#000"/><text x="${lx + 30}" y="${ly + 4}">tfjs-webgpu (measured pool)</text>`);
  ly += 20;
  out.push(`<path d="M${lx + 6},${ly + 5} L${lx + 18},${ly + 5} L${lx + 12},${ly - 6} Z" fill="#000"/><text x="${lx + 30}" y="${ly + 4}">tfjs-webgpu ≥ (cap hit)</text>`);
  ly += 20;
  out.push(`<line x1="${lx + 12}" y1="${ly - 8}" x2="${lx + 12}" y2="${ly + 8}" stroke="#333" stroke-width="3"/><text x="${lx + 30}" y="${ly + 4}">deepest within budget</text>`);
  if (p.references?.length) {
    ly += 20;
    out.push(`<line x1="${lx + 12}" y1="${ly - 8}" x2="${lx + 12}" y2="${ly + 8}" stroke="#888" stroke-dasharray="2 3"/><text x="${lx + 30}" y="${ly + 4}">published reference</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
