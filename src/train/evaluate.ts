// Evaluation through an inference session, as mmpretrain's test.py reports it: top-1 and top-5
// accuracy, mean loss, per-class accuracy and the confusion matrix, over a whole split in full
// batches (the last one padded; padding rows are ignored: BN uses running statistics in inference,
// so padding cannot change the other rows). The split is in memory (a Dataset); evaluate_split.ts adds
// folder splits streamed from files.

import type { InferenceSession } from '../models/session.js';
// core.js, not the dataset.js barrel: the barrel brings the file loaders, which a browser page cannot
// bundle. Streamed folder splits are evaluated by evaluate_split.ts (Node only: it decodes files).
import { normalize, type Dataset } from './data/core.js';
import { scoreLogits } from './logits.js';

export interface Evaluation {
  /** Top-1 accuracy. */
  accuracy: number;
  /** The label is among the 5 largest logits (all of them when the model has ≤ 5 classes). */
  top5: number;
  loss: number;
  count: number;
  /** confusion[truth][predicted] */
  confusion: number[][];
  /** Top-1 accuracy of each true class; null for a class with no image in the split. */
  perClass: (number | null)[];
}

export interface EvalBatch { images: Float32Array; labels: Uint32Array; count: number }

/** Top-1/top-5/loss/confusion over `batches` (images already normalized) for a model with `classes` outputs. */
export async function evaluateBatches(session: InferenceSession, classes: number, batches: AsyncIterable<EvalBatch> | Iterable<EvalBatch>): Promise<Evaluation> {
  const batch = session.batch;
  const k = classes;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let input: Float32Array | undefined;
  let correct = 0;
  let inTop5 = 0;
  let lossSum = 0;
  let count = 0;
  for await (const b of batches) {
    const per = b.images.length / b.count;
    input ??= new Float32Array(batch * per);
    input.fill(0);
    input.set(b.images.subarray(0, b.count * per));
    const logits = await session.run(input);
    for (let i = 0; i < b.count; i++) {
      const label = b.labels[i];
      const { best, inTop5: inTop, loss } = scoreLogits(logits.subarray(i * k, (i + 1) * k), label);
      if (inTop) inTop5++;
      lossSum += loss;
      confusion[label][best]++;
      if (best === label) correct++;
    }
    count += b.count;
  }
  const perClass = confusion.map((row, i) => {
    const total = row.reduce((a, v) => a + v, 0);
    return total === 0 ? null : row[i] / total;
  });
  return { accuracy: correct / count, top5: inTop5 / count, loss: lossSum / count, count, confusion, perClass };
}

function* datasetBatches(data: Dataset, batch: number, mean: number[], std: number[]): Generator<EvalBatch> {
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  const count = data.labels.length;
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    yield { images: normalize(data.images.subarray(start * per, (start + n) * per), data.shape, mean, std), labels: data.labels.subarray(start, start + n), count: n };
  }
}

/** A split in memory, normalized here with mean/std. */
export async function evaluate(session: InferenceSession, data: Dataset, mean: number[], std: number[]): Promise<Evaluation> {
  return evaluateBatches(session, data.classes, datasetBatches(data, session.batch, mean, std));
}

export function formatConfusion(confusion: number[][], classNames: string[]): string {
  const names = classNames.map((n) => n.slice(0, 6));
  const width = Math.max(6, ...confusion.flat().map((v) => String(v).length)) + 1;
  const lines = [`${'truth\\pred'.padEnd(11)}${names.map((n) => n.padStart(width)).join('')}`];
  confusion.forEach((row, i) => lines.push(`${names[i].padEnd(11)}${row.map((v) => String(v).padStart(width)).join('')}`));
  return lines.join('\n');
}

/** Per-class accuracy lines, "name  93.33% (14/15)", for classes present in the split. */
export function formatPerClass(e: Evaluation, classNames: readonly string[]): string {
  const width = Math.min(30, Math.max(5, ...classNames.map((n) => n.length)));
  return e.confusion.map((row, i) => {
    const total = row.reduce((a, v) => a + v, 0);
    return total === 0 ? undefined : `  ${(classNames[i] ?? `class ${i}`).padEnd(width)} ${(100 * row[i] / total).toFixed(2).padStart(6)}% (${row[i]}/${total})`;
  }).filter((l) => l !== undefined).join('\n');
}
