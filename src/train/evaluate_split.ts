// Evaluation of a split held in memory or streamed from an image folder (decoded per batch with
// its preprocessing). Node only: the streamed path reads files; evaluate.ts is the part a page bundles.

import type { InferenceSession } from '../models/session.js';
import type { Dataset } from './data/dataset.js';
import type { StreamedSet } from './data/folder_load.js';
import { isStreamed } from './data/folder_load.js';
import { streamedEvalBatches } from './data/folder_stream.js';
import { evaluate, evaluateBatches, type Evaluation } from './evaluate.js';
import type { Preprocessing } from './preprocessing.js';

/** A split in memory (normalized here with mean/std) or streamed (with `preprocessing`, required then). */
export async function evaluateSplit(session: InferenceSession, data: Dataset | StreamedSet, mean: number[], std: number[], preprocessing?: Preprocessing): Promise<Evaluation> {
  if (isStreamed(data)) {
    if (!preprocessing) throw new Error('evaluate: a streamed split needs its preprocessing');
    return evaluateBatches(session, data.classes, streamedEvalBatches(data, session.batch, { ...preprocessing, mean, std }));
  }
  return evaluate(session, data, mean, std);
}
