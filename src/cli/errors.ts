// Which errors are the user's to fix (bad flags, files, configs, limits): those print their message
// alone. Anything else is a bug in the engine and prints its stack (as does every error with
// DENSENET_WGSL_DEBUG=1).

import { GraphError } from '../graph/graph.js';
import { ShapeError } from '../kernels/tensor.js';
import { DenseNetConfigError } from '../models/densenet_config.js';
import { CheckpointError } from '../train/checkpoint.js';
import { DatasetError } from '../train/data/dataset.js';
import { ImageError } from '../train/images.js';
import { MetricsError } from '../train/metrics.js';
import { OptionsError } from '../train/options.js';
import { SafetensorsError } from '../io/safetensors.js';
import { OnnxExportError } from '../io/onnx/densenet_onnx.js';
import { WeightsError } from '../io/torchvision.js';
import { UsageError } from './args.js';

const USER_ERRORS = [UsageError, OptionsError, DatasetError, CheckpointError, ImageError, MetricsError, DenseNetConfigError, GraphError, ShapeError, SafetensorsError, WeightsError, OnnxExportError];

export function isUserError(e: unknown): boolean {
  // Messages that start with "gpu:" come from device acquisition and limits: the user's machine.
  return USER_ERRORS.some((kind) => e instanceof kind) || (e instanceof Error && /^gpu: /.test(e.message));
}

export function reportError(e: unknown): number {
  const error = e instanceof Error ? e : new Error(String(e));
  const debug = process.env.DENSENET_WGSL_DEBUG === '1';
  if (isUserError(error) && !debug) {
    console.error(`densenet-wgsl: ${error.message}`);
    return error instanceof UsageError ? 2 : 1;
  }
  console.error(`densenet-wgsl: ${error.stack ?? error.message}`);
  return 1;
}
