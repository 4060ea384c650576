// How the engine reaches WebGPU on Node: Dawn through npm `webgpu`. device.ts imports this file, never
// `webgpu` itself, because a browser bundle replaces it by webgpu_host.browser.ts (navigator.gpu;
// package.json "browser").

import { create, globals } from 'webgpu';
export { verboseFromEnv, withNativeStderrMuted } from './native_stderr.js';

/** What to do when no adapter is found. */
export const NO_ADAPTER_HINT = 'run `bash scripts/setup.sh` (it installs the software Vulkan driver, Mesa lavapipe, on a machine without a GPU)';

let globalsInstalled = false;

/** A Dawn instance with `dawnOptions` (toggles, backend=..., adapter=...); Dawn's GPU* globals installed once. */
export function webgpuEntry(dawnOptions: string[]): GPU {
  if (!globalsInstalled) {
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  // Mesa's software driver warns on every start without it.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return create(dawnOptions);
}
