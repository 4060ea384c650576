// Evaluation through an inference session: accuracy, mean loss and the confusion matrix over a
// whole dataset, in full batches (the last one padded; padding rows are ignored — BN uses running
// statistics in inference, so padding cannot change the other rows).

import type { InferenceSession } from '../models/session.js';
// core.js, not the dataset.js barrel: the barrel brings the file loaders, which a browser page cannot bundle.
import { normalize, type Dataset } from './data/core.js';

export interface Evaluation {
  accuracy: number;
  loss: number;
  count: number;
  /** confusion[truth][predicted] */
  confusion: number[][];
}

export async function evaluate(session: InferenceSession, data: Dataset, mean: number[], std: number[]): Promise<Evaluation> {
  const batch = session.batch;
  const [c, h, w] = data.shape;
  const per = c * h * w;
  const k = data.classes;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const count = data.labels.length;
  const input = new Float32Array(batch * per);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    input.fill(0);
    input.set(normalize(data.images.subarray(start * per, (start + n) * per), data.shape, mean, std));
    const logits = await session.run(input);
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * k, (i + 1) * k);
      let best = 0;
      let max = -Infinity;
      for (let j = 0; j < k; j++) if (row[j] > max) { max = row[j]; best = j; }
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(row[j] - max);
      const label = data.labels[start + i];
      lossSum += Math.log(sum) + max - row[label];
      confusion[label][best]++;
      if (best === label) correct++;
    }
  }
  return { accuracy: correct / count, loss: lossSum / count, count, confusion };
}

export function formatConfusion(confusion: number[][], classNames: string[]): string {
  const names = classNames.map((n) => n.slice(0, 6));
  const width = Math.max(6, ...confusion.flat().map((v) => String(v).length)) + 1;
  const lines = [`${'truth\\pred'.padEnd(11)}${names.map((n) => n.padStart(width)).join('')}`];
  confusion.forEach((row, i) => lines.push(`${names[i].padEnd(11)}${row.map((v) => String(v).padStart(width)).join('')}`));
  return lines.join('\n');
}
