// The data of a training run, whatever its source: MNIST and CIFAR in memory, or an image folder
// (in memory for small inputs, streamed for ImageNet-stem models; see data/folder_load.ts); the
// model config that fits it; the preprocessing the checkpoint records; and the batch stream.

import type { DenseNetConfig } from '../models/densenet_config.js';
import { describeDenseNet } from '../models/index.js';
import { BatchStream, type Batch, type BatchStreamState, type DatasetSplit } from './data/dataset.js';
import { CIFAR_AUGMENT } from './data/augment.js';
import { loadFolderData, type StreamedSplit } from './data/folder_load.js';
import { FolderBatchStream } from './data/folder_stream.js';
import { loadDataset } from './data/load.js';
import { OptionsError, type TrainOptions } from './options.js';
import { preprocessingFor, type Preprocessing } from './preprocessing.js';

export interface TrainingData {
  split: DatasetSplit | StreamedSplit;
  config: DenseNetConfig;
  preprocessing: Preprocessing;
  /** Folder datasets: layout, counts, normalization and where images live (printed by the run). */
  description?: string;
}

/** What the training loop draws batches from (BatchStream or FolderBatchStream). */
export interface BatchSource {
  batchesPerEpoch(): number;
  next(): Batch | null | Promise<Batch | null>;
  state(): BatchStreamState;
}

/** Loads the data and fits the model to it; every problem is reported here, before any GPU work. */
export async function loadTrainingData(o: TrainOptions, base: DenseNetConfig, log: (line: string) => void): Promise<TrainingData> {
  const config: DenseNetConfig = { ...base, blocks: [...base.blocks], inputShape: [...base.inputShape] };
  if (o.dropout !== undefined) config.dropRate = o.dropout;
  if (o.dataset === 'folder') {
    const folder = await loadFolderData({ dataDir: o.dataDir!, valSplit: o.valSplit, seed: o.seed, limit: o.limit, normalize: o.normalize, augment: o.augment }, config, log);
    config.classes = folder.split.train.classes;
    describeDenseNet(config); // validates
    return { split: folder.split, config, preprocessing: folder.preprocessing, description: folder.description };
  }
  const split = await loadDataset(o.dataset, { dataDir: o.dataDir, seed: o.seed, limit: o.limit, svhnExtra: o.svhnExtra });
  const shape = split.train.shape;
  if (config.inputShape.join() !== shape.join()) {
    throw new OptionsError(`train: model "${o.model}" takes images of [${config.inputShape.join(', ')}] but ${o.dataset} images are ` +
      `[${shape.join(', ')}]; pick a preset made for ${o.dataset} (e.g. ${o.dataset === 'mnist' ? 'digits-small' : 'densenet-bc-100-12'})`);
  }
  config.classes = split.train.classes;
  describeDenseNet(config); // validates
  // MNIST and CIFAR are stretched to the input size at predict time; digits models invert light drawings.
  const preprocessing: Preprocessing = {
    ...preprocessingFor(config, { mean: split.mean, std: split.std, normalize: 'dataset' }, o.augment),
    ...(o.dataset === 'mnist' ? { invertLight: true } : {}),
  };
  return { split, config, preprocessing };
}

/** The run's batches, new or continuing a checkpoint's stream state. */
export function batchSource(data: TrainingData, o: TrainOptions, saved?: object): BatchSource {
  const split = data.split;
  if ('files' in split.train) {
    const options = { batch: o.batch, seed: o.seed, shuffle: true, dropLast: true, augment: o.augment, preprocessing: data.preprocessing };
    return saved ? FolderBatchStream.restore(split.train, options, saved) : new FolderBatchStream(split.train, options);
  }
  const streamOptions = { batch: o.batch, seed: o.seed, shuffle: true, augment: o.augment, dropLast: true, mean: split.mean, std: split.std };
  if (!saved) return new BatchStream(split.train, streamOptions);
  // Augmentation draws hash (seed, epoch, batch), so turning it on or off leaves the data order as recorded.
  const augment = o.augment ? { padding: CIFAR_AUGMENT.padding, flip: CIFAR_AUGMENT.flip } : null;
  return BatchStream.restore(split.train, streamOptions, { ...saved, augment });
}
