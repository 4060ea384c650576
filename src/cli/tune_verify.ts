// The tuner's last check: the whole step with the tuned choices against the whole step with the
// defaults, on the run's own graph. Kernels are tuned one at a time on standalone buffers, and on a
// CPU emulating a GPU an isolated gain can turn into a loss inside a step (measured on lavapipe:
// digits-tiny b8 trained ~5% slower with isolated winners). Where the tuned step is slower, the
// tuned choices are not kept.

import type { Gpu } from '../gpu/device.js';
import { median } from '../gpu/timing.js';
import { setTuning, tuningOf, type TuningTable } from '../gpu/tuning.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession, TrainingSession } from '../models/session.js';
import type { TuneTarget } from './tuner.js';

export interface StepCheck { tunedMs: number; defaultMs: number; steps: number }

type Runner = { step: () => Promise<unknown>; destroy: () => void };

async function runner(gpu: Gpu, t: TuneTarget, table: TuningTable | undefined): Promise<Runner> {
  const before = tuningOf(gpu);
  setTuning(gpu, table);
  const model = DenseNetModel.create(gpu, t.config, 0);
  try {
    const [c, h, w] = t.config.inputShape;
    // Fixed pseudo-random inputs: the values do not change the work, only keep it honest (no all-zero shortcuts).
    const images = new Float32Array(t.batch * c * h * w).map((_, i) => Math.sin(i * 12.9898) * 0.5);
    if (t.training) {
      const session = await TrainingSession.create(model, {
        batch: t.batch, memory: t.memory, optimizer: { kind: 'sgd', lr: 0, momentum: 0, nesterov: false, weightDecay: 0 }, freeze: t.freeze,
      });
      const labels = Uint32Array.from({ length: t.batch }, (_, i) => i % (t.config.classes ?? 1));
      return { step: () => session.step(images, labels, 0), destroy: () => { session.destroy(); model.close(); } };
    }
    const session = await InferenceSession.create(model, { batch: t.batch, memory: t.memory });
    return { step: () => session.run(images), destroy: () => { session.destroy(); model.close(); } };
  } catch (e) {
    model.close();
    throw e;
  } finally {
    setTuning(gpu, before);
  }
}

/** Median wall time of one step with `table` and with no table: one warm-up each, then `reps` interleaved steps each. */
export async function compareWholeStep(gpu: Gpu, t: TuneTarget, table: TuningTable, reps: number): Promise<StepCheck> {
  const tuned = await runner(gpu, t, table);
  let plain: Runner | undefined;
  try {
    plain = await runner(gpu, t, undefined);
    await tuned.step();
    await plain.step();
    const samples = { tuned: [] as number[], plain: [] as number[] };
    for (let r = 0; r < reps; r++) {
      for (const [name, s] of [['tuned', tuned], ['plain', plain]] as const) {
        const t0 = performance.now();
        await s.step();
        samples[name].push(performance.now() - t0);
      }
    }
    return { tunedMs: median(samples.tuned), defaultMs: median(samples.plain), steps: reps };
  } finally {
    tuned.destroy();
    plain?.destroy();
  }
}
