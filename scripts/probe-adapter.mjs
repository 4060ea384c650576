// Prints the WebGPU adapter Dawn offers and exits 0, or exits 1 when there is none.
// Plain JavaScript so that the set-up script can run it before anything is built.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('no WebGPU adapter');
  process.exit(1);
}
const { vendor, architecture, device, description } = adapter.info;
console.log(`adapter: ${description || device || 'unknown'} (${vendor} ${architecture})`);
process.exit(0);
