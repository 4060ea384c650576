import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { learningRate, PAPER_STEP_SCHEDULE, parseLrSchedule, type LrSchedule } from '../src/train/schedule.js';

const test = suite('schedule');

/** Exact to float64 rounding: the values below are literals, not the formula re-evaluated. */
function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-15 + 1e-12 * Math.abs(want), `${what}: ${got}, expected ${want}`);
}

test('the paper step schedule over 300 epochs: 0.1, 0.01 from epoch 150, 0.001 from epoch 225', () => {
  const cases: [number, number][] = [
    [0, 0.1], [1.5, 0.1], [149, 0.1], [149.999, 0.1],
    [150, 0.01], [150.5, 0.01], [224.99, 0.01],
    [225, 0.001], [299.99, 0.001], [300, 0.001],
  ];
  for (const [epoch, lr] of cases) near(learningRate(PAPER_STEP_SCHEDULE, 0.1, epoch, 300), lr, `epoch ${epoch}`);
});

test('step schedule milestones that are not whole epochs take effect at the next whole epoch', () => {
  // 5 epochs: milestones at 2.5 and 3.75 → changes at epochs 3 and 4.
  const s: LrSchedule = { kind: 'step', milestones: [0.5, 0.75], gamma: 0.1 };
  const got = [0, 1, 2, 2.9, 3, 3.8, 4, 4.9].map((e) => learningRate(s, 1, e, 5));
  const want = [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01];
  got.forEach((g, i) => near(g, want[i], `epoch ${[0, 1, 2, 2.9, 3, 3.8, 4, 4.9][i]}`));
  // Unsorted milestones and another gamma.
  const t: LrSchedule = { kind: 'step', milestones: [0.8, 0.2], gamma: 0.5 };
  near(learningRate(t, 0.4, 1, 10), 0.4, 'before both');
  near(learningRate(t, 0.4, 2, 10), 0.2, 'after 0.2');
  near(learningRate(t, 0.4, 8, 10), 0.1, 'after both');
});

test('cosine: per step from baseLr to minLr', () => {
  const s: LrSchedule = { kind: 'cosine' };
  near(learningRate(s, 0.1, 0, 10), 0.1, 'start');
  near(learningRate(s, 0.1, 5, 10), 0.05, 'half way');
  near(learningRate(s, 0.1, 2.5, 10), 0.08535533905932737, 'quarter: 0.05·(1 + √2/2)');
  near(learningRate(s, 0.1, 7.5, 10), 0.014644660940672627, 'three quarters: 0.05·(1 − √2/2)');
  near(learningRate(s, 0.1, 10, 10), 0, 'end');
  near(learningRate(s, 0.1, 12, 10), 0, 'past the end stays at the minimum');
  // Within one epoch the rate changes per step (unlike the step schedule).
  assert.ok(learningRate(s, 0.1, 3.25, 10) < learningRate(s, 0.1, 3, 10));
  const m: LrSchedule = { kind: 'cosine', minLr: 0.001 };
  near(learningRate(m, 0.1, 5, 10), 0.0505, 'half way with a floor');
  near(learningRate(m, 0.1, 10, 10), 0.001, 'floor at the end');
});

test('constant, and linear warm-up in front of each schedule', () => {
  near(learningRate({ kind: 'constant' }, 0.05, 7.3, 10), 0.05, 'constant');
  near(learningRate({ kind: 'constant' }, 0.2, 0, 10, 2), 0, 'warm-up starts at 0');
  near(learningRate({ kind: 'constant' }, 0.2, 0.5, 10, 2), 0.05, 'a quarter through warm-up');
  near(learningRate({ kind: 'constant' }, 0.2, 2, 10, 2), 0.2, 'end of warm-up');
  near(learningRate(PAPER_STEP_SCHEDULE, 0.1, 1, 10, 4), 0.025, 'step schedule during warm-up');
  near(learningRate(PAPER_STEP_SCHEDULE, 0.1, 5, 10, 4), 0.01, 'step milestones count from epoch 0');
  // Cosine runs over the epochs after warm-up: 2 + 8 epochs, half way at epoch 6.
  near(learningRate({ kind: 'cosine' }, 0.1, 1, 10, 2), 0.05, 'cosine warm-up half way');
  near(learningRate({ kind: 'cosine' }, 0.1, 2, 10, 2), 0.1, 'cosine after warm-up starts at base');
  near(learningRate({ kind: 'cosine' }, 0.1, 6, 10, 2), 0.05, 'cosine half way after warm-up');
});

test('bad arguments are refused with a message', () => {
  assert.throws(() => learningRate(PAPER_STEP_SCHEDULE, 0.1, -1, 10), /epoch must be a finite number >= 0, got -1/);
  assert.throws(() => learningRate(PAPER_STEP_SCHEDULE, 0.1, NaN, 10), /epoch must be/);
  assert.throws(() => learningRate(PAPER_STEP_SCHEDULE, 0.1, 1, 0), /total epochs must be > 0/);
  assert.throws(() => learningRate(PAPER_STEP_SCHEDULE, -0.1, 1, 10), /base lr/);
  assert.throws(() => learningRate(PAPER_STEP_SCHEDULE, 0.1, 1, 10, 10), /warm-up epochs must be in \[0, 10\)/);
  assert.throws(() => learningRate({ kind: 'step', milestones: [150], gamma: 0.1 }, 0.1, 1, 300), /fractions of the total epochs/);
  assert.throws(() => learningRate({ kind: 'step', milestones: [0.5], gamma: 0 }, 0.1, 1, 300), /gamma must be > 0/);
  assert.throws(() => learningRate({ kind: 'cosine', minLr: 1 }, 0.1, 1, 300), /minLr must be in/);
  assert.throws(() => learningRate({ kind: 'linear' } as unknown as LrSchedule, 0.1, 1, 300), /unknown schedule kind "linear"/);
});

test('parseLrSchedule', () => {
  assert.equal(parseLrSchedule('step'), { kind: 'step', milestones: [0.5, 0.75], gamma: 0.1 });
  assert.equal(parseLrSchedule('step:0.3,0.6,0.9:0.2'), { kind: 'step', milestones: [0.3, 0.6, 0.9], gamma: 0.2 });
  assert.equal(parseLrSchedule('step:0.5'), { kind: 'step', milestones: [0.5], gamma: 0.1 });
  assert.equal(parseLrSchedule('cosine'), { kind: 'cosine' });
  assert.equal(parseLrSchedule('cosine:1e-4'), { kind: 'cosine', minLr: 1e-4 });
  assert.equal(parseLrSchedule(' constant '), { kind: 'constant' });
  assert.throws(() => parseLrSchedule('step:150,225'), /"step:150,225": step milestones are fractions/);
  assert.throws(() => parseLrSchedule('step:0.5:x'), /gamma "x" is not a number/);
  assert.throws(() => parseLrSchedule('cosine:'), /minimum lr "" is not a number/);
  assert.throws(() => parseLrSchedule('exp'), /unknown kind "exp"; expected step/);
  assert.throws(() => parseLrSchedule('constant:1'), /takes no arguments/);
});

test.run();
