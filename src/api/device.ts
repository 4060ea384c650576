// openDevice(): the library's handle on a WebGPU adapter (Dawn, npm `webgpu`). Everything built on
// it (models, sessions) lives in its memory; close() frees it all and lets Node exit (Dawn keeps
// the process alive while a device is open).

import { openDevice as openGpu, type Gpu } from '../gpu/device.js';
import { setTuning } from '../gpu/tuning.js';
import { adapterIdentity, loadTuningCache } from '../gpu/tuning_cache.js';
import { attachDevice } from './internal.js';

export interface DeviceOptions {
  /** Dawn backend: 'vulkan', 'metal', 'd3d12', 'opengles'... (default: Dawn's choice, or env DENSENET_WGSL_BACKEND). */
  backend?: string;
  /** An adapter by its exact name as Dawn lists it (env DENSENET_WGSL_ADAPTER); an unknown name is refused with the list. */
  adapter?: string;
  powerPreference?: 'low-power' | 'high-performance';
  /** Caps the storage-binding size (MiB) below the adapter's, to try what a smaller adapter would do. */
  maxBindingMiB?: number;
  /** Let Dawn's own warnings reach stderr (default: muted on a terminal or pipe). */
  verbose?: boolean;
  /**
   * Use this adapter's tuning cache (written by `densenet-wgsl tune`) when it exists (default true);
   * a corrupt cache is reported through `onWarning` and ignored.
   */
  tuningCache?: boolean;
  /** Progress of the driver's shader compile, the first time a model's graph runs: (done, total). */
  onCompile?: (done: number, total: number) => void;
  /** Where warnings go (default console.error). */
  onWarning?: (message: string) => void;
}

export interface AdapterInfo {
  name: string;
  vendor: string;
  backend: string;
  /** software (lavapipe, SwiftShader: a CPU emulates the GPU), integrated, discrete or unknown. */
  class: 'software' | 'integrated' | 'discrete' | 'unknown';
  features: string[];
  /** Bytes: the largest buffer, and the largest range one kernel may bind (a single tensor must fit it). */
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface MemoryUsage {
  /** Bytes of GPU memory the engine holds now, and the most it held since open or resetPeakMemory(). */
  liveBytes: number;
  peakBytes: number;
  /** The same per category. */
  byCategory: Record<'parameters' | 'gradients' | 'optimizer' | 'activations' | 'workspace' | 'io' | 'uniforms', { liveBytes: number; peakBytes: number }>;
}

export interface Device {
  readonly adapter: AdapterInfo;
  memory(): MemoryUsage;
  /** Starts a new peak measurement from what is held now. */
  resetPeakMemory(): void;
  /** Frees every buffer of every model on this device and destroys it. Safe to call twice. */
  close(): void;
  readonly closed: boolean;
}

class DeviceHandle implements Device {
  readonly adapter: AdapterInfo;
  constructor(private readonly gpu: Gpu) {
    const p = gpu.profile;
    this.adapter = {
      name: p.name, vendor: p.vendor, backend: p.backend, class: p.class, features: [...p.features],
      maxBufferSize: p.limits.maxBufferSize, maxStorageBufferBindingSize: p.limits.maxStorageBufferBindingSize,
    };
  }

  memory(): MemoryUsage {
    const r = this.gpu.arena.report();
    return { liveBytes: r.liveBytes, peakBytes: r.peakBytes, byCategory: r.byCategory as MemoryUsage['byCategory'] };
  }

  resetPeakMemory(): void { this.gpu.arena.resetPeak(); }
  close(): void { this.closedHere = true; this.gpu.close(); }
  get closed(): boolean { return this.closedHere; }
  private closedHere = false;
}

/** Opens a WebGPU device. Close it when done (`device.close()`), or Node will not exit. */
export async function openDevice(options: DeviceOptions = {}): Promise<Device> {
  const warn = options.onWarning ?? ((m: string) => console.error(m));
  const gpu = await openGpu({
    backend: options.backend, adapter: options.adapter, powerPreference: options.powerPreference,
    maxBindingMiB: options.maxBindingMiB, verbose: options.verbose, onCompile: options.onCompile,
    afterOpen: async (g) => {
      if (options.tuningCache === false) return;
      const loaded = await loadTuningCache(adapterIdentity(g.profile), { warn });
      if (loaded) setTuning(g, loaded.table);
    },
  });
  const handle = new DeviceHandle(gpu);
  attachDevice(handle, { gpu });
  return handle;
}
