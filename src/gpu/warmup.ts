// Compiles pipelines for real, up front, with progress. On Mesa lavapipe (llvmpipe) creating a
// compute pipeline only translates the shader; the LLVM compile happens at the pipeline's first
// dispatch (seconds each with an empty shader cache), so without this the first training step
// silently carries the whole compile. One indirect dispatch of zero workgroups per pipeline
// triggers the compile without running the kernel (no writes, whatever is bound), and without the
// warning Dawn prints for a direct dispatch of zero workgroups.
//
// A device compiles on one thread (its queue's), so on a software adapter the compile is spread
// over helper devices of the same adapter, one thread each: the driver stores what a helper
// compiles in its on-disk shader cache, and the same pipeline's first dispatch on the main device
// then loads it (milliseconds). Where that cache is off (MESA_SHADER_CACHE_DISABLE: the caller opens
// no helpers; an unwritable cache directory), such a load takes as long as a compile: once misses
// outnumber hits the helpers stop and the main device compiles the rest alone (what the helpers took
// meanwhile is compiled twice).

import { cpuThreads } from '../base/host.js';
import { createPipeline, uniformBytes, type Launch, type ProgramSpec } from './program.js';

/** A pipeline's compile as the progress reports it: which kernel, its key, wall-clock ms, where it compiled. */
export interface CompiledPipeline { name: string; key: string; ms: number; where: 'main' | 'helper' | 'helper, cache miss' }

/**
 * Called with (0, total) before the first compile and (k, total, pipeline) after each (k counts the
 * pipelines ready on the main device); never when total is 0.
 */
export type CompileProgress = (done: number, total: number, compiled?: CompiledPipeline) => void;

export interface CompileOptions {
  onProgress?: CompileProgress;
  /** Opens one more device of the same adapter (same features and limits); none: compile on the main device only. */
  openHelper?: () => Promise<GPUDevice>;
  /** Devices compiling at once, the main one included (default: the CPU's threads, at most 4). */
  concurrency?: number;
}

/** Pipelines already dispatched once (compiled by the driver) in this process. */
const warmed = new WeakSet<GPUComputePipeline>();

/** The distinct pipelines among `launches` that have not been compiled by a dispatch yet. */
export function coldPipelines(launches: Launch[]): Launch[] {
  const seen = new Set<GPUComputePipeline>();
  const cold: Launch[] = [];
  for (const l of launches) {
    const pipeline = l.program.pipeline;
    if (warmed.has(pipeline) || seen.has(pipeline)) continue;
    seen.add(pipeline);
    cold.push(l);
  }
  return cold;
}

/** Devices that compile at once by default: one per CPU thread, at most 4 (each holds a device and a driver thread). */
export function defaultCompileConcurrency(): number {
  return Math.max(1, Math.min(4, cpuThreads()));
}

/**
 * Helpers open only when the compile is still running after this long: with a warm shader cache
 * every program loads in milliseconds (the digits model's 35 in 0.1 s), and opening a helper
 * device costs about 0.5 s.
 */
const HELPER_DELAY_MS = 200;
/**
 * After a helper compiled a pipeline, a first dispatch on the main device slower than this, and
 * than a quarter of the helper's compile, compiled it again: the cache was not shared. A load
 * takes milliseconds whatever the program; a second compile can run 2–3× faster than the first
 * when the first shared the CPU with the main device's own compile (seen with the cache off).
 */
const CACHE_HIT_MS = 250;
/**
 * A helper's result is loaded only this long after its compile ended: the driver writes its cache
 * entry on a thread of its own, which a loaded machine may not run at once (a load before the
 * write ends compiles again: seen once in 9 with 100 ms at a load of 15 on 2 cores).
 */
const CACHE_WRITE_MS = 400;

/**
 * Compiles the distinct cold pipelines of `launches` (largest first), reporting progress after
 * each. Returns how many there were. The compile runs on the drivers' threads; Node's event loop
 * (and its signal handlers) stays responsive, and Dawn's polling is slowed meanwhile (quietPolling).
 */
export async function compilePipelines(device: GPUDevice, launches: Launch[], options: CompileOptions | CompileProgress = {}): Promise<number> {
  const { onProgress, openHelper, concurrency = defaultCompileConcurrency() } = typeof options === 'function' ? { onProgress: options } : options;
  const cold = coldPipelines(launches);
  if (cold.length === 0) return 0;
  // Longest first (WGSL length is a fair proxy for the LLVM time): the last to finish is then a short one.
  const queue = [...cold].sort((a, b) => codeSize(b.program.spec) - codeSize(a.program.spec));
  const zeroGrid = device.createBuffer({ label: 'warm-up.indirect', size: 12, usage: GPUBufferUsage.INDIRECT });
  let done = 0;
  const report = (launch: Launch, ms: number, where: CompiledPipeline['where']) => {
    warmed.add(launch.program.pipeline);
    onProgress?.(++done, cold.length, { name: launch.name, key: launch.program.spec.key, ms, where });
  };
  onProgress?.(0, cold.length);
  const helpersWanted = openHelper ? Math.min(concurrency, cold.length) - 1 : 0;
  try {
    await quietPolling(async () => {
      // Compiled by a helper, waiting for their first dispatch on the main device.
      const fromHelpers: { launch: Launch; ms: number; at: number }[] = [];
      let [hits, misses] = [0, 0];
      const shared = () => misses <= hits;
      const mainWork = async () => {
        for (;;) {
          const ready = fromHelpers.shift();
          if (ready) {
            const wait = ready.at + CACHE_WRITE_MS - performance.now();
            if (wait > 0) await sleep(wait);
            const ms = await dispatchZero(device, zeroGrid, ready.launch.program.pipeline, ready.launch.bindGroup);
            const miss = ms > CACHE_HIT_MS && ms > ready.ms / 4;
            if (miss) misses++; else hits++;
            report(ready.launch, miss ? ms : ready.ms, miss ? 'helper, cache miss' : 'helper');
            continue;
          }
          const next = queue.shift();
          if (next) {
            report(next, await dispatchZero(device, zeroGrid, next.program.pipeline, next.bindGroup), 'main');
            continue;
          }
          if (helpersRunning === 0) return;
          await sleep(20);
        }
      };
      let helpersRunning = 0;
      const helperWork = async () => {
        helpersRunning++;
        let helper: GPUDevice | undefined;
        try {
          await sleep(HELPER_DELAY_MS);
          if (queue.length === 0) return;
          helper = await openHelper!();
          const grid = helper.createBuffer({ label: 'warm-up.indirect', size: 12, usage: GPUBufferUsage.INDIRECT });
          const dummies = new DummyBindings(helper);
          try {
            for (let next = queue.shift(); next; next = shared() ? queue.shift() : undefined) {
              const spec = next.program.spec;
              let ms: number;
              try {
                const pipeline = await createPipeline(helper, spec);
                ms = await dispatchZero(helper, grid, pipeline, dummies.bindGroup(pipeline, spec));
              } catch {
                queue.unshift(next); // the main device compiles it (and reports any error there)
                return;
              }
              fromHelpers.push({ launch: next, ms, at: performance.now() });
            }
          } finally {
            dummies.destroy();
            grid.destroy();
          }
        } catch {
          // No helper device: the main one does the work.
        } finally {
          helpersRunning--;
          helper?.destroy();
        }
      };
      const helpers = Array.from({ length: Math.max(0, helpersWanted) }, helperWork);
      await Promise.all([mainWork(), ...helpers]);
    });
  } finally {
    zeroGrid.destroy();
  }
  return cold.length;
}

function codeSize(spec: ProgramSpec): number {
  return spec.main.length + spec.body.length;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Dispatches zero workgroups of `pipeline` and waits for the device: the driver compiles it now. Returns the wall-clock ms. */
async function dispatchZero(device: GPUDevice, zeroGrid: GPUBuffer, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup): Promise<number> {
  const started = performance.now();
  const encoder = device.createCommandEncoder({ label: 'warm-up' });
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroupsIndirect(zeroGrid, 0);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - started;
}

/**
 * Small buffers to bind on a helper device, where nothing runs: every storage binding its own
 * 256-byte range of one buffer (writable bindings of one buffer may not overlap), the uniforms another.
 */
class DummyBindings {
  private storage: GPUBuffer | undefined;
  private uniforms: GPUBuffer | undefined;
  constructor(private readonly device: GPUDevice) {}

  bindGroup(pipeline: GPUComputePipeline, spec: ProgramSpec): GPUBindGroup {
    const storageBytes = Math.max(1, spec.bindings.length) * 256;
    if (!this.storage || this.storage.size < storageBytes) {
      this.storage?.destroy();
      this.storage = this.device.createBuffer({ label: 'warm-up.storage', size: storageBytes, usage: GPUBufferUsage.STORAGE });
    }
    const entries: GPUBindGroupEntry[] = spec.bindings.map((_, i) => ({ binding: i, resource: { buffer: this.storage!, offset: i * 256, size: 256 } }));
    if (spec.uniforms.length > 0) {
      const bytes = uniformBytes(spec);
      if (!this.uniforms || this.uniforms.size < bytes) {
        this.uniforms?.destroy();
        this.uniforms = this.device.createBuffer({ label: 'warm-up.uniforms', size: bytes, usage: GPUBufferUsage.UNIFORM });
      }
      entries.push({ binding: spec.bindings.length, resource: { buffer: this.uniforms } });
    }
    return this.device.createBindGroup({ label: `warm-up ${spec.name}`, layout: pipeline.getBindGroupLayout(0), entries });
  }

  destroy(): void {
    this.storage?.destroy();
    this.uniforms?.destroy();
  }
}

let quietDepth = 0;
let realSetImmediate: typeof setImmediate | undefined;

/**
 * Runs `fn` with Dawn's polling slowed. dawn.node (npm `webgpu` 0.6.2) waits for GPU work by
 * rescheduling itself with the global `setImmediate` while any promise of it is pending: a busy
 * loop that keeps a whole CPU thread spinning, taken from the driver's compile and compute threads
 * on a software adapter (Gpu.waitFor uses this for every wait there). Meanwhile the global
 * `setImmediate` is a 1 ms timer instead (Dawn looks it up at each poll; Node's own modules use
 * their private reference); code of ours that ran meanwhile and cleared an immediate with
 * clearImmediate would not clear it (none does). Nested and concurrent calls share one
 * replacement, removed when the last ends.
 */
export async function quietPolling<T>(fn: () => Promise<T>): Promise<T> {
  // A browser has no setImmediate (nor Dawn's Node polling): nothing to slow.
  if (typeof globalThis.setImmediate !== 'function') return fn();
  if (quietDepth++ === 0) {
    realSetImmediate = globalThis.setImmediate;
    const slow = (callback: (...args: unknown[]) => void, ...args: unknown[]) => setTimeout(callback, 1, ...args);
    (globalThis as { setImmediate: unknown }).setImmediate = slow;
  }
  try {
    return await fn();
  } finally {
    if (--quietDepth === 0) globalThis.setImmediate = realSetImmediate!;
  }
}
