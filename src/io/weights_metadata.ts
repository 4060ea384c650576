// What `export --checkpoint` and the library's saveWeights record in a safetensors file's metadata
// besides the tensors (the preprocessing the model was trained with, and its class names), and the
// one reader of it that `predict --weights`, `features`, `eval --weights` and the library's
// loadModel/loadWeights share, so that they all prepare a file's images the same way.

import type { DenseNetConfig } from '../models/densenet_config.js';

/** safetensors metadata keys under which `export --checkpoint` and the library's saveWeights record a model's preprocessing and classes. */
export const METADATA_KEYS = {
  preprocessing: 'densenet_wgsl.preprocessing', mean: 'densenet_wgsl.mean', std: 'densenet_wgsl.std', classNames: 'densenet_wgsl.class_names',
} as const;

/**
 * How a file becomes model input: per-channel mean/std, and 'center-crop' (torchvision's evaluation
 * transform) or 'resize' (straight to H×W); `invertLight`: a gray model inverts a light image (one
 * trained on white-on-black digits, which a drawing on paper is not).
 */
export interface FilePreprocessing { mean: number[]; std: number[]; resize: 'center-crop' | 'resize'; invertLight?: boolean }

const parseMetadata = (metadata: Record<string, string>, key: string): unknown => {
  try { return metadata[key] === undefined ? undefined : JSON.parse(metadata[key]); } catch { return undefined; }
};
const isNumbers = (v: unknown, n: number): v is number[] => Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/**
 * The preprocessing recorded in a safetensors file's metadata for `config`'s input, or undefined
 * (torchvision's own weights: ImageNet's). Older exports recorded mean and std alone: their models
 * were trained on images resized straight to the input size.
 */
export function recordedPreprocessing(metadata: Record<string, string>, config: DenseNetConfig): FilePreprocessing | undefined {
  const c = config.inputShape[0];
  const full = parseMetadata(metadata, METADATA_KEYS.preprocessing) as Partial<FilePreprocessing> | undefined;
  if (full && isNumbers(full.mean, c) && isNumbers(full.std, c) && full.std.every((v) => v > 0) && (full.resize === 'center-crop' || full.resize === 'resize')) {
    return { mean: full.mean, std: full.std, resize: full.resize, ...(full.invertLight === true && c === 1 ? { invertLight: true } : {}) };
  }
  const mean = parseMetadata(metadata, METADATA_KEYS.mean);
  const std = parseMetadata(metadata, METADATA_KEYS.std);
  if (isNumbers(mean, c) && isNumbers(std, c) && std.every((v) => v > 0)) return { mean, std, resize: 'resize' };
  return undefined;
}

/** Class names recorded in the metadata when they fit `classes`. */
export function recordedClassNames(metadata: Record<string, string>, classes: number | null): string[] | undefined {
  const names = parseMetadata(metadata, METADATA_KEYS.classNames);
  return Array.isArray(names) && names.length === classes && names.every((n) => typeof n === 'string') ? names : undefined;
}

