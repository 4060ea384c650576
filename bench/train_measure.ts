// How `bench train` times one configuration: build it, one warm-up step against the time budget,
// then timed steps. Kept apart from the runners so the budget rule can be tested with a fake one.

import { median } from '../src/gpu/timing.js';
import { BudgetExceeded, type StepRunner } from './train_impls.js';

export interface MeasureOptions {
  /** Budget for the configuration, ms: a warm-up step over it means the configuration is not run. */
  budgetMs: number;
  /** Timed steps wanted. */
  steps: number;
  /** Timed steps taken even when the budget is spent (at most `steps`). */
  minSteps: number;
  now?: () => number;
}

export interface Measurement {
  setupMs: number | null;
  warmupMs: number | null;
  samplesMs: number[];
  losses: number[];
  peakBytes: number | null;
  peakByCategory?: Record<string, number>;
  notRunReason?: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/**
 * Builds a runner with `build`, runs one warm-up step and, if it finished within the budget, timed
 * steps: `steps` of them, stopping early once the next step would end past the budget (warm-up
 * included), but never before `minSteps`. The runner is closed in every case.
 */
export async function measureSteps(build: () => Promise<StepRunner>, o: MeasureOptions): Promise<Measurement> {
  const now = o.now ?? (() => performance.now());
  const out: Measurement = { setupMs: null, warmupMs: null, samplesMs: [], losses: [], peakBytes: null };
  const t0 = now();
  let runner: StepRunner;
  try {
    runner = await build();
  } catch (e) {
    out.notRunReason = `could not be built: ${firstLine(e)}`;
    return out;
  }
  out.setupMs = now() - t0;
  try {
    const warmStart = now();
    runner.setDeadline?.(warmStart + o.budgetMs);
    try {
      out.losses.push(await runner.step());
    } catch (e) {
      out.warmupMs = now() - warmStart;
      out.notRunReason = e instanceof BudgetExceeded
        ? `the warm-up step did not finish within the ${seconds(o.budgetMs)} budget: stopped after ${seconds(out.warmupMs)} (raise --budget to run it)`
        : `the warm-up step failed after ${seconds(out.warmupMs)}: ${firstLine(e)}`;
      return out;
    } finally {
      runner.setDeadline?.(null);
    }
    out.warmupMs = now() - warmStart;
    if (out.warmupMs > o.budgetMs) {
      out.notRunReason = `the warm-up step took ${seconds(out.warmupMs)}, over the ${seconds(o.budgetMs)} budget per configuration (raise --budget to run it)`;
      return out;
    }
    while (out.samplesMs.length < o.steps) {
      const spent = now() - warmStart;
      const last = out.samplesMs.at(-1) ?? out.warmupMs;
      if (out.samplesMs.length >= o.minSteps && spent + last > o.budgetMs) break;
      const s0 = now();
      try {
        out.losses.push(await runner.step());
      } catch (e) {
        out.notRunReason = `timed step ${out.samplesMs.length + 1} failed: ${firstLine(e)}`;
        out.samplesMs = [];
        return out;
      }
      out.samplesMs.push(now() - s0);
    }
    return out;
  } finally {
    out.peakBytes = runner.peakBytes();
    out.peakByCategory = runner.peakByCategory?.();
    await runner.close();
  }
}

export function summarize(samples: number[], batch: number) {
  if (samples.length === 0) return { medianMs: null, minMs: null, maxMs: null, imagesPerSec: null, minImagesPerSec: null, maxImagesPerSec: null };
  const medianMs = median(samples);
  const minMs = Math.min(...samples);
  const maxMs = Math.max(...samples);
  return { medianMs, minMs, maxMs, imagesPerSec: (batch * 1000) / medianMs, minImagesPerSec: (batch * 1000) / maxMs, maxImagesPerSec: (batch * 1000) / minMs };
}
