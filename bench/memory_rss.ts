// Resident memory of this process, for checking the memory plan against real memory. On a software
// adapter (lavapipe) GPU buffers live in the process (memfd pages that count in VmRSS once touched),
// so the growth of the resident set's peak over a training step is the real footprint of the step.

import { readFileSync, writeFileSync } from 'node:fs';
import type { Gpu } from '../src/gpu/device.js';

export interface ProcessMemory {
  /** VmRSS: resident bytes now. */
  rssBytes: number;
  /** VmHWM: the resident peak since the process started or since resetPeakRss(). */
  peakRssBytes: number;
  /** RssShmem: resident shared-memory bytes (lavapipe's memfd-backed GPU memory is counted here). */
  shmemBytes: number;
}

/** The process's resident memory from /proc/self/status, or null where there is no such file (not Linux). */
export function processMemory(): ProcessMemory | null {
  let text: string;
  try { text = readFileSync('/proc/self/status', 'utf8'); } catch { return null; }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  const out = { rssBytes: field('VmRSS'), peakRssBytes: field('VmHWM'), shmemBytes: field('RssShmem') };
  return Number.isFinite(out.rssBytes) && Number.isFinite(out.peakRssBytes) ? out : null;
}

/** Resets VmHWM to the current VmRSS (Linux ≥ 4.0: "5" to /proc/self/clear_refs); false where that is refused. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Lets Dawn release what earlier work destroyed: a destroyed buffer's memory is freed only when
 * the device next ticks past the work that used it (it would otherwise be freed, and counted
 * against, the next measured step).
 */
export async function settleGpu(gpu: Gpu): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gpu.queue.submit([gpu.device.createCommandEncoder().finish()]);
    await gpu.queue.onSubmittedWorkDone();
  }
}

export interface RssGrowth {
  /** VmRSS before `work`. */
  beforeBytes: number;
  /** VmHWM over `work` minus VmRSS before it: the most resident memory `work` added at any moment. */
  peakGrowthBytes: number;
  /** VmRSS after `work` minus before. */
  afterGrowthBytes: number;
  /** RssShmem after `work` minus before: on lavapipe, the GPU memory (memfd pages) `work` made resident and still holds. */
  shmemGrowthBytes: number;
}

/**
 * Measures how far the resident peak rises while `work` runs, from a settled device. Null (with
 * `work` still run) where the peak cannot be reset or read (not Linux, or /proc/self/clear_refs refused).
 */
export async function measureRssGrowth<T>(gpu: Gpu, work: () => Promise<T>): Promise<{ result: T; rss: RssGrowth | null }> {
  // No garbage collection first: it returns the JS heap's pages, which the work then takes back.
  await settleGpu(gpu);
  const before = processMemory();
  const reset = before !== null && resetPeakRss();
  const result = await work();
  const after = processMemory();
  if (!reset || !before || !after) return { result, rss: null };
  return { result, rss: { beforeBytes: before.rssBytes, peakGrowthBytes: after.peakRssBytes - before.rssBytes, afterGrowthBytes: after.rssBytes - before.rssBytes, shmemGrowthBytes: after.shmemBytes - before.shmemBytes } };
}
