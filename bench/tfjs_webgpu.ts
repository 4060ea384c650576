// TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu) running on OUR Dawn device, so
// that a benchmark compares both on the same adapter in the same process. tfjs's own factory asks
// navigator.gpu for a fresh adapter and device; instead we register the backend under its kernel
// registry name 'webgpu' with a WebGPUBackend built around the GPUDevice our Gpu already holds.
// The packages are loaded lazily: they are dev dependencies, and only `bench` needs them.

import { packageVersion } from '../src/base/host.js';
import type { Gpu } from '../src/gpu/device.js';
import type * as TfCore from '@tensorflow/tfjs-core';

export type Tf = typeof TfCore;
export type Tensor = TfCore.Tensor;

/** The parts of WebGPUBackend's (TypeScript-private) state we use to flush deferred work. */
interface BackendInternals {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsOnGpu {
  tf: Tf;
  versions: { tfjsCore: string; tfjsBackendWebgpu: string };
  /** Whether tfjs can time its programs with timestamp queries on this device. */
  hasTimestamps: boolean;
  /**
   * GPU time of every program `fn` dispatches, in ms: tf.time() puts each program in its own
   * timestamped compute pass and sums the passes (the gaps between passes are not counted).
   */
  kernelMs(fn: () => void): Promise<{ ms: number; parts: { name: string; ms: number }[] }>;
  /** Wall-clock ms from calling `fn` until the GPU has finished everything it enqueued. */
  wallMs(fn: () => Tensor[]): Promise<number>;
  /** Runs `fn` once and waits for the GPU; the tensors it returns are the caller's to dispose. */
  runAndWait(fn: () => Tensor[]): Promise<Tensor[]>;
  /** Removes the backend (its buffers, not the device), restores the previous backend and navigator. */
  close(): Promise<void>;
}

const BACKEND = 'webgpu';

/** Makes `navigator.gpu` the given instance (tfjs checks it), returning a function that undoes it. */
function installNavigatorGpu(gpuObject: object): () => void {
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  const previous = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  if (g.navigator && typeof g.navigator === 'object') {
    const nav = g.navigator;
    const previousGpu = Object.getOwnPropertyDescriptor(nav, 'gpu');
    Object.defineProperty(nav, 'gpu', { value: gpuObject, configurable: true, writable: true });
    return () => {
      if (previousGpu) Object.defineProperty(nav, 'gpu', previousGpu);
      else delete nav.gpu;
    };
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuObject }, configurable: true, writable: true });
  return () => {
    if (previous) Object.defineProperty(globalThis, 'navigator', previous);
    else delete g.navigator;
  };
}

export function dawnVersion(): string {
  return packageVersion('webgpu');
}

/**
 * Starts tfjs-backend-webgpu on `gpu.device`. Throws with the reason when tfjs is not installed
 * or its backend cannot start; the caller reports it and leaves the tfjs column empty.
 */
export async function openTfjsOnGpu(gpu: Gpu): Promise<TfjsOnGpu> {
  let tf: Tf;
  let WebGPUBackend: new (device: GPUDevice, adapterInfo?: GPUAdapterInfo) => TfCore.KernelBackend;
  try {
    tf = await import('@tensorflow/tfjs-core');
    ({ WebGPUBackend } = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: typeof WebGPUBackend });
  } catch (e) {
    throw new Error(`TensorFlow.js is not installed (${(e as Error).message.split('\n')[0]}); ` +
      'install the dev dependencies (`npm install`) to compare against @tensorflow/tfjs-backend-webgpu');
  }
  // The same GPU instance our device came from; Gpu keeps it private, so read it by name. tfjs only
  // tests navigator.gpu for presence: the device it runs on is the one we hand it below.
  const instance: GPU | undefined = gpu.instance;
  const restoreNavigator = installNavigatorGpu(instance ?? {
    requestAdapter: () => Promise.reject(new Error('bench: tfjs must use the shared device')),
  });
  const previousBackend = tf.engine().backendName;
  // Loading the package may have registered tfjs's own 'webgpu' factory (which would open a second
  // device); replace it with one that wraps ours. Kernels are registered under the name 'webgpu'.
  if (tf.findBackendFactory(BACKEND)) tf.removeBackend(BACKEND);
  const info = gpu.device.adapterInfo ?? ({ vendor: gpu.adapter.vendor, architecture: gpu.adapter.architecture } as GPUAdapterInfo);
  let backend: TfCore.KernelBackend | undefined;
  tf.registerBackend(BACKEND, () => (backend = new WebGPUBackend(gpu.device, info)));
  const ok = await tf.setBackend(BACKEND);
  if (!ok || !backend) {
    restoreNavigator();
    throw new Error('tfjs-backend-webgpu did not start on the shared device (tf.setBackend returned false)');
  }
  // Every op on the GPU: tfjs otherwise runs small ops whose inputs are on the CPU on its cpu kernels.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const internals = backend as unknown as BackendInternals;
  if (internals.device !== gpu.device) throw new Error('tfjs-backend-webgpu is not on the shared device');

  const flush = async (): Promise<void> => {
    // tfjs batches up to WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches before submitting; submit the rest
    // exactly as its own readback path does, then wait for the queue.
    if (internals.commandEncoder) {
      internals.endComputePassEncoder();
      internals.submitQueue();
    }
    await gpu.device.queue.onSubmittedWorkDone();
  };

  let closed = false;
  return {
    tf,
    versions: { tfjsCore: tf.version_core, tfjsBackendWebgpu: packageVersion('@tensorflow/tfjs-backend-webgpu') },
    hasTimestamps: gpu.device.features.has('timestamp-query'),
    async kernelMs(fn) {
      const info = await tf.time(() => { tf.tidy(fn); });
      const ms = info.kernelMs;
      if (typeof ms !== 'number') throw new Error(`tfjs could not time its kernels: ${ms.error}`);
      // getExtraProfileInfo() lists the programs as "Name: ms, Name: ms"; sum by program name.
      const byName = new Map<string, number>();
      const extra = (info as { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '';
      for (const m of extra.matchAll(/(\w+): ([\d.e+-]+)/g)) byName.set(m[1], (byName.get(m[1]) ?? 0) + Number(m[2]));
      return { ms, parts: [...byName].map(([name, partMs]) => ({ name, ms: partMs })) };
    },
    async wallMs(fn) {
      const t0 = performance.now();
      const outputs = tf.tidy(fn);
      await flush();
      const ms = performance.now() - t0;
      tf.dispose(outputs);
      return ms;
    },
    async runAndWait(fn) {
      const outputs = tf.tidy(fn);
      await flush();
      return outputs;
    },
    async close() {
      if (closed) return;
      closed = true;
      await flush();
      tf.removeBackend(BACKEND);
      if (previousBackend && previousBackend !== BACKEND && tf.findBackendFactory(previousBackend)) await tf.setBackend(previousBackend);
      restoreNavigator();
    },
  };
}
