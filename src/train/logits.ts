// What a row of class logits says: its most probable classes (predict, in the CLI and the library)
// and one image's score against its label (evaluation, in the CLI and the library). One place for
// the max-shifted softmax and the tie rule: between equal logits the lower class index comes first.

/** The `top` most probable classes of `row` with their softmax probabilities, best first. */
export function topClasses(row: ArrayLike<number>, top: number): { index: number; probability: number }[] {
  const k = row.length;
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, row[j]);
  let sum = 0;
  for (let j = 0; j < k; j++) sum += Math.exp(row[j] - max);
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => row[b] - row[a] || a - b).slice(0, Math.min(top, k));
  return order.map((index) => ({ index, probability: Math.exp(row[index] - max) / sum }));
}

/**
 * One image's evaluation: `best` is the arg-max (the first of equal maxima), `inTop5` whether
 * `label` is among the 5 best (a tie ranks the lower index first, as a stable sort does), and
 * `loss` the cross-entropy −log softmax(row)[label].
 */
export function scoreLogits(row: ArrayLike<number>, label: number): { best: number; inTop5: boolean; loss: number } {
  const k = row.length;
  let best = 0;
  let max = -Infinity;
  let above = 0;
  for (let j = 0; j < k; j++) {
    if (row[j] > max) { max = row[j]; best = j; }
    if (row[j] > row[label] || (row[j] === row[label] && j < label)) above++;
  }
  let sum = 0;
  for (let j = 0; j < k; j++) sum += Math.exp(row[j] - max);
  return { best, inTop5: above < 5, loss: Math.log(sum) + max - row[label] };
}
