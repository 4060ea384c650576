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
  const timer = new PassTimer(device, 1, false);
  try {
    for (let i = 0; i < reps; i++) {
      const encoder = device.createCommandEncoder();
      const pass = timer.beginPass(encoder);
      for (const l of launches) l.encode(pass);
      pass.end();
      timer.finish(encoder);
      device.queue.submit([encoder.finish()]);
      samples.push((await timer.read())[0]);
    }
  } finally {
    timer.destroy();
  }
  return { samples, method: 'timestamp-query' };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Timestamp queries a WebGPU query set may hold (the spec's maximum count). */
const QUERIES_PER_SET = 4096;

/**
 * Timestamps for the compute passes of one recorded step: `passes` passes, each with a begin and an
 * end query, spread over as many query sets as needed, resolved into one buffer at the end of the
 * same command buffer. With one pass it times the whole step; with one pass per launch (the
 * executor's `timer.perLaunch`) each launch's own GPU time, which `bench profile` reports. Owns its
 * GPU objects: destroy() when done.
 */
export class PassTimer {
  private readonly sets: GPUQuerySet[] = [];
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;
  private next = 0;

  constructor(device: GPUDevice, readonly passes: number, readonly perLaunch: boolean) {
    if (!device.features.has('timestamp-query')) throw new Error('timing: the device has no timestamp-query feature');
    if (!Number.isInteger(passes) || passes < 1) throw new RangeError(`timing: passes must be a whole number >= 1, got ${passes}`);
    for (let left = 2 * passes; left > 0; left -= QUERIES_PER_SET) {
      this.sets.push(device.createQuerySet({ type: 'timestamp', count: Math.min(left, QUERIES_PER_SET) }));
    }
    const bytes = 2 * passes * 8;
    this.resolveBuffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Begins the next timed pass; the caller records into it and ends it. */
  beginPass(encoder: GPUCommandEncoder, label?: string): GPUComputePassEncoder {
    if (this.next >= this.passes) throw new Error(`timing: more than the ${this.passes} passes this timer was made for`);
    const query = 2 * this.next++;
    const querySet = this.sets[Math.floor(query / QUERIES_PER_SET)];
    const index = query % QUERIES_PER_SET;
    return encoder.beginComputePass({ label, timestampWrites: { querySet, beginningOfPassWriteIndex: index, endOfPassWriteIndex: index + 1 } });
  }

  /** After the last pass: resolves every query and copies them where read() maps them. */
  finish(encoder: GPUCommandEncoder): void {
    if (this.next !== this.passes) throw new Error(`timing: ${this.next} of ${this.passes} passes were recorded`);
    this.sets.forEach((set, i) => encoder.resolveQuerySet(set, 0, set.count, this.resolveBuffer, i * QUERIES_PER_SET * 8));
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, this.readBuffer.size);
  }

  /** Milliseconds of each pass, in order, once the command buffer has run; the timer can then record again. */
  async read(): Promise<number[]> {
    return (await this.readSpans()).map((s) => s.ms);
  }

  /**
   * Each pass's start (ms after the first pass began) and duration, once the command buffer has
   * run: where the passes ran one after another, the starts also show the gaps between them.
   */
  async readSpans(): Promise<{ start: number; ms: number }[]> {
    await this.readBuffer.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(this.readBuffer.getMappedRange().slice(0));
    this.readBuffer.unmap();
    this.next = 0;
    const spans: { start: number; ms: number }[] = [];
    // A driver may return an end before its begin for an empty pass: clamp to 0 rather than report a negative time.
    for (let i = 0; i < this.passes; i++) {
      spans.push({ start: Number(stamps[2 * i] - stamps[0]) / 1e6, ms: Math.max(0, Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6) });
    }
    return spans;
  }

  destroy(): void {
    for (const s of this.sets) s.destroy();
    this.resolveBuffer.destroy();
    this.readBuffer.destroy();
  }
}
