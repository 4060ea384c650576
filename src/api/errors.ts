// The error classes a library user may test with `instanceof`: the engine's own classes (so every
// throw site is covered), declared here by their shape so that the published declarations do not
// pull in the engine's internal types.

import { UsageError as EngineUsageError } from '../base/usage_error.js';
import { SafetensorsError as EngineSafetensorsError } from '../io/safetensors.js';
import { WeightsError as EngineWeightsError } from '../io/torchvision.js';
import { DenseNetConfigError as EngineConfigError } from '../models/densenet_config.js';
import { CheckpointError as EngineCheckpointError } from '../train/checkpoint.js';
import { DatasetError as EngineDatasetError } from '../train/data/dataset.js';
import { ImageError as EngineImageError } from '../train/images.js';

type ErrorClass<E extends Error = Error> = (new (message: string) => E) & { prototype: E };

/** A bad option or argument: the message says which and what to do. */
export const UsageError: ErrorClass = EngineUsageError;
/** A DenseNet configuration that cannot be built (the message names the field). */
export const DenseNetConfigError: ErrorClass = EngineConfigError;
/** Weights that do not fit the model: `problems` lists every missing, unexpected or mis-shaped tensor. */
export const WeightsError: ErrorClass<Error & { problems: string[] }> = EngineWeightsError;
/** A missing, unreadable or malformed safetensors file. */
export const SafetensorsError: ErrorClass = EngineSafetensorsError;
/** A missing, damaged or foreign training checkpoint. */
export const CheckpointError: ErrorClass = EngineCheckpointError;
/** A missing, unsupported or corrupt image file. */
export const ImageError: ErrorClass = EngineImageError;
/** Bad data: a missing data directory or file, truncated files, labels out of range. */
export const DatasetError: ErrorClass = EngineDatasetError;
