// Runs a planned graph: allocates one arena buffer per memory category (sized by the plan), builds
// every op's launches up front and compiles every pipeline for real before the first step (with
// progress: see gpu/warmup.ts), and records a step as one compute pass in one command buffer. Per
// step only inputs and a few uniforms are written: no allocation and no compile after construction.

import type { ArenaBuffer, MemoryCategory } from '../gpu/arena.js';
import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import type { PassTimer } from '../gpu/timing.js';
import { compilePipelines, type CompileProgress } from '../gpu/warmup.js';
import type { TensorRef } from '../kernels/tensor.js';
import { Graph, GraphError, type StepContext, type Value } from './graph.js';
import { planMemory, type MemoryPlan } from './planner.js';

export interface ExecutableOptions {
  /** Progress of the driver's compile, k of N programs (default: the device's, see OpenDeviceOptions.onCompile). */
  onCompile?: CompileProgress;
  /**
   * Compile every pipeline now (default true). False leaves the driver's compile to the first
   * step: for code that only builds (tests of bindings, pipeline counts) and never runs.
   */
  precompile?: boolean;
}

export class Executable {
  private constructor(
    readonly gpu: Gpu,
    readonly graph: Graph,
    readonly plan: MemoryPlan,
    private readonly pools: Map<MemoryCategory, ArenaBuffer>,
    private readonly opLaunches: Launch[][],
  ) {}

  static async create(gpu: Gpu, graph: Graph, label = 'graph', options: ExecutableOptions = {}): Promise<Executable> {
    const plan = planMemory(graph);
    const pools = new Map<MemoryCategory, ArenaBuffer>();
    const opLaunches: Launch[][] = [];
    try {
      for (const [category, bytes] of Object.entries(plan.poolBytes) as [MemoryCategory, number][]) {
        if (bytes > 0) pools.set(category, gpu.arena.allocate(`${label}.${category}`, category, bytes));
      }
      const ref = (v: Value): TensorRef => refFor(plan, pools, v);
      // Compile everything concurrently; the pipeline cache shares identical programs.
      const built = await Promise.allSettled(graph.ops.map((op) => op.build({ gpu, ref })));
      for (const r of built) if (r.status === 'fulfilled') opLaunches.push(r.value);
      const failed = built.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        const reason = (built[failed] as PromiseRejectedResult).reason as Error;
        throw new GraphError(`graph: op "${graph.ops[failed].name}" could not be built: ${reason.message}`);
      }
      await validateEncoding(gpu, graph, opLaunches);
      if (options.precompile !== false) await compilePipelines(gpu.device, opLaunches.flat(), gpu.compileOptions(options.onCompile ?? gpu.onCompile));
      return new Executable(gpu, graph, plan, pools, opLaunches);
    } catch (e) {
      for (const launches of opLaunches) launches.forEach((l) => l.destroy());
      for (const p of pools.values()) gpu.arena.free(p);
      throw e;
    }
  }

  ref(v: Value): TensorRef { return refFor(this.plan, this.pools, v); }

  write(v: Value, data: Float32Array | Uint32Array): void {
    const r = this.ref(v);
    if (data.length !== r.shape.reduce((a, b) => a * b, 1)) {
      throw new GraphError(`graph: writing ${data.length} elements into "${v.name}" of shape [${v.shape.join(', ')}]`);
    }
    this.gpu.write(r.buffer, data, r.offset);
  }

  async read(v: Value): Promise<Float32Array> {
    const r = this.ref(v);
    return this.gpu.read(r.buffer, r.offset, r.shape.reduce((a, b) => a * b, 1));
  }

  get launchCount(): number { return this.opLaunches.reduce((a, l) => a + l.length, 0); }

  /** The kernel (program) name of every launch, in recording order: which variants a graph runs. */
  get launchNames(): string[] { return this.opLaunches.flatMap((l) => l.map((launch) => launch.name)); }

  /** Launches per op, in op order (their sum is launchCount): which launches an op recorded. */
  get opLaunchCounts(): number[] { return this.opLaunches.map((l) => l.length); }

  /**
   * Applies per-step uniforms, then records every launch, in op order, into one compute pass. With
   * a `timer` the pass is timestamped; with a per-launch timer (bench profile) each launch gets a
   * timestamped pass of its own instead, which runs the same dispatches in the same order.
   */
  encode(encoder: GPUCommandEncoder, step?: StepContext, timer?: PassTimer): void {
    if (step) this.graph.ops.forEach((op, i) => op.onStep?.(this.opLaunches[i], step));
    if (timer?.perLaunch) {
      this.opLaunches.forEach((launches, i) => launches.forEach((l) => {
        const pass = timer.beginPass(encoder, this.graph.ops[i].name);
        l.encode(pass);
        pass.end();
      }));
    } else {
      const pass = timer ? timer.beginPass(encoder, 'step') : encoder.beginComputePass({ label: 'step' });
      for (const launches of this.opLaunches) for (const l of launches) l.encode(pass);
      pass.end();
    }
    timer?.finish(encoder);
  }

  /** One step: one command buffer, submitted and awaited; a validation error names the failure. */
  async run(step?: StepContext, timer?: PassTimer): Promise<void> {
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    this.encode(encoder, step, timer);
    device.queue.submit([encoder.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new GraphError(`graph: step failed validation: ${error.message}`);
    await this.gpu.waitFor(() => device.queue.onSubmittedWorkDone());
  }

  destroy(): void {
    for (const launches of this.opLaunches) launches.forEach((l) => l.destroy());
    this.opLaunches.length = 0;
    for (const p of this.pools.values()) this.gpu.arena.free(p);
    this.pools.clear();
  }
}

/**
 * Encodes each op's launches once, in its own error scope, without submitting: a binding that
 * WebGPU refuses (e.g. overlapping writable ranges) is reported here, naming the op, instead of
 * surfacing later as a silently skipped step.
 */
async function validateEncoding(gpu: Gpu, graph: Graph, opLaunches: Launch[][]): Promise<void> {
  const checks = opLaunches.map((launches) => {
    gpu.device.pushErrorScope('validation');
    const encoder = gpu.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const l of launches) l.encode(pass);
    pass.end();
    encoder.finish();
    return gpu.device.popErrorScope();
  });
  const errors = await Promise.all(checks);
  const failed = errors.findIndex((e) => e !== null);
  if (failed >= 0) throw new GraphError(`graph: op "${graph.ops[failed].name}" cannot be recorded: ${errors[failed]!.message}`);
}

function refFor(plan: MemoryPlan, pools: Map<MemoryCategory, ArenaBuffer>, v: Value): TensorRef {
  const external = v.storage.external;
  if (external) return { buffer: external.buffer, offset: external.offset + v.offset, shape: v.shape };
  const offset = plan.offsets.get(v.storage);
  const buffer = pools.get(v.storage.category);
  if (offset === undefined || !buffer) throw new GraphError(`graph: "${v.name}" has no planned storage (is it used by any op?)`);
  return { buffer, offset: offset / 4 + v.offset, shape: v.shape };
}
