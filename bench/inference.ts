// `densenet-wgsl bench inference`: DenseNet inference (default DenseNet-121, [3, 224, 224], 1000
// classes; random weights: the time does not depend on their values) at several batch sizes, ours
// (InferenceSession, memory strategy 'fused') against @tensorflow/tfjs-backend-webgpu on the SAME
// Dawn device in the same process (bench/tfjs_inference.ts). Each side is warmed up (pipelines
// compiled, weights resident), then timed `reps` times, the two sides alternating. A time is wall
// clock from handing over the NCHW images on the host to having the outputs back on the host
// (layout change, upload, GPU, read-back), the same work on both sides. Both sides get the same
// weights and images and their outputs are cross-checked.

import { writeFileSync } from 'node:fs';
import { formatAdapter, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { median } from '../src/gpu/timing.js';
import { describeDenseNet, multiplyAdds, preset, type DenseNetConfig } from '../src/models/index.js';
import type { MemoryStrategy } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession } from '../src/models/session.js';
import { createTfjsInference, type TfjsInferenceModel } from './tfjs_inference.js';
import { dawnVersion, openTfjsOnGpu, type TfjsOnGpu } from './tfjs_webgpu.js';

export interface InferenceBenchmarkOptions {
  /** Also write the rows as a JSON array to this file. */
  json?: string;
  /** Batch sizes (default [1, 8]). */
  batches?: number[];
  /** Preset name or config (default 'densenet121'). */
  model?: string | DenseNetConfig;
  /** Timed repetitions per side and batch (default 2: DenseNet-121 takes many seconds per batch on a software adapter). */
  reps?: number;
  /** Untimed runs per side and batch before timing (default 1). */
  warmup?: number;
  memory?: MemoryStrategy;
  /** Skip the tfjs side (default false). */
  oursOnly?: boolean;
  log?: (line: string) => void;
  /** Use this device (left open) instead of opening one (closed at the end). */
  gpu?: Gpu;
  device?: OpenDeviceOptions;
}

export interface InferenceRow {
  model: string;
  batch: number;
  oursMs: number | null;
  tfjsMs: number | null;
  oursImagesPerSec: number | null;
  tfjsImagesPerSec: number | null;
  /** tfjs time / our time: above 1 means ours is faster. */
  ratio: number | null;
  oursSamples: number[];
  tfjsSamples: number[];
  /** Our arena's peak bytes while this session existed (parameters + session buffers). */
  oursPeakBytes: number | null;
  /** tfjs-webgpu's buffer manager: bytes allocated after the runs (its pool keeps buffers). */
  tfjsAllocatedBytes: number | null;
  /** max |ours − tfjs| / max |tfjs| over the outputs. */
  maxRelDiff: number | null;
  gflopPerImage: number;
  oursError?: string;
  tfjsError?: string;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

function randomImages(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

function maxRelDiff(ours: Float32Array, theirs: Float32Array): number {
  if (ours.length !== theirs.length) return Infinity;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < theirs.length; i++) {
    scale = Math.max(scale, Math.abs(theirs[i]));
    const d = Math.abs(ours[i] - theirs[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
  }
  return scale > 0 ? diff / scale : diff;
}

export function formatInferenceTable(rows: InferenceRow[]): string {
  const f = (v: number | null, digits: number) => (v === null ? '—' : v.toFixed(digits));
  const head = ['model', 'batch', 'ours ms', 'tfjs ms', 'ours img/s', 'tfjs img/s', 'ratio', 'ours peak MiB', 'tfjs alloc MiB', 'max rel diff'];
  const body = rows.map((r) => [r.model, String(r.batch), f(r.oursMs, 0), f(r.tfjsMs, 0), f(r.oursImagesPerSec, 3), f(r.tfjsImagesPerSec, 3),
    f(r.ratio, 2), f(r.oursPeakBytes === null ? null : r.oursPeakBytes / 2 ** 20, 1), f(r.tfjsAllocatedBytes === null ? null : r.tfjsAllocatedBytes / 2 ** 20, 1),
    r.maxRelDiff === null ? '—' : r.maxRelDiff.toExponential(1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const notes = rows.flatMap((r) => [r.oursError && `batch ${r.batch} ours: ${r.oursError}`, r.tfjsError && `batch ${r.batch} tfjs: ${r.tfjsError}`].filter(Boolean) as string[]);
  return [line(head), ...body.map(line), ...notes].join('\n');
}

export async function runInferenceBenchmark(options: InferenceBenchmarkOptions = {}): Promise<InferenceRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const batches = options.batches ?? [1, 8];
  const reps = options.reps ?? 2;
  const warmup = options.warmup ?? 1;
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`bench inference: reps must be a whole number ≥ 1, got ${reps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`bench inference: warmup must be a whole number ≥ 0, got ${warmup}`);
  if (batches.length === 0 || !batches.every((b) => Number.isInteger(b) && b >= 1)) throw new Error(`bench inference: batches must be whole numbers ≥ 1, got ${batches.join(', ')}`);
  const config = typeof options.model === 'object' ? options.model : preset(options.model ?? 'densenet121');
  const arch = describeDenseNet(config);
  const gflopPerImage = (2 * multiplyAdds(config)) / 1e9;

  const gpu = options.gpu ?? await openDevice(options.device);
  let tfjs: TfjsOnGpu | undefined;
  let tfjsModel: TfjsInferenceModel | undefined;
  let tfjsUnavailable: string | undefined;
  const model = DenseNetModel.create(gpu, config, 1);
  const rows: InferenceRow[] = [];
  try {
    log(formatAdapter(gpu.adapter));
    const params = await model.readParameters();
    if (options.oursOnly) tfjsUnavailable = 'skipped';
    else {
      try {
        tfjs = await openTfjsOnGpu(gpu);
        tfjsModel = createTfjsInference(tfjs.tf, arch, params);
      } catch (e) {
        tfjsUnavailable = errorText(e);
        log(`tfjs: not available: ${tfjsUnavailable}`);
      }
    }
    log(`versions: node ${process.versions.node}, webgpu (Dawn) ${dawnVersion()}` +
      (tfjs ? `, @tensorflow/tfjs-core ${tfjs.versions.tfjsCore}, @tensorflow/tfjs-backend-webgpu ${tfjs.versions.tfjsBackendWebgpu} (same GPUDevice as ours)` : ''));
    log(`model ${config.name}: input [${config.inputShape.join(', ')}], ${config.classes ?? 'no'} classes, ${gflopPerImage.toFixed(2)} GFLOP per image, random weights; ` +
      `ours: memory '${options.memory ?? 'fused'}'; wall clock from host images to host outputs, median of ${reps} rep${reps > 1 ? 's' : ''} after ${warmup} warm-up${warmup === 1 ? '' : 's'}`);

    for (const batch of batches) {
      const row: InferenceRow = {
        model: config.name, batch, oursMs: null, tfjsMs: null, oursImagesPerSec: null, tfjsImagesPerSec: null, ratio: null,
        oursSamples: [], tfjsSamples: [], oursPeakBytes: null, tfjsAllocatedBytes: null, maxRelDiff: null, gflopPerImage,
      };
      const [c, h, w] = config.inputShape;
      const images = randomImages(batch * c * h * w, batch);
      let session: InferenceSession | undefined;
      gpu.arena.resetPeak(); // from the parameters alone: the peak is then parameters + this session
      try {
        session = await InferenceSession.create(model, { batch, memory: options.memory });
      } catch (e) {
        row.oursError = errorText(e);
      }
      if (!tfjsModel) row.tfjsError = tfjsUnavailable;
      let oursOut: Float32Array | undefined;
      let tfjsOut: Float32Array | undefined;
      const oursRun = async () => {
        const t0 = performance.now();
        oursOut = await session!.run(images);
        return performance.now() - t0;
      };
      const tfjsRun = async () => {
        const t0 = performance.now();
        const out = tfjsModel!.run(images, batch);
        try { tfjsOut = (await out.data()) as Float32Array; } finally { out.dispose(); }
        return performance.now() - t0;
      };
      const sides: [() => Promise<number>, number[], 'oursError' | 'tfjsError'][] = [];
      if (session) sides.push([oursRun, row.oursSamples, 'oursError']);
      if (tfjsModel) sides.push([tfjsRun, row.tfjsSamples, 'tfjsError']);
      for (let r = -warmup; r < reps; r++) {
        const last: Record<string, string> = { oursError: '—', tfjsError: '—' };
        for (const [run, samples, error] of sides) {
          if (row[error] !== undefined) continue;
          try {
            const ms = await run();
            if (r >= 0) samples.push(ms);
            last[error] = ms.toFixed(0);
          } catch (e) {
            row[error] = errorText(e);
          }
        }
        // The first run also pays for compiling shaders the driver builds lazily (tfjs compiles its own then too).
        log(`  batch ${batch}: ${r < 0 ? 'warm-up' : `rep ${r + 1}/${reps}`}: ours ${last.oursError} ms, tfjs ${last.tfjsError} ms`);
      }
      if (session) {
        row.oursPeakBytes = gpu.arena.peakBytes;
        session.destroy();
      }
      if (row.oursSamples.length === reps) {
        row.oursMs = median(row.oursSamples);
        row.oursImagesPerSec = batch / (row.oursMs / 1000);
      }
      if (row.tfjsSamples.length === reps) {
        row.tfjsMs = median(row.tfjsSamples);
        row.tfjsImagesPerSec = batch / (row.tfjsMs / 1000);
        const memory = tfjs!.tf.memory() as { numBytesAllocatedInGPU?: number };
        row.tfjsAllocatedBytes = memory.numBytesAllocatedInGPU ?? null;
      }
      if (row.oursMs !== null && row.tfjsMs !== null) row.ratio = row.tfjsMs / row.oursMs;
      if (oursOut && tfjsOut) row.maxRelDiff = maxRelDiff(oursOut, tfjsOut);
      rows.push(row);
    }
  } finally {
    tfjsModel?.dispose();
    await tfjs?.close();
    model.close();
    if (!options.gpu) gpu.close();
  }
  log('');
  log(formatInferenceTable(rows));
  if (options.json) {
    writeFileSync(options.json, JSON.stringify(rows.map((r) => ({ ...r, adapter: gpu.adapter.name })), null, 2) + '\n');
    log(`wrote ${rows.length} rows to ${options.json}`);
  }
  return rows;
}
