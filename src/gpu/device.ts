// Device acquisition: picks an adapter, requests the limits the work needs up to what the adapter
// offers, reports it, and owns everything created on it (arena, pipeline cache). The WebGPU entry
// point comes from webgpu_host.ts (Dawn through npm `webgpu` on Node, navigator.gpu in a browser
// bundle) or from the caller. `close()` destroys the device so that Node can exit (Dawn keeps a
// busy loop alive until then, DESIGN.md §5).

import { hostEnvironment } from '../base/host.js';
import { BufferArena, type ArenaBuffer, type MemoryCategory } from './arena.js';
import { bindingCapBytes, boundsChecksFromEnv, cappedLimits, classifyAdapter, engineLimits, formatProfile, MAX_BINDING_ENV, type AdapterInfoLike, type AdapterProfile, type CappedLimits } from './profile.js';
import { NO_ADAPTER_HINT, verboseFromEnv, webgpuEntry, withNativeStderrMuted } from './webgpu_host.js';
import { createLaunch, KernelError, PipelineCache, type BufferLike, type CompiledProgram, type Launch, type ProgramSpec } from './program.js';
import { defaultCompileConcurrency, quietPolling, type CompileOptions, type CompileProgress } from './warmup.js';

export interface OpenDeviceOptions {
  /** Dawn backend: vulkan, opengl, opengles, metal, d3d12, null... (env DENSENET_WGSL_BACKEND). */
  backend?: string;
  /** Exact adapter name as Dawn lists it (env DENSENET_WGSL_ADAPTER). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Limits the work needs; each is requested up to what the adapter offers, and refused clearly above it. */
  requiredLimits?: Partial<Record<keyof GPUSupportedLimits, number>>;
  /** Features to enable where the adapter has them (default: timestamp-query, subgroups, shader-f16). */
  optionalFeatures?: GPUFeatureName[];
  /**
   * Caps the storage-binding size the engine uses (MiB) below the adapter's maxStorageBufferBindingSize,
   * to emulate a smaller adapter (--max-binding; env DENSENET_WGSL_MAX_BINDING_MIB).
   */
  maxBindingMiB?: number;
  /** Let Dawn's internal warnings reach stderr (default: env DENSENET_WGSL_VERBOSE; otherwise muted on a terminal or pipe). */
  verbose?: boolean;
  /** Default progress reporter of every graph compiled on this device (Executable.create). */
  onCompile?: CompileProgress;
  /** Run on the new device before openDevice returns (the CLI attaches the tuning table here); if it throws, the device is closed. */
  afterOpen?: (gpu: Gpu) => Promise<void>;
  /** The WebGPU entry point to use (default: webgpuEntry(), Dawn on Node, navigator.gpu in a browser). */
  instance?: GPU;
}

/** The adapter as the engine sees it; one type with the profile (gpu.adapter and gpu.profile are the same object). */
export type AdapterReport = AdapterProfile;
export type { AdapterClass, AdapterProfile, KernelClass } from './profile.js';
export { kernelClass } from './profile.js';

/** Devices that compile GPU programs at once on a software adapter (1: the main device alone); default: one per CPU thread, at most 4. */
export const COMPILE_DEVICES_ENV = 'DENSENET_WGSL_COMPILE_DEVICES';

/** The limits we raise to the adapter's maximum by default: deep models need big buffers. */
const RAISED_LIMITS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupsPerDimension',
] as const;

export class Gpu {
  readonly arena: BufferArena;
  readonly pipelines: PipelineCache;
  /** Reports the driver's compile of each executable built on this device, unless the caller gives its own. */
  onCompile: CompileProgress | undefined;
  private lostReason: string | undefined;
  private closed = false;
  /** How openDevice found the adapter, to open helper devices of the same one (compileOptions). */
  adapterRequest: { powerPreference?: GPUPowerPreference; verbose: boolean } = { verbose: false };

  /** The device's limits with the binding size capped (--max-binding): every binding rule reads these. */
  readonly limits: CappedLimits;

  /** `instance` is the Dawn GPU object the device came from (tfjs-webgpu checks `navigator.gpu`; the benchmark sets it to this). */
  constructor(readonly device: GPUDevice, readonly profile: AdapterProfile, readonly instance: GPU) {
    this.limits = cappedLimits(device.limits, profile.limits.bindingCapBytes ?? undefined);
    this.arena = new BufferArena(device, device.limits.maxBufferSize);
    this.pipelines = new PipelineCache(device);
    device.lost.then((info) => {
      if (!this.closed) this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  get queue(): GPUQueue { return this.device.queue; }
  /** The profile under its earlier name (name, vendor, isSoftware, features, limits). */
  get adapter(): AdapterReport { return this.profile; }
  get hasTimestamps(): boolean { return this.device.features.has('timestamp-query'); }

  private checkAlive(): void {
    if (this.closed) throw new Error('gpu: the device was closed');
    if (this.lostReason) throw new Error(`gpu: the device was lost (${this.lostReason}); open a new one`);
  }

  compile(spec: ProgramSpec): Promise<CompiledProgram> {
    this.checkAlive();
    return this.pipelines.compile(spec);
  }

  launch(program: CompiledProgram, buffers: Record<string, BufferLike>, uniforms: Record<string, number>, workgroups: number): Launch {
    this.checkAlive();
    return createLaunch(this.device, this.arena, program, buffers, uniforms, workgroups);
  }

  /**
   * How pipelines are compiled up front (warmup.ts). On a software adapter the driver compiles at
   * a pipeline's first dispatch, on one thread per device: helper devices of the same adapter
   * compile in parallel (DENSENET_WGSL_COMPILE_DEVICES devices in all; default one per CPU thread,
   * at most 4). On a GPU the driver compiled at pipeline creation already: no helpers. Nor where
   * Mesa's shader cache, which hands a helper's result to the main device, is turned off.
   */
  compileOptions(onProgress: CompileProgress | undefined): CompileOptions {
    const env = hostEnvironment();
    const fromEnv = env[COMPILE_DEVICES_ENV];
    const concurrency = fromEnv && /^\d+$/.test(fromEnv) && +fromEnv >= 1 ? +fromEnv : defaultCompileConcurrency();
    const cacheOff = /^(1|true|yes|y)$/i.test(env.MESA_SHADER_CACHE_DISABLE ?? '');
    if (!this.profile.isSoftware || concurrency <= 1 || cacheOff) return { onProgress };
    return { onProgress, concurrency, openHelper: () => this.openHelperDevice() };
  }

  /** One more device of this adapter with the same features and raised limits, for compiling only; the caller destroys it. */
  async openHelperDevice(): Promise<GPUDevice> {
    this.checkAlive();
    const request = () => this.instance.requestAdapter({ powerPreference: this.adapterRequest.powerPreference });
    const adapter = await (this.adapterRequest.verbose ? request() : withNativeStderrMuted(request));
    if (!adapter) throw new Error('gpu: no adapter for a compile helper');
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_LIMITS) requiredLimits[name] = this.device.limits[name];
    return adapter.requestDevice({ label: 'compile helper', requiredLimits, requiredFeatures: [...this.device.features] as GPUFeatureName[] });
  }

  /**
   * Waits for GPU work (`wait` creates the promise). On a software adapter Dawn's busy polling is
   * slowed meanwhile (quietPolling): it would take a CPU thread from the driver's, which run the
   * kernels (digits-fast, batch 64, on 2 cores: step median 198 vs 376 ms, interleaved). On a GPU
   * the spin costs the GPU nothing and a timer's millisecond would.
   */
  waitFor<T>(wait: () => Promise<T>): Promise<T> {
    return this.profile.isSoftware ? quietPolling(wait) : wait();
  }

  /** Records `launches` in order into one compute pass of one command buffer. */
  encode(encoder: GPUCommandEncoder, launches: Launch[]): void {
    const pass = encoder.beginComputePass();
    for (const l of launches) l.encode(pass);
    pass.end();
  }

  /**
   * Records and submits launches in one command buffer and waits for the GPU. Validation and
   * out-of-memory errors come back as an exception naming the kernels, not as a silent no-op.
   */
  async run(launches: Launch[]): Promise<void> {
    this.checkAlive();
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const encoder = this.device.createCommandEncoder();
    this.encode(encoder, launches);
    this.queue.submit([encoder.finish()]);
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    const error = validation ?? oom;
    if (error) {
      const names = [...new Set(launches.map((l) => l.name))].join(', ');
      throw new KernelError(`gpu: submitting [${names}] failed: ${error.message}`);
    }
    await this.waitFor(() => this.queue.onSubmittedWorkDone());
    this.checkAlive();
  }

  /** A storage buffer holding `data` (float32 unless given another typed array). */
  upload(label: string, category: MemoryCategory, data: Float32Array | Uint32Array | Int32Array): ArenaBuffer {
    this.checkAlive();
    const buf = this.arena.allocate(label, category, Math.max(4, data.byteLength));
    if (data.byteLength > 0) this.queue.writeBuffer(buf.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buf;
  }

  /** A zero-filled storage buffer of `elements` 4-byte elements. */
  zeros(label: string, category: MemoryCategory, elements: number): ArenaBuffer {
    this.checkAlive();
    return this.arena.allocate(label, category, Math.max(4, elements * 4));
  }

  write(target: ArenaBuffer, data: Float32Array | Uint32Array, elementOffset = 0): void {
    if ((elementOffset + data.length) * 4 > target.bytes) {
      throw new RangeError(`gpu: writing ${data.length} elements at ${elementOffset} overruns "${target.label}" (${target.bytes / 4} elements)`);
    }
    this.queue.writeBuffer(target.buffer, elementOffset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `elements` floats starting at `elementOffset` back to the CPU. */
  async read(source: ArenaBuffer, elementOffset = 0, elements = source.bytes / 4 - elementOffset): Promise<Float32Array> {
    this.checkAlive();
    if (elementOffset < 0 || elementOffset + elements > source.bytes / 4) {
      throw new RangeError(`gpu: reading [${elementOffset}, ${elementOffset + elements}) is outside "${source.label}" (${source.bytes / 4} elements)`);
    }
    const bytes = elements * 4;
    if (bytes === 0) return new Float32Array(0);
    // The staging buffer is short-lived and not part of the engine's footprint: created directly.
    const staging = this.device.createBuffer({ label: `${source.label}.readback`, size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = this.device.createCommandEncoder();
      encoder.copyBufferToBuffer(source.buffer, elementOffset * 4, staging, 0, bytes);
      this.queue.submit([encoder.finish()]);
      await this.waitFor(() => staging.mapAsync(GPUMapMode.READ));
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  /** Destroys every buffer and the device; Node can exit afterwards. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.arena.freeAll();
    this.device.destroy();
  }
}

export async function openDevice(options: OpenDeviceOptions = {}): Promise<Gpu> {
  const env = hostEnvironment();
  const backend = options.backend ?? env.DENSENET_WGSL_BACKEND;
  const adapterName = options.adapter ?? env.DENSENET_WGSL_ADAPTER;
  // Dawn rounds timestamps to 65.5 µs by default (a browser privacy measure): too coarse for timing small kernels.
  const dawnOptions: string[] = ['disable-dawn-features=timestamp_quantization'];
  // Toggles reach a device through the instance this function creates; an injected one (a page's) keeps its own.
  const boundsChecks = options.instance ? true : boundsChecksFromEnv(env);
  if (!boundsChecks) dawnOptions.push('enable-dawn-features=disable_robustness');
  if (backend) dawnOptions.push(`backend=${backend}`);
  if (adapterName) dawnOptions.push(`adapter=${adapterName}`);
  const instance = options.instance ?? webgpuEntry(dawnOptions);
  const verbose = options.verbose ?? verboseFromEnv();
  let adapter: GPUAdapter | null;
  try {
    // Dawn discovers adapters inside this synchronous call and prints its limit-clamping warnings there.
    const request = () => instance.requestAdapter({ powerPreference: options.powerPreference });
    adapter = await (verbose ? request() : withNativeStderrMuted(request));
  } catch (e) {
    throw new Error(`gpu: Dawn could not find the adapter asked for (${dawnOptions.slice(1).join(', ') || 'default'}): ${(e as Error).message}`);
  }
  if (!adapter) {
    const asked = backend || adapterName ? ` matching ${[backend && `backend ${backend}`, adapterName && `adapter "${adapterName}"`].filter(Boolean).join(', ')}` : '';
    throw new Error(`gpu: no WebGPU adapter${asked} was found; ${NO_ADAPTER_HINT}`);
  }

  // Checked before the device exists: a cap above the adapter's limit is the user's mistake, named.
  const capBytes = options.maxBindingMiB !== undefined
    ? bindingCapBytes(options.maxBindingMiB, adapter.limits.maxStorageBufferBindingSize, '--max-binding')
    : bindingCapBytes(env[MAX_BINDING_ENV], adapter.limits.maxStorageBufferBindingSize, MAX_BINDING_ENV);

  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  for (const [name, wanted] of Object.entries(options.requiredLimits ?? {})) {
    const offered = (adapter.limits as unknown as Record<string, number>)[name];
    if (offered === undefined) throw new Error(`gpu: unknown limit "${name}"`);
    if (wanted! > offered) {
      throw new Error(`gpu: the work needs ${name} = ${wanted} but adapter "${adapter.info.description}" offers ${offered}; ` +
        'use a smaller batch or model, or another adapter (--adapter / DENSENET_WGSL_ADAPTER)');
    }
    requiredLimits[name] = Math.max(requiredLimits[name] ?? 0, wanted!);
  }
  // subgroups and shader-f16 cost nothing until a kernel enables them; variants check the profile for them.
  const wantedFeatures = options.optionalFeatures ?? ['timestamp-query', 'subgroups', 'shader-f16'];
  const requiredFeatures = wantedFeatures.filter((f) => adapter!.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.addEventListener('uncapturederror', (event) => {
    console.error(`gpu: uncaptured WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  const gpu = new Gpu(device, { ...adapterProfile(adapter, device, backend, capBytes), boundsChecks }, instance);
  gpu.onCompile = options.onCompile;
  gpu.adapterRequest = { powerPreference: options.powerPreference, verbose };
  if (options.afterOpen) {
    try {
      await options.afterOpen(gpu);
    } catch (e) {
      gpu.close();
      throw e;
    }
  }
  return gpu;
}

/** The profile of the opened device: its features as the device has them (not as requested), its limits after the cap. */
function adapterProfile(adapter: GPUAdapter, device: GPUDevice, backend: string | undefined, capBytes: number | undefined): Omit<AdapterProfile, 'boundsChecks'> {
  const info = adapter.info as unknown as AdapterInfoLike;
  const name = info.description || info.device || 'unknown adapter';
  const { class: adapterClass, reason } = classifyAdapter(info);
  const hasSubgroups = device.features.has('subgroups');
  const size = (n: number | undefined) => (hasSubgroups && typeof n === 'number' && n > 0 ? n : null);
  return {
    name,
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    backend: backend ?? (/(mesa|llvmpipe|lavapipe)/i.test(name) ? 'vulkan' : 'default'),
    driver: info.description ?? '',
    class: adapterClass,
    classReason: reason,
    isSoftware: adapterClass === 'software',
    subgroupMinSize: size(info.subgroupMinSize),
    subgroupMaxSize: size(info.subgroupMaxSize),
    features: [...device.features].sort(),
    hasSubgroups,
    hasShaderF16: device.features.has('shader-f16'),
    limits: engineLimits(device.limits, capBytes),
  };
}

/** The adapter profile as `info` prints it. */
export const formatAdapter: (a: AdapterReport) => string = formatProfile;

export { KernelError };
