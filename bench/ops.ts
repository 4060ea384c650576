// `densenet-wgsl bench ops`: conv 3×3, conv 1×1, batch norm and 2×2 average pooling, forward and
// forward+backward, ours against @tensorflow/tfjs-backend-webgpu on the SAME Dawn device in the same
// process. Each side is warmed up (pipelines compiled, inputs uploaded), then timed `reps` times,
// the two sides' repetitions alternating; the table shows the median and min–max. GPU time comes from timestamp queries where the adapter
// has them (ours: one timestamped pass around the launches; tfjs: tf.time, which timestamps each of
// its programs), else both sides are timed wall-clock to GPU idle. Both sides are also cross-checked:
// they get the same inputs and their outputs must agree.

import { runtimeName, writeFile } from '../src/base/host.js';
import { formatAdapter, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { median, timeLaunches } from '../src/gpu/timing.js';
import { makeInputs, prepareOurs } from './ours_ops.js';
import { formatOpsTable, type OpsRow, type TimingMethod } from './ops_report.js';
import { describeCase, OP_NAMES, opCases, PASS_NAMES, workOf, type OpCase, type OpName, type PassName, type Scale } from './ops_spec.js';
import { prepareTfjs } from './tfjs_ops.js';
import { dawnVersion, openTfjsOnGpu, type TfjsOnGpu } from './tfjs_webgpu.js';
import { maxRelativeError } from './rel_diff.js';

export { formatOpsTable, type OpsRow } from './ops_report.js';
export { OP_NAMES, type OpName, type PassName } from './ops_spec.js';

export interface OpsBenchmarkOptions {
  /** Also write the rows as a JSON array to this file. */
  json?: string;
  /** Timed repetitions per measurement (default 5). */
  reps?: number;
  /** Untimed runs before timing (default 2; the first compiles pipelines). */
  warmup?: number;
  /** Subset of OP_NAMES (default all). */
  ops?: string[];
  /** Where progress, the header and the table go (default console.log). */
  log?: (line: string) => void;
  /** 'full' (default) is the measured configuration; 'tiny' runs the same code on tiny shapes (tests). */
  scale?: Scale;
  /** Also time both sides wall-clock (default true). */
  wallClock?: boolean;
  /**
   * 'auto' (default): GPU timestamps where the adapter has them, else wall-clock; 'wall-clock' forces
   * wall-clock for both sides (Dawn quantizes timestamps to 65.5 µs, too coarse for tiny shapes).
   */
  timing?: 'auto' | 'wall-clock';
  /** Also time each kernel of a pass on its own (default true). */
  breakdown?: boolean;
  /** Use this device (left open) instead of opening one (closed at the end). */
  gpu?: Gpu;
  /** How to open the device when `gpu` is not given (adapter/backend flags). */
  device?: OpenDeviceOptions;
}

interface Stats { median: number; min: number; max: number; samples: number[] }
const stats = (samples: number[]): Stats => ({ median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples });
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];
type Part = { name: string; ms: number };

function maxRelDiff(ours: Record<string, Float32Array>, tfjs: Record<string, Float32Array>): number {
  let worst = 0;
  for (const [name, expected] of Object.entries(tfjs)) {
    const actual = ours[name];
    if (!actual) return Infinity;
    worst = Math.max(worst, maxRelativeError(actual, expected));
  }
  return worst;
}

/** One implementation of one op and pass, ready to run: the loop below treats ours and tfjs alike. */
interface Side {
  warm(): Promise<void>;
  /** One timed repetition by the row's method, ms. */
  sample(): Promise<number>;
  /** One wall-clock repetition, ms. */
  wall(): Promise<number>;
  /** Time per kernel, ms. */
  parts(): Promise<Part[]>;
  outputs(): Promise<Record<string, Float32Array>>;
  destroy(): void;
}

async function oursSide(gpu: Gpu, c: OpCase, inputs: Record<string, Float32Array>, pass: PassName, method: TimingMethod, reps: number): Promise<Side> {
  const ours = await prepareOurs(gpu, c, inputs, pass);
  const wall = async () => {
    const t0 = performance.now();
    await gpu.run(ours.launches);
    return performance.now() - t0;
  };
  return {
    warm: () => gpu.run(ours.launches),
    async sample() {
      if (method === 'wall-clock') return wall();
      const timing = await timeLaunches(gpu, ours.launches, 1, 0);
      if (timing.method !== method) throw new Error(`timed by ${timing.method}, expected ${method}`);
      return timing.samples[0];
    },
    wall,
    async parts() {
      const parts: Part[] = [];
      for (const g of ours.groups) {
        const samples: number[] = [];
        if (method === 'timestamp-query') samples.push(...(await timeLaunches(gpu, g.launches, reps, 0)).samples);
        else for (let i = 0; i < reps; i++) { const t0 = performance.now(); await gpu.run(g.launches); samples.push(performance.now() - t0); }
        parts.push({ name: g.name, ms: median(samples) });
      }
      return parts;
    },
    outputs: () => ours.read(),
    destroy: () => ours.destroy(),
  };
}

function tfjsSide(t: TfjsOnGpu, c: OpCase, inputs: Record<string, Float32Array>, pass: PassName, method: TimingMethod): Side {
  const side = prepareTfjs(t, c, inputs, pass);
  let lastParts: Part[] = [];
  return {
    warm: async () => { t.tf.dispose(await t.runAndWait(side.fn)); },
    async sample() {
      if (method === 'wall-clock') return t.wallMs(side.fn);
      const { ms, parts } = await t.kernelMs(() => { side.fn(); });
      lastParts = parts;
      return ms;
    },
    wall: () => t.wallMs(side.fn),
    // tf.time already timed every program of each sample; report the last sample's.
    parts: async () => lastParts,
    async outputs() {
      const outputs = await t.runAndWait(side.fn);
      try {
        const out: Record<string, Float32Array> = {};
        for (let i = 0; i < side.names.length; i++) out[side.names[i]] = side.toOurs(side.names[i], (await outputs[i].data()) as Float32Array);
        return out;
      } finally {
        t.tf.dispose(outputs);
      }
    },
    destroy: () => side.dispose(),
  };
}

interface SideResult { gpu: Stats | null; wall: Stats | null; parts: Part[] | null; outputs: Record<string, Float32Array> | null; error?: string }

/**
 * Warms both sides up, then alternates their repetitions (ours, tfjs, ours, ...) so that a change
 * in machine load (other processes on a shared CPU running a software adapter) hits both alike.
 */
async function measure(sides: (Side | string)[], reps: number, warmup: number, wallClock: boolean, breakdown: boolean): Promise<SideResult[]> {
  const results: SideResult[] = sides.map((s) => ({ gpu: null, wall: null, parts: null, outputs: null, error: typeof s === 'string' ? s : undefined }));
  const live = (i: number) => typeof sides[i] !== 'string' && results[i].error === undefined;
  const step = async (i: number, f: (s: Side) => Promise<void>) => {
    if (!live(i)) return;
    try { await f(sides[i] as Side); } catch (e) { results[i].error = errorText(e); }
  };
  const timed: number[][] = sides.map(() => []);
  const walls: number[][] = sides.map(() => []);
  for (let i = 0; i < sides.length; i++) for (let w = 0; w < warmup; w++) await step(i, (s) => s.warm());
  for (let r = 0; r < reps; r++) for (let i = 0; i < sides.length; i++) await step(i, async (s) => { timed[i].push(await s.sample()); });
  if (wallClock) for (let r = 0; r < reps; r++) for (let i = 0; i < sides.length; i++) await step(i, async (s) => { walls[i].push(await s.wall()); });
  for (let i = 0; i < sides.length; i++) {
    if (!live(i)) continue;
    results[i].gpu = stats(timed[i]);
    if (wallClock) results[i].wall = stats(walls[i]);
    // A failing breakdown or read-back is reported but keeps the times.
    if (breakdown) await step(i, async (s) => { results[i].parts = await s.parts(); });
    await step(i, async (s) => { results[i].outputs = await s.outputs(); });
  }
  for (const s of sides) if (typeof s !== 'string') s.destroy();
  return results;
}

export async function runOpsBenchmark(options: OpsBenchmarkOptions = {}): Promise<OpsRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const reps = options.reps ?? 5;
  const warmup = options.warmup ?? 2;
  const wallClock = options.wallClock ?? true;
  const breakdown = options.breakdown ?? true;
  const scale = options.scale ?? 'full';
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`bench ops: reps must be a whole number ≥ 1, got ${reps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`bench ops: warmup must be a whole number ≥ 0, got ${warmup}`);
  const unknown = (options.ops ?? []).filter((o) => !OP_NAMES.includes(o as OpName));
  if (unknown.length > 0) throw new Error(`bench ops: unknown op ${unknown.map((o) => `"${o}"`).join(', ')}; the ops are ${OP_NAMES.join(', ')}`);
  const ops = options.ops ? OP_NAMES.filter((o) => options.ops!.includes(o)) : [...OP_NAMES];
  const cases = opCases(scale);

  const gpu = options.gpu ?? await openDevice(options.device);
  let tfjs: TfjsOnGpu | undefined;
  let tfjsUnavailable: string | undefined;
  const rows: OpsRow[] = [];
  try {
    log(formatAdapter(gpu.adapter));
    try {
      tfjs = await openTfjsOnGpu(gpu);
    } catch (e) {
      tfjsUnavailable = errorText(e);
      log(`tfjs: not available: ${tfjsUnavailable}`);
    }
    const method: TimingMethod = gpu.hasTimestamps && options.timing !== 'wall-clock' ? 'timestamp-query' : 'wall-clock';
    log(`versions: ${runtimeName()}, webgpu (Dawn) ${dawnVersion()}` +
      (tfjs ? `, @tensorflow/tfjs-core ${tfjs.versions.tfjsCore}, @tensorflow/tfjs-backend-webgpu ${tfjs.versions.tfjsBackendWebgpu} (same GPUDevice as ours)` : ''));
    log(`timing: ${method === 'timestamp-query'
      ? 'GPU time from timestamp queries (ours: one pass around all launches; tfjs: tf.time, summed per program)'
      : `wall-clock from submit to GPU idle (${gpu.hasTimestamps ? 'asked for' : 'the adapter has no timestamp queries'})`}; ` +
      `median of ${reps} rep${reps > 1 ? 's' : ''} after ${warmup} warm-up${warmup === 1 ? '' : 's'}${scale === 'tiny' ? '; TINY shapes (test scale)' : ''}`);
    for (const op of ops) log(`  ${op}: ${describeCase(cases[op])}`);

    for (const op of ops) {
      const c = cases[op];
      const inputs = makeInputs(c);
      for (const pass of PASS_NAMES) {
        const row: OpsRow = {
          op, pass, oursMs: null, tfjsMs: null, ratio: null, method, ...workOf(c, pass), shape: describeCase(c),
          oursMinMs: null, oursMaxMs: null, tfjsMinMs: null, tfjsMaxMs: null, oursWallMs: null, tfjsWallMs: null,
          oursSamples: [], tfjsSamples: [], maxRelDiff: null,
        };
        const ours: Side | string = await oursSide(gpu, c, inputs, pass, method, reps).catch(errorText);
        const theirs: Side | string = !tfjs ? tfjsUnavailable! : (() => {
          try { return tfjsSide(tfjs, c, inputs, pass, method); } catch (e) { return errorText(e); }
        })();
        const [o, t] = await measure([ours, theirs], reps, warmup, wallClock, breakdown);
        if (o.error !== undefined) row.oursError = o.error;
        if (t.error !== undefined) row.tfjsError = t.error;
        if (o.gpu) Object.assign(row, { oursMs: o.gpu.median, oursMinMs: o.gpu.min, oursMaxMs: o.gpu.max, oursSamples: o.gpu.samples, oursWallMs: o.wall?.median ?? null });
        if (t.gpu) Object.assign(row, { tfjsMs: t.gpu.median, tfjsMinMs: t.gpu.min, tfjsMaxMs: t.gpu.max, tfjsSamples: t.gpu.samples, tfjsWallMs: t.wall?.median ?? null });
        if (o.parts) row.oursParts = o.parts;
        if (t.parts) row.tfjsParts = t.parts;
        if (o.outputs && t.outputs) row.maxRelDiff = maxRelDiff(o.outputs, t.outputs);
        if (row.oursMs !== null && row.tfjsMs !== null && row.oursMs > 0) row.ratio = row.tfjsMs / row.oursMs;
        log(`${op} ${pass}: ours ${row.oursMs?.toFixed(3) ?? `— (${row.oursError})`} ms, ` +
          `tfjs ${row.tfjsMs?.toFixed(3) ?? `— (${row.tfjsError})`} ms${row.ratio !== null ? `, ratio ${row.ratio.toFixed(2)}` : ''}`);
        rows.push(row);
      }
    }
  } finally {
    await tfjs?.close();
    if (!options.gpu) gpu.close();
  }
  log('');
  log(formatOpsTable(rows));
  if (options.json) {
    await writeFile(options.json, JSON.stringify(rows.map((r) => ({ ...r, adapter: gpu.adapter.name })), null, 2) + '\n');
    log(`wrote ${rows.length} rows to ${options.json}`);
  }
  return rows;
}
