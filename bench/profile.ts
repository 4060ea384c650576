// `densenet-wgsl bench profile`: where one step's GPU time goes, kernel by kernel, on this adapter.
// It builds the session a user's run would (the same kernels, tuning cache and memory strategy),
// warms it up, then for each timed step runs, one after another: a plain step timed by wall clock
// (and the host's share of it: writing the batch, recording, submitting), the same step with its one
// compute pass timestamped (the GPU time of a step), and the same step with every launch in a
// timestamped pass of its own (where that time goes). Medians over the steps. The tables are
// profile_report.ts's. Training steps update the weights as training does (SGD on one random batch).

import { writeFile } from '../src/base/host.js';
import { formatAdapter, openDevice, type Gpu, type OpenDeviceOptions } from '../src/gpu/device.js';
import { kernelClass } from '../src/gpu/profile.js';
import { median, PassTimer } from '../src/gpu/timing.js';
import type { Executable } from '../src/graph/executor.js';
import { sizeOf } from '../src/kernels/tensor.js';
import type { MemoryStrategy } from '../src/models/densenet_graph.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession, TrainingSession } from '../src/models/session.js';
import { buildReport, chromeTrace, formatProfile, opTimes, type ProfiledOp, type ProfileReport } from './profile_report.js';
import { sgdConfig } from './train_impls.js';
import { trainProblem } from './train.js';

export interface ProfileOptions {
  model: string;
  batch: number;
  mode: 'train' | 'inference';
  memory: MemoryStrategy;
  /** Timed steps (each: plain, one-pass timestamped, per-launch timestamped). */
  steps: number;
  /** Rows per table. */
  top: number;
  json?: string;
  /** Also write the last timed step's launches as a Chrome trace (chrome://tracing, ui.perfetto.dev) to this file. */
  trace?: string;
  command?: string;
  log?: (line: string) => void;
  /** Use this device (left open) instead of opening one (closed at the end). */
  gpu?: Gpu;
  device?: OpenDeviceOptions;
}

/** What the profile needs of each op of a built executable, in recording order. */
export function profiledOps(executable: Executable): ProfiledOp[] {
  const names = executable.launchNames;
  const counts = executable.opLaunchCounts;
  let k = 0;
  return executable.graph.ops.map((op, i) => {
    const kernels = names.slice(k, k + counts[i]);
    k += kernels.length;
    const tensors = new Set([...op.reads, ...op.writes]);
    const bytes = [...tensors].reduce((s, v) => s + 4 * sizeOf(v.shape), 0);
    return { name: op.name, phase: op.phase, kernels, flops: op.flops, bytes };
  });
}

interface Stepper {
  executable: Executable;
  /** Writes the batch, records and submits (timed on the host), then waits for the result. */
  step(timer?: PassTimer): Promise<{ submitMs: number | null }>;
  close(): void;
}

async function trainingStepper(gpu: Gpu, o: ProfileOptions): Promise<Stepper> {
  const problem = trainProblem(o.model, o.batch, 1);
  const model = DenseNetModel.create(gpu, problem.config, problem.seed);
  try {
    const session = await TrainingSession.create(model, { batch: o.batch, memory: o.memory, optimizer: sgdConfig(problem) });
    return {
      executable: session.executable,
      async step(timer) {
        const t0 = performance.now();
        session.submit(problem.images, problem.labels, problem.lr, timer);
        const submitMs = performance.now() - t0;
        const { loss } = await session.result();
        if (!Number.isFinite(loss)) throw new Error(`bench profile: the training loss became ${loss}`);
        return { submitMs };
      },
      close() { session.destroy(); model.close(); },
    };
  } catch (e) {
    model.close();
    throw e;
  }
}

async function inferenceStepper(gpu: Gpu, o: ProfileOptions): Promise<Stepper> {
  const problem = trainProblem(o.model, o.batch, 1);
  const model = DenseNetModel.create(gpu, problem.config, problem.seed);
  try {
    const session = await InferenceSession.create(model, { batch: o.batch, memory: o.memory });
    return {
      executable: session.executable,
      // InferenceSession.run writes, records, submits and reads back in one call: its host share is not separable here.
      async step(timer) { await session.run(problem.images, timer); return { submitMs: null }; },
      close() { session.destroy(); model.close(); },
    };
  } catch (e) {
    model.close();
    throw e;
  }
}

export async function runProfile(o: ProfileOptions): Promise<ProfileReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const gpu = o.gpu ?? await openDevice(o.device);
  try {
    if (!gpu.hasTimestamps) {
      throw new Error(`bench profile: adapter "${gpu.adapter.name}" has no timestamp-query feature, which per-kernel GPU times need; ` +
        'bench train measures whole steps by wall clock on any adapter');
    }
    log(formatAdapter(gpu.adapter));
    log(`bench profile: building ${o.model}, batch ${o.batch}, ${o.mode}, memory ${o.memory}...`);
    const stepper = await (o.mode === 'train' ? trainingStepper(gpu, o) : inferenceStepper(gpu, o));
    const ops = profiledOps(stepper.executable);
    const launches = stepper.executable.launchCount;
    const stepTimer = new PassTimer(gpu.device, 1, false);
    const launchTimer = new PassTimer(gpu.device, launches, true);
    try {
      await stepper.step(); // warm-up: first-use costs stay out of the medians
      const wall: number[] = [], submit: (number | null)[] = [], gpuStep: number[] = [], perLaunch: number[][] = [];
      let spans: { start: number; ms: number }[] = [];
      for (let i = 0; i < o.steps; i++) {
        const t0 = performance.now();
        const { submitMs } = await stepper.step();
        wall.push(performance.now() - t0);
        submit.push(submitMs);
        await stepper.step(stepTimer);
        gpuStep.push((await stepTimer.read())[0]);
        await stepper.step(launchTimer);
        spans = await launchTimer.readSpans();
        perLaunch.push(spans.map((s) => s.ms));
        log(`  step ${i + 1} of ${o.steps}: wall ${wall[i].toFixed(1)} ms, GPU ${gpuStep[i].toFixed(1)} ms, launches one by one ${perLaunch[i].reduce((a, b) => a + b, 0).toFixed(1)} ms`);
      }
      const times = opTimes(ops, perLaunch);
      const header = {
        model: o.model, batch: o.batch, mode: o.mode, memory: o.memory, kernels: kernelClass(gpu), adapter: gpu.adapter.name, adapterClass: gpu.adapter.class,
        launches, steps: o.steps, wallMs: median(wall), gpuStepMs: median(gpuStep), launchSumMs: times.reduce((s, t) => s + t.ms, 0),
        submitMs: submit.includes(null) ? null : median(submit as number[]), gflopPerStep: ops.reduce((s, op) => s + (op.flops ?? 0), 0) / 1e9,
      };
      const report = buildReport(header, times, o.top);
      log('');
      log(formatProfile(report, o.top));
      if (o.json) {
        await writeFile(o.json, JSON.stringify({ ...report, command: o.command, ops: times }, null, 2) + '\n');
        log(`wrote the profile to ${o.json}`);
      }
      if (o.trace) {
        await writeFile(o.trace, JSON.stringify(chromeTrace(ops, spans, header)) + '\n');
        log(`wrote the last step's ${spans.length} launches as a Chrome trace to ${o.trace} (open it in ui.perfetto.dev or chrome://tracing)`);
      }
      return report;
    } finally {
      stepTimer.destroy();
      launchTimer.destroy();
      stepper.close();
    }
  } finally {
    if (!o.gpu) gpu.close();
  }
}
