// GPU timing for benchmarks: timestamp queries around the compute pass where the adapter has
// them, else wall-clock time from submit to onSubmittedWorkDone (which includes submit overhead).

import type { Gpu } from './device.js';
import type { Launch } from './program.js';

export interface Timing {
  /** Milliseconds of each timed repetition. */
  samples: number[];
  method: 'timestamp-query' | 'wall-clock';
}

export async function timeLaunches(gpu: Gpu, launches: Launch[], reps: number, warmup = 1): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await gpu.run(launches);
  const samples: number[] = [];
  if (!gpu.hasTimestamps) {
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await gpu.run(launches);
      samples.push(performance.now() - t0);
    }
    return { samples, method: 'wall-clock' };
  }
  const device = gpu.device;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    for (let i = 0; i < reps; i++) {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
      for (const l of launches) l.encode(pass);
      pass.end();
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, 16);
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const [t0, t1] = new BigUint64Array(read.getMappedRange());
      read.unmap();
      samples.push(Number(t1 - t0) / 1e6);
    }
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
  return { samples, method: 'timestamp-query' };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
