// densenet-wgsl as a library: `import { openDevice, createModel, train, predict } from 'densenet-wgsl'`.
// The public surface is this file's exports (thin wrappers in src/api/ over the engine); the rest
// of src/ is internal and may change. README.md, "Use it as a library", has a complete example.

export { openDevice, type AdapterInfo, type Device, type DeviceOptions, type MemoryUsage } from './api/device.js';
export {
  createModel, describeModel, listPresets, planMemory,
  type DenseNetConfig, type MemoryPlanOptions, type MemoryPlanRow, type MemoryStrategy, type Model, type ModelDescription, type ModelOptions, type ModelSpec, type Preprocessing,
} from './api/model.js';
export { loadModel, loadWeights, saveWeights, type LoadModelOptions, type LoadReport, type LoadWeightsOptions } from './api/weights.js';
export { arrayDataset, loadCifar, loadDigits, type ArrayDatasetOptions, type AugmentOptions, type Batch, type ImageArrays, type ImageDataset, type ReadContext, type TrainTestSplit } from './api/data.js';
export { loadImageFolder, type ImageFolderData, type ImageFolderOptions } from './api/folder.js';
export { train, TrainingDivergedError, type EpochInfo, type StepInfo, type TrainOptions, type TrainResult } from './api/train.js';
export { evaluate, features, predict, prepareImages, type Evaluation, type ImageInput, type InferenceOptions, type Prediction } from './api/infer.js';
export { CheckpointError, DatasetError, DenseNetConfigError, ImageError, SafetensorsError, UsageError, WeightsError } from './api/errors.js';
