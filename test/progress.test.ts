import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, ProgressReporter, type ProgressOptions } from '../src/train/progress.js';

const test = suite('progress');

function harness(options: Partial<ProgressOptions> & { isTTY?: boolean; columns?: number } = {}) {
  const writes: string[] = [];
  let clock = 1000; // ms; not zero, to catch an origin mistake
  const reporter = new ProgressReporter({
    epoch: 3, epochs: 10, batches: 10,
    out: { write: (s: string) => writes.push(s), isTTY: options.isTTY ?? false, columns: options.columns },
    now: () => clock,
    ...options,
  });
  return { reporter, writes, advance: (ms: number) => { clock += ms; } };
}

test('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0:00'], [12, '0:12'], [12.4, '0:12'], [12.5, '0:13'], [59.6, '1:00'], [75, '1:15'], [3599, '59:59'],
    [3600, '1:00:00'], [3723, '1:02:03'], [360000, '100:00:00'], [-4, '0:00'], [NaN, '--:--'], [Infinity, '--:--'],
  ];
  for (const [s, want] of cases) assert.is(formatDuration(s), want, `${s} s`);
});

test('not a terminal: a line every ~10 s, none for the last batch, and one at the end of the epoch', () => {
  const { reporter, writes, advance } = harness();
  for (let b = 1; b <= 10; b++) {
    advance(3000);
    reporter.update({ batch: b, imagesPerSec: 21.333, loss: 2.5 / b, accuracy: b / 20 });
  }
  reporter.finish();
  reporter.finish(); // idempotent
  assert.equal(writes, [
    'epoch 3/10 4/10 batches  21.3 img/s  loss 0.6250  acc 20.0%  ETA 0:18\n', // 12 s elapsed, 3 s per batch, 6 left
    'epoch 3/10 8/10 batches  21.3 img/s  loss 0.3125  acc 40.0%  ETA 0:06\n',
    'epoch 3/10 10/10 batches  21.3 img/s  loss 0.2500  acc 50.0%  done in 0:30\n',
  ]);
  assert.not.ok(writes.join('').includes('\r'));
});

test('not a terminal: every N batches as well, and the last batch only once', () => {
  const { reporter, writes, advance } = harness({ everyBatches: 5, everySeconds: 1000 });
  for (let b = 1; b <= 10; b++) {
    advance(100);
    reporter.update({ batch: b, loss: 1 });
  }
  reporter.finish();
  assert.equal(writes, ['epoch 3/10 5/10 batches  loss 1.0000  ETA 0:01\n', 'epoch 3/10 10/10 batches  loss 1.0000  done in 0:01\n']);
});

test('terminal: one line redrawn with \\r, throttled, with the bar and every field; finish ends it', () => {
  const { reporter, writes, advance } = harness({ isTTY: true, barWidth: 12, batches: 125 });
  advance(1000);
  reporter.update({ batch: 1, imagesPerSec: 64, loss: 2.3, accuracy: 0.1 });
  advance(50);
  reporter.update({ batch: 2, imagesPerSec: 64, loss: 2.2, accuracy: 0.1 }); // within 100 ms: not drawn
  assert.is(writes.length, 1);
  advance(48_950); // 50 s in
  reporter.update({ batch: 120, imagesPerSec: 310.24, loss: 0.12344, accuracy: 0.9612 });
  assert.is(writes.length, 2);
  assert.is(writes[1], '\repoch 3/10 [###########.] 120/125 batches  310.2 img/s  loss 0.1234  acc 96.1%  ETA 0:02\x1b[K');
  advance(10);
  reporter.update({ batch: 125, loss: 0.1, accuracy: 0.97, imagesPerSec: 311 }); // the last batch is always drawn
  assert.is(writes.length, 3);
  advance(10);
  reporter.finish();
  assert.is(writes[3], '\repoch 3/10 [############] 125/125 batches  311.0 img/s  loss 0.1000  acc 97.0%  done in 0:50\x1b[K\n');
  assert.ok(writes.slice(0, 3).every((w) => w.startsWith('\r') && !w.includes('\n')), 'redraws stay on one line');
});

test('terminal: the bar fills in proportion; the line is cut to the terminal width; log() keeps the bar', () => {
  const { reporter, writes, advance } = harness({ isTTY: true, barWidth: 10, columns: 40 });
  advance(200);
  reporter.update({ batch: 3, loss: 1 });
  assert.is(writes[0], '\repoch 3/10 [###.......] 3/10 batches  l\x1b[K', 'cut to 39 characters');
  reporter.log('saved checkpoint');
  assert.is(writes[1], '\r\x1b[Ksaved checkpoint\n');
  assert.ok(writes[2].startsWith('\repoch 3/10 [###.......]'), 'the bar is redrawn after a message');
});

test('a stopped epoch says so; ETA is unknown before the first batch', () => {
  const { reporter, writes, advance } = harness();
  reporter.log('resumed');
  advance(65_000);
  reporter.update({ batch: 4 });
  reporter.finish();
  assert.equal(writes, ['resumed\n', 'epoch 3/10 4/10 batches  ETA 1:38\n', 'epoch 3/10 4/10 batches  stopped after 1:05\n']);
  const t = harness({ isTTY: true });
  t.reporter.finish();
  assert.match(t.writes[0], /0\/10 batches {2}stopped after 0:00/);
});

test.run();
