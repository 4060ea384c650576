// The logits helpers every predict and evaluation path shares (src/train/logits.ts), against direct
// formulas (softmax without the max shift, on logits small enough for that) and hand-worked ties.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scoreLogits, topClasses } from '../src/train/logits.js';

const test = suite('logits');

test('topClasses: softmax probabilities, best first, equal logits in class order, at most the classes there are', () => {
  const row = Float32Array.from([0.5, 2, -1, 2, 0.25, 1]);
  const z = [...row].reduce((s, v) => s + Math.exp(v), 0);
  const top = topClasses(row, 4);
  assert.equal(top.map((t) => t.index), [1, 3, 5, 0]);
  for (const t of top) assert.ok(Math.abs(t.probability - Math.exp(row[t.index]) / z) < 1e-15, `class ${t.index}`);
  assert.is(topClasses(row, 10).length, 6);
  const all = topClasses(row, 6).reduce((s, t) => s + t.probability, 0);
  assert.ok(Math.abs(all - 1) < 1e-15);
  // Large logits: the shift keeps them finite.
  assert.ok(topClasses([1000, 999], 2).every((t) => Number.isFinite(t.probability) && t.probability > 0));
});

test('scoreLogits: the first of equal maxima, top-5 with ties ranking the lower index first, cross-entropy', () => {
  const row = [3, 1, 3, 0, 0, 0, 0, 2];
  const z = row.reduce((s, v) => s + Math.exp(v), 0);
  const s = scoreLogits(row, 2);
  assert.is(s.best, 0, 'class 0 and 2 tie: the first wins');
  assert.ok(Math.abs(s.loss - -Math.log(Math.exp(3) / z)) < 1e-12);
  // Label 3 (logit 0) is below 3, 3, 2, 1 and ties with 4, 5, 6 after it: rank 5, in the top 5.
  assert.is(scoreLogits(row, 3).inTop5, true);
  // Label 5 ties with 3 and 4 before it: rank 7, not in the top 5.
  assert.is(scoreLogits(row, 5).inTop5, false);
});

test.run();
