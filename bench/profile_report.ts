// bench profile's arithmetic and table, apart from the GPU: per-launch times (one per recorded launch,
// in recording order) are attributed to the ops that recorded them, then summed by phase, by kernel
// (the WGSL program) and by layer role (the op's name without block, layer and transition numbers,
// so that "conv2.backwardFilter" of all 48 dense layers of DenseNet-BC-100 is one row). A rate is
// given where it means something: GFLOP/s for the GEMM ops (conv, linear; Op.flops), and GB/s of
// the op's minimum traffic (each tensor it reads or writes touched once) for every op.

import { median } from '../src/gpu/timing.js';
import type { Phase } from '../src/graph/graph.js';

/** What the profile needs of one graph op: its name and phase, its launches' kernel names, its work. */
export interface ProfiledOp {
  name: string;
  phase: Phase;
  kernels: string[];
  /** Floating-point operations (GEMM ops only). */
  flops?: number;
  /** Bytes of every distinct tensor it reads or writes, once: the least traffic it can have. */
  bytes: number;
}

export interface ProfileGroup {
  name: string;
  launches: number;
  ms: number;
  /** ms / the sum of every launch's ms. */
  share: number;
  /** GFLOP/s over the group's GEMM ops (null: none in the group). */
  gflops: number | null;
  /** GB/s of minimum traffic. */
  gbps: number | null;
}

export interface OpTime extends ProfiledOp { ms: number }

/** Median of each launch over the timed steps, then each op's total. */
export function opTimes(ops: ProfiledOp[], launchMs: number[][]): OpTime[] {
  const launches = ops.reduce((n, op) => n + op.kernels.length, 0);
  for (const step of launchMs) {
    if (step.length !== launches) throw new Error(`bench profile: a step has ${step.length} launch times for ${launches} launches`);
  }
  if (launchMs.length === 0) throw new Error('bench profile: no timed steps');
  let k = 0;
  return ops.map((op) => {
    let ms = 0;
    for (let i = 0; i < op.kernels.length; i++, k++) ms += median(launchMs.map((step) => step[k]));
    return { ...op, ms };
  });
}

/** "features.denseblock3.denselayer12.conv2.backwardFilter" → "denseblock.denselayer.conv2.backwardFilter". */
export function roleOf(opName: string): string {
  return opName.replace(/^features\./, '').replace(/(denseblock|denselayer|transition)\d+/g, '$1');
}

function rates(ms: number, flops: number, bytes: number, hasGemm: boolean) {
  return { gflops: hasGemm && ms > 0 ? flops / (ms * 1e6) : null, gbps: ms > 0 ? bytes / (ms * 1e6) : null };
}

/** Groups op times by `key`, largest time first. A kernel group counts each launch's share of its op. */
export function groupBy(times: OpTime[], key: (op: OpTime) => string): ProfileGroup[] {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const groups = new Map<string, { launches: number; ms: number; flops: number; bytes: number; gemm: boolean }>();
  for (const t of times) {
    const name = key(t);
    const g = groups.get(name) ?? { launches: 0, ms: 0, flops: 0, bytes: 0, gemm: false };
    g.launches += t.kernels.length;
    g.ms += t.ms;
    g.flops += t.flops ?? 0;
    g.bytes += t.bytes;
    g.gemm ||= t.flops !== undefined;
    groups.set(name, g);
  }
  return [...groups].map(([name, g]) => ({ name, launches: g.launches, ms: g.ms, share: total > 0 ? g.ms / total : 0, ...rates(g.ms, g.flops, g.bytes, g.gemm) }))
    .sort((a, b) => b.ms - a.ms);
}

/** The op's kernels as one name: "conv2d.backwardFilter.split + conv2d.backwardFilter.sum". */
export const kernelsOf = (op: { kernels: string[] }) => [...new Set(op.kernels)].join(' + ') || '(no launch)';

export interface ProfileHeader {
  model: string;
  batch: number;
  mode: 'train' | 'inference';
  memory: string;
  kernels: string;
  adapter: string;
  adapterClass: string;
  launches: number;
  steps: number;
  /** Median wall clock of a plain step, from handing over the batch to having its result on the host. */
  wallMs: number;
  /** Median GPU time of a plain step (its one compute pass, timestamped). */
  gpuStepMs: number;
  /** Sum of the launches' median times, each launch timed in a pass of its own. */
  launchSumMs: number;
  /** Median host time to write the batch, record every launch and submit (training; null for inference, whose run() does all at once). */
  submitMs: number | null;
  gflopPerStep: number;
}

export interface ProfileReport {
  header: ProfileHeader;
  byPhase: ProfileGroup[];
  byKernel: ProfileGroup[];
  byRole: ProfileGroup[];
  slowest: (ProfileGroup & { kernels: string })[];
}

export function buildReport(header: ProfileHeader, times: OpTime[], top: number): ProfileReport {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const slowest = [...times].sort((a, b) => b.ms - a.ms).slice(0, top).map((t) => ({
    name: t.name, kernels: kernelsOf(t), launches: t.kernels.length, ms: t.ms, share: total > 0 ? t.ms / total : 0, ...rates(t.ms, t.flops ?? 0, t.bytes, t.flops !== undefined),
  }));
  return {
    header,
    byPhase: groupBy(times, (t) => t.phase),
    byKernel: groupBy(times, kernelsOf),
    byRole: groupBy(times, (t) => roleOf(t.name)),
    slowest,
  };
}

/**
 * One timed step as a Chrome trace (the JSON Trace Event Format that chrome://tracing and
 * ui.perfetto.dev open): a complete event per launch, named by its op, with its kernel, phase and
 * the op's work; start times from the GPU's timestamps, so the gaps between launches show too.
 */
export function chromeTrace(ops: ProfiledOp[], spans: { start: number; ms: number }[], header: ProfileHeader): object {
  const launches = ops.flatMap((op) => op.kernels.map((kernel) => ({ op, kernel })));
  if (launches.length !== spans.length) throw new Error(`bench profile: ${spans.length} timed passes for ${launches.length} launches`);
  const tracks = { forward: 1, backward: 2, update: 3 } as const;
  return {
    displayTimeUnit: 'ms',
    metadata: { ...header, source: 'densenet-wgsl bench profile: one step, each launch in a timestamped compute pass of its own' },
    traceEvents: [
      ...Object.entries(tracks).map(([phase, tid]) => ({ name: 'thread_name', ph: 'M', pid: 1, tid, args: { name: phase } })),
      ...launches.map(({ op, kernel }, i) => ({
        name: op.name, cat: kernel, ph: 'X', pid: 1, tid: tracks[op.phase], ts: spans[i].start * 1000, dur: spans[i].ms * 1000,
        args: { kernel, phase: op.phase, launchesOfOp: op.kernels.length, ...(op.flops !== undefined ? { flopsOfOp: op.flops } : {}), bytesOfOp: op.bytes },
      })),
    ],
  };
}

const ms = (v: number) => (v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const rate = (v: number | null) => (v === null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

function table(title: string, rows: ProfileGroup[], limit: number, extra?: (i: number) => string): string[] {
  const head = ['', 'launches', 'ms/step', 'share', 'GFLOP/s', 'GB/s', ...(extra ? ['kernels'] : [])];
  const shown = rows.slice(0, limit);
  const body = shown.map((r, i) => [r.name, String(r.launches), ms(r.ms), pct(r.share), rate(r.gflops), rate(r.gbps), ...(extra ? [extra(i)] : [])]);
  head[0] = title;
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  // Names and kernels left-aligned, numbers right-aligned.
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 6 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const rest = rows.length - shown.length;
  const restMs = rows.slice(limit).reduce((s, r) => s + r.ms, 0);
  return [line(head), ...body.map(line), ...(rest > 0 ? [`(${rest} more, ${ms(restMs)} ms)`] : [])];
}

export function formatProfile(r: ProfileReport, top: number): string {
  const h = r.header;
  const gap = h.launchSumMs - h.gpuStepMs;
  return [
    `${h.model}, batch ${h.batch}, ${h.mode === 'train' ? 'training step' : 'inference'}, memory ${h.memory}, ${h.kernels} kernels; ${h.launches} launches; ` +
      `${h.adapter} (${h.adapterClass}); medians of ${h.steps} step${h.steps === 1 ? '' : 's'}`,
    [`step: ${ms(h.wallMs)} ms wall (batch in to result out: ${(h.batch / (h.wallMs / 1000)).toFixed(1)} images/s)`,
      `GPU ${ms(h.gpuStepMs)} ms (the step's one pass, timestamped; ${(h.gflopPerStep / (h.gpuStepMs / 1000)).toFixed(1)} GFLOP/s over its ${h.gflopPerStep >= 10 ? h.gflopPerStep.toFixed(1) : h.gflopPerStep.toPrecision(3)} GEMM GFLOP)`,
      ...(h.submitMs === null ? [] : [`host ${ms(h.submitMs)} ms to write the batch, record and submit`])].join('; '),
    `launches timed one by one, each in a pass of its own: ${ms(h.launchSumMs)} ms in all, ${gap >= 0 ? `${ms(gap)} ms more` : `${ms(-gap)} ms less`} than the one-pass step ` +
      '(the extra passes and their timestamps on one side, gaps between dispatches on the other); the tables below share out this sum',
    '',
    ...table('phase', r.byPhase, r.byPhase.length),
    '',
    ...table("kernels (an op's launches)", r.byKernel, top),
    '',
    ...table('layer role', r.byRole, top),
    '',
    ...table(`the ${r.slowest.length} slowest ops`, r.slowest, top, (i) => r.slowest[i].kernels),
  ].join('\n');
}
