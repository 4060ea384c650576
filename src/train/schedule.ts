// Learning-rate schedules. The paper's (Huang et al. 2017, §4.2): SGD from lr 0.1, divided by 10
// at 50% and 75% of the training epochs, changed once per epoch. Cosine annealing changes per step.

export type LrSchedule =
  | { kind: 'step'; /** fractions of the total epochs, e.g. [0.5, 0.75] */ milestones: number[]; /** factor per milestone, e.g. 0.1 */ gamma: number }
  | { kind: 'cosine'; /** the lr at the end of training (default 0) */ minLr?: number }
  | { kind: 'constant' };

/** The paper's schedule: ÷10 at 50% and 75% of the epochs. */
export const PAPER_STEP_SCHEDULE: LrSchedule = Object.freeze({ kind: 'step', milestones: Object.freeze([0.5, 0.75]) as number[], gamma: 0.1 });

/**
 * The learning rate for a step taken at `epoch` (0-based, fractional within an epoch:
 * `epoch + batchIndex / batchesPerEpoch`).
 *
 * - step: `baseLr · gamma^m`, m = the number of milestones with `floor(epoch) >= milestone · totalEpochs`
 *   (the integer epoch: constant through an epoch). For 300 epochs: 0.1 for epochs 0–149, 0.01 for
 *   150–224, 0.001 for 225–299 (PyTorch's MultiStepLR with milestones [150, 225]).
 * - cosine: `minLr + (baseLr − minLr) · (1 + cos(π t)) / 2`, t = (epoch − warmup) / (totalEpochs − warmup)
 *   clamped to [0, 1]: per step, from baseLr after warm-up down to minLr at the end.
 * - constant: baseLr.
 *
 * Warm-up (`warmupEpochs` > 0): for epoch < warmupEpochs the rate is the schedule's rate times
 * epoch / warmupEpochs, a linear ramp from 0 (the very first step, at epoch 0, gets lr 0).
 */
export function learningRate(schedule: LrSchedule, baseLr: number, epoch: number, totalEpochs: number, warmupEpochs = 0): number {
  if (!(Number.isFinite(baseLr) && baseLr >= 0)) throw new RangeError(`learningRate: base lr must be a finite number >= 0, got ${baseLr}`);
  if (!(Number.isFinite(totalEpochs) && totalEpochs > 0)) throw new RangeError(`learningRate: total epochs must be > 0, got ${totalEpochs}`);
  if (!(Number.isFinite(epoch) && epoch >= 0)) throw new RangeError(`learningRate: epoch must be a finite number >= 0, got ${epoch}`);
  if (!(Number.isFinite(warmupEpochs) && warmupEpochs >= 0 && warmupEpochs < totalEpochs)) {
    throw new RangeError(`learningRate: warm-up epochs must be in [0, ${totalEpochs}) (the total), got ${warmupEpochs}`);
  }
  let lr: number;
  switch (schedule.kind) {
    case 'step': {
      checkStepSchedule(schedule);
      const whole = Math.floor(epoch);
      const passed = schedule.milestones.filter((m) => whole >= m * totalEpochs).length;
      lr = baseLr * schedule.gamma ** passed;
      break;
    }
    case 'cosine': {
      const minLr = schedule.minLr ?? 0;
      if (!(Number.isFinite(minLr) && minLr >= 0 && minLr <= baseLr)) {
        throw new RangeError(`learningRate: cosine minLr must be in [0, base lr ${baseLr}], got ${minLr}`);
      }
      const t = Math.min(1, Math.max(0, (epoch - warmupEpochs) / (totalEpochs - warmupEpochs)));
      lr = minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
      break;
    }
    case 'constant':
      lr = baseLr;
      break;
    default:
      throw new RangeError(`learningRate: unknown schedule kind "${(schedule as { kind: unknown }).kind}" (step, cosine or constant)`);
  }
  if (epoch < warmupEpochs) lr *= epoch / warmupEpochs;
  return lr;
}

function checkStepSchedule(s: { milestones: number[]; gamma: number }): void {
  if (!Array.isArray(s.milestones) || !s.milestones.every((m) => Number.isFinite(m) && m > 0 && m <= 1)) {
    throw new RangeError(`learningRate: step milestones are fractions of the total epochs in (0, 1], got [${s.milestones}]`);
  }
  if (!(Number.isFinite(s.gamma) && s.gamma > 0)) throw new RangeError(`learningRate: step gamma must be > 0, got ${s.gamma}`);
}

/**
 * Parses a schedule written on a command line: `step` (the paper's), `step:0.3,0.6,0.9:0.2`
 * (milestones, gamma), `cosine`, `cosine:1e-4` (minLr), `constant`.
 */
export function parseLrSchedule(text: string): LrSchedule {
  const [kind, ...args] = text.trim().split(':');
  const bad = (why: string): never => {
    throw new RangeError(`learning-rate schedule "${text}": ${why}; expected step, step:0.5,0.75:0.1, cosine, cosine:MIN_LR or constant`);
  };
  const number = (s: string | undefined, what: string): number => {
    const v = Number(s);
    return s !== undefined && s.trim() !== '' && Number.isFinite(v) ? v : bad(`${what} "${s}" is not a number`);
  };
  if (kind === 'step') {
    if (args.length === 0) return { kind: 'step', milestones: [0.5, 0.75], gamma: 0.1 };
    if (args.length > 2) bad('too many fields');
    const milestones = args[0].split(',').map((m) => number(m, 'milestone'));
    const schedule: LrSchedule = { kind: 'step', milestones, gamma: args.length > 1 ? number(args[1], 'gamma') : 0.1 };
    try {
      checkStepSchedule(schedule);
    } catch (e) {
      bad((e as Error).message.replace('learningRate: ', ''));
    }
    return schedule;
  }
  if (kind === 'cosine') {
    if (args.length > 1) bad('too many fields');
    return args.length ? { kind: 'cosine', minLr: number(args[0], 'minimum lr') } : { kind: 'cosine' };
  }
  if (kind === 'constant') {
    if (args.length) bad('constant takes no arguments');
    return { kind: 'constant' };
  }
  return bad(`unknown kind "${kind}"`);
}
