// `densenet-wgsl bench inference`: DenseNet inference (default DenseNet-121, [3, 224, 224], 1000
// classes; random weights: the time does not depend on their values) at several batch sizes, ours
// (InferenceSession, memory strategy 'fused') against @tensorflow/tfjs-backend-webgpu on the SAME
// Dawn device in the same process (bench/tfjs_inference.ts), and against ONNX Runtime's CPU
// execution provider on all cores with the same network exported to ONNX (bench/ort_inference.ts):
// what a user without a GPU would run instead. Each side is warmed up (pipelines compiled, weights
// resident), then timed `reps` times, the sides alternating. A time is wall clock from handing over
// the NCHW images on the host to having the outputs back on the host (layout change, upload, GPU,
// read-back), the same work on every side. Every side gets the same weights and images and their
// outputs are cross-checked against ours.

import { writeFileSync } from 'node:fs';
import { formatAdapter, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { median } from '../src/gpu/timing.js';
import { describeDenseNet, multiplyAdds, preset, type DenseNetConfig } from '../src/models/index.js';
import type { MemoryStrategy } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession } from '../src/models/session.js';
import { createOrtInference, type OrtInferenceModel } from './ort_inference.js';
import { createTfjsInference, type TfjsInferenceModel } from './tfjs_inference.js';
import { dawnVersion, openTfjsOnGpu, type TfjsOnGpu } from './tfjs_webgpu.js';
import { maxRelativeError } from './rel_diff.js';

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
  /** Skip the tfjs and ONNX Runtime sides (default false). */
  oursOnly?: boolean;
  /** Skip the ONNX Runtime side (default false). */
  noOrt?: boolean;
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
  /** ONNX Runtime, CPU execution provider, all cores. */
  ortMs: number | null;
  oursImagesPerSec: number | null;
  tfjsImagesPerSec: number | null;
  ortImagesPerSec: number | null;
  /** tfjs time / our time: above 1 means ours is faster. */
  ratio: number | null;
  /** ONNX Runtime time / our time: above 1 means ours is faster. */
  ortRatio: number | null;
  oursSamples: number[];
  tfjsSamples: number[];
  ortSamples: number[];
  /** Our arena's peak bytes while this session existed (parameters + session buffers). */
  oursPeakBytes: number | null;
  /** tfjs-webgpu's buffer manager: bytes allocated after the runs (its pool keeps buffers). */
  tfjsAllocatedBytes: number | null;
  /** max |ours − tfjs| / max |tfjs| over the outputs. */
  maxRelDiff: number | null;
  /** max |ours − ort| / max |ort| over the outputs. */
  ortMaxRelDiff: number | null;
  gflopPerImage: number;
  oursError?: string;
  tfjsError?: string;
  ortError?: string;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

function randomImages(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

/**
 * The table: times and images/s of each side, ratios to ours (above 1: ours faster), memory, and
 * each side's output difference from ours. `where` (optional) says what the ratios mean on this
 * machine: printed under the table with one verdict line per batch against ONNX Runtime.
 */
export function formatInferenceTable(rows: InferenceRow[], where?: string): string {
  const f = (v: number | null, digits: number) => (v === null ? '—' : v.toFixed(digits));
  const e = (v: number | null) => (v === null ? '—' : v.toExponential(1));
  const head = ['model', 'batch', 'ours ms', 'tfjs ms', 'ort ms', 'ours img/s', 'tfjs img/s', 'ort img/s', 'tfjs/ours', 'ort/ours',
    'ours peak MiB', 'tfjs alloc MiB', 'diff tfjs', 'diff ort'];
  const body = rows.map((r) => [r.model, String(r.batch), f(r.oursMs, 0), f(r.tfjsMs, 0), f(r.ortMs, 0), f(r.oursImagesPerSec, 3), f(r.tfjsImagesPerSec, 3),
    f(r.ortImagesPerSec, 3), f(r.ratio, 2), f(r.ortRatio, 2), f(r.oursPeakBytes === null ? null : r.oursPeakBytes / 2 ** 20, 1),
    f(r.tfjsAllocatedBytes === null ? null : r.tfjsAllocatedBytes / 2 ** 20, 1), e(r.maxRelDiff), e(r.ortMaxRelDiff)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const notes = rows.flatMap((r) => [r.oursError && `batch ${r.batch} ours: ${r.oursError}`, r.tfjsError && `batch ${r.batch} tfjs: ${r.tfjsError}`,
    r.ortError && `batch ${r.batch} ort: ${r.ortError}`].filter(Boolean) as string[]);
  const verdicts = rows.filter((r) => r.ortRatio !== null).map((r) => {
    const x = r.ortRatio!;
    return `batch ${r.batch}: ONNX Runtime on the CPU is ${x < 1 ? `${(1 / x).toFixed(1)}× faster than ours` : `${x.toFixed(1)}× slower than ours`}` +
      (r.ratio !== null ? `; ours is ${r.ratio >= 1 ? `${r.ratio.toFixed(1)}× faster than` : `${(1 / r.ratio).toFixed(1)}× slower than`} tfjs-webgpu` : '');
  });
  return [line(head), ...body.map(line), ...notes, ...(where && verdicts.length ? [where, ...verdicts] : [])].join('\n');
}

/** What the ONNX Runtime ratio means on this adapter, in words. */
function whereWeStand(gpu: Gpu, ortDescription: string): string {
  const software = gpu.profile.class === 'software';
  return `ort = ${ortDescription}. ` + (software
    ? `The adapter is software (${gpu.adapter.name || 'CPU'}): ours and tfjs-webgpu run on these same CPU cores through a Vulkan emulator, so ONNX Runtime's ` +
      'native CPU kernels are what a user of this machine should pick; our rows measure the engine, not a GPU.'
    : 'Ours and tfjs-webgpu run on the GPU, ONNX Runtime on the CPU: the ratio is what the GPU buys over this machine\'s cores.');
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
  let ortModel: OrtInferenceModel | undefined;
  let ortUnavailable: string | undefined;
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
    if (options.oursOnly || options.noOrt) ortUnavailable = 'skipped';
    else {
      try {
        ortModel = await createOrtInference(config, params);
        log(`ort: ${ortModel.description}, the same network exported to ONNX`);
      } catch (e) {
        ortUnavailable = errorText(e);
        log(`ort: not available: ${ortUnavailable}`);
      }
    }
    log(`versions: node ${process.versions.node}, webgpu (Dawn) ${dawnVersion()}` +
      (tfjs ? `, @tensorflow/tfjs-core ${tfjs.versions.tfjsCore}, @tensorflow/tfjs-backend-webgpu ${tfjs.versions.tfjsBackendWebgpu} (same GPUDevice as ours)` : ''));
    log(`model ${config.name}: input [${config.inputShape.join(', ')}], ${config.classes ?? 'no'} classes, ${gflopPerImage.toFixed(2)} GFLOP per image, random weights; ` +
      `ours: memory '${options.memory ?? 'fused'}'; wall clock from host images to host outputs, median of ${reps} rep${reps > 1 ? 's' : ''} after ${warmup} warm-up${warmup === 1 ? '' : 's'}`);

    for (const batch of batches) {
      const row: InferenceRow = {
        model: config.name, batch, oursMs: null, tfjsMs: null, ortMs: null, oursImagesPerSec: null, tfjsImagesPerSec: null, ortImagesPerSec: null,
        ratio: null, ortRatio: null, oursSamples: [], tfjsSamples: [], ortSamples: [], oursPeakBytes: null, tfjsAllocatedBytes: null,
        maxRelDiff: null, ortMaxRelDiff: null, gflopPerImage,
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
      if (!ortModel) row.ortError = ortUnavailable;
      let oursOut: Float32Array | undefined;
      let tfjsOut: Float32Array | undefined;
      let ortOut: Float32Array | undefined;
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
      const ortRun = async () => {
        const t0 = performance.now();
        ortOut = await ortModel!.run(images, batch);
        return performance.now() - t0;
      };
      const sides: [() => Promise<number>, number[], 'oursError' | 'tfjsError' | 'ortError'][] = [];
      if (session) sides.push([oursRun, row.oursSamples, 'oursError']);
      if (tfjsModel) sides.push([tfjsRun, row.tfjsSamples, 'tfjsError']);
      if (ortModel) sides.push([ortRun, row.ortSamples, 'ortError']);
      for (let r = -warmup; r < reps; r++) {
        const last: Record<string, string> = { oursError: '—', tfjsError: '—', ortError: '—' };
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
        log(`  batch ${batch}: ${r < 0 ? 'warm-up' : `rep ${r + 1}/${reps}`}: ours ${last.oursError} ms, tfjs ${last.tfjsError} ms, ort ${last.ortError} ms`);
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
      if (row.ortSamples.length === reps) {
        row.ortMs = median(row.ortSamples);
        row.ortImagesPerSec = batch / (row.ortMs / 1000);
      }
      if (row.oursMs !== null && row.tfjsMs !== null) row.ratio = row.tfjsMs / row.oursMs;
      if (row.oursMs !== null && row.ortMs !== null) row.ortRatio = row.ortMs / row.oursMs;
      if (oursOut && tfjsOut) row.maxRelDiff = maxRelativeError(oursOut, tfjsOut);
      if (oursOut && ortOut) row.ortMaxRelDiff = maxRelativeError(oursOut, ortOut);
      rows.push(row);
    }
  } finally {
    tfjsModel?.dispose();
    await tfjs?.close();
    await ortModel?.dispose();
    model.close();
    if (!options.gpu) gpu.close();
  }
  log('');
  log(formatInferenceTable(rows, ortModel ? whereWeStand(gpu, ortModel.description) : undefined));
  if (options.json) {
    writeFileSync(options.json, JSON.stringify(rows.map((r) => ({ ...r, adapter: gpu.adapter.name })), null, 2) + '\n');
    log(`wrote ${rows.length} rows to ${options.json}`);
  }
  return rows;
}
