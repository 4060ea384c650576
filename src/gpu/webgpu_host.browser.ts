// The browser side of webgpu_host.ts (swapped in by esbuild through package.json "browser"): the
// page's navigator.gpu. Dawn's options (backend, adapter name) do not exist there and are ignored.

/** Thrown where the browser has no WebGPU at all; pages show its message instead of the engine. */
export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

export const NO_ADAPTER_HINT = 'the browser offers WebGPU but no adapter: it may be turned off or blocked for this GPU ' +
  '(in Chrome see chrome://gpu; on Linux start it with --enable-unsafe-webgpu), or try another browser';

export function webgpuEntry(_dawnOptions: string[]): GPU {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new WebGpuUnavailableError('this browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Safari ' +
      '(Firefox: 141 or later on Windows), over https or localhost; on Linux Chrome needs --enable-unsafe-webgpu');
  }
  return gpu;
}

/** A page has no environment variables: Dawn's messages go to the browser's console anyway. */
export function verboseFromEnv(): boolean {
  return false;
}

/** Nothing to mute in a page (no native stderr). */
export function withNativeStderrMuted<T>(fn: () => T): T {
  return fn();
}
