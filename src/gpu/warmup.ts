// Compiles pipelines for real, up front, with progress. On Mesa lavapipe (llvmpipe) creating a
// compute pipeline only translates the shader; the LLVM compile happens at the pipeline's first
// dispatch (seconds to a minute each with an empty shader cache), so without this the first
// training step silently carries the whole compile. One indirect dispatch of zero workgroups per
// pipeline triggers the compile without running the kernel (no writes, whatever is bound), and
// without the warning Dawn prints for a direct dispatch of zero workgroups.

import type { Launch } from './program.js';

/** Called with (0, total) before the first compile and (k, total) after each; never when total is 0. */
export type CompileProgress = (done: number, total: number) => void;

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

/**
 * Compiles the pipelines of `launches` one at a time (one submit each, awaited), reporting
 * progress after each. The compile runs on the driver's queue thread, so Node's event loop (and
 * its signal handlers) stays responsive; the awaits between pipelines let it run.
 */
export async function compilePipelines(device: GPUDevice, launches: Launch[], onProgress?: CompileProgress): Promise<number> {
  const cold = coldPipelines(launches);
  if (cold.length === 0) return 0;
  const zeroGrid = device.createBuffer({ label: 'warm-up.indirect', size: 12, usage: GPUBufferUsage.INDIRECT });
  try {
    onProgress?.(0, cold.length);
    for (let i = 0; i < cold.length; i++) {
      const launch = cold[i];
      const encoder = device.createCommandEncoder({ label: `warm-up ${launch.name}` });
      const pass = encoder.beginComputePass();
      pass.setPipeline(launch.program.pipeline);
      pass.setBindGroup(0, launch.bindGroup);
      pass.dispatchWorkgroupsIndirect(zeroGrid, 0);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      warmed.add(launch.program.pipeline);
      onProgress?.(i + 1, cold.length);
    }
  } finally {
    zeroGrid.destroy();
  }
  return cold.length;
}
