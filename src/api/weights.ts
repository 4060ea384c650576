// Weights in and out: loadModel() builds a Model from a file (torchvision-named safetensors, such as
// torchvision's converted ImageNet weights or our saveWeights()/`export` output, or a training
// checkpoint written by `densenet-wgsl train`); loadWeights() loads safetensors into a Model
// (all or nothing; optionally all but the classifier, to fine-tune with a new head); saveWeights()
// writes torchvision's state_dict format with the config, class names and preprocessing recorded.

import { access } from 'node:fs/promises';
import { extname } from 'node:path';
import { UsageError } from '../base/usage_error.js';
import { IMAGENET_CLASSES } from '../io/imagenet_classes.js';
import { readSafetensors, type SafetensorsContents } from '../io/safetensors.js';
import { configFromWeights, exportTorchvisionWeights, matchTorchvisionWeights } from '../io/torchvision.js';
import { METADATA_KEYS, recordedClassNames, recordedPreprocessing } from '../io/weights_metadata.js';
import { validateConfig, type DenseNetConfig } from '../models/index.js';
import { DenseNetModel } from '../models/model.js';
import { readCheckpoint, readCheckpointHeader } from '../train/checkpoint.js';
import { CHECKPOINT_FORMAT } from '../train/trainer.js';
import type { Device } from './device.js';
import { gpuOf, modelState } from './internal.js';
import { resolveConfig, type Model, type ModelOptions, type ModelSpec } from './model.js';
import { defaultPreprocessing, wrapModel } from './model_handle.js';

/**
 * What loadWeights() loaded. The same fields as io/torchvision.ts's report, declared again on purpose:
 * the package's declarations must not reach engine internals (test/package.test.ts type-checks them).
 */
export interface LoadReport {
  file: string;
  /** Tensors written to the model. */
  loaded: number;
  /** Old-style torchvision keys renamed (`norm.1` → `norm1`), and whether a DataParallel `module.` prefix was removed. */
  renamed: number;
  strippedModulePrefix: boolean;
  /** File tensors not loaded: num_batches_tracked, and the classifier with skipClassifier. */
  skipped: string[];
  /** Tensors converted to float32, by their stored dtype (F16, BF16, F64). */
  converted: Record<string, number>;
  metadata: Record<string, string>;
}


export interface LoadWeightsOptions {
  /**
   * Leave the model's classifier as it is and ignore the file's: loads a network trained on other
   * classes (ImageNet's 1,000) into a model with a new head, to fine-tune.
   */
  skipClassifier?: boolean;
}

const isClassifier = (name: string) => name.startsWith('classifier.');

/**
 * Loads torchvision-named safetensors weights into `model`. All or nothing: every missing,
 * unexpected or mis-shaped tensor is listed (WeightsError) and the model is untouched.
 */
export async function loadWeights(model: Model, file: string, options: LoadWeightsOptions = {}): Promise<LoadReport> {
  modelState(model, 'loadWeights');
  return loadContents(model, await readSafetensors(file), file, options);
}

function loadContents(model: Model, contents: SafetensorsContents, file: string, options: LoadWeightsOptions): LoadReport {
  const state = modelState(model, 'loadWeights');
  const arch = state.inner.arch;
  const skip = options.skipClassifier === true;
  const kept = skip ? { ...arch, parameters: arch.parameters.filter((p) => !isClassifier(p.name)) } : arch;
  const { values, report } = matchTorchvisionWeights(kept, contents, file, skip ? { ignore: isClassifier } : {});
  state.inner.writeParameters(values);
  applyRecorded(model, contents.metadata, skip);
  return report;
}

/**
 * Class names and preprocessing recorded in the file's metadata (by saveWeights or `export`), unless
 * the classifier was replaced; read as predict --weights reads them (io/weights_metadata.ts).
 */
function applyRecorded(model: Model, metadata: Record<string, string>, skippedClassifier: boolean): void {
  if (!skippedClassifier) {
    const names = recordedClassNames(metadata, model.classes);
    if (names) model.classNames = names;
    else if (model.classes === IMAGENET_CLASSES.length && model.config.stem === 'imagenet') model.classNames = [...IMAGENET_CLASSES];
  }
  const recorded = recordedPreprocessing(metadata, model.config);
  if (recorded) model.preprocessing = { ...recorded, mean: [...recorded.mean], std: [...recorded.std] };
}

/**
 * Writes the model's weights as a torchvision state_dict in safetensors (PyTorch loads it with
 * load_state_dict, strict), recording the config, class names and preprocessing for loadModel().
 * An existing file is replaced only with `overwrite: true` (atomically: a failed write leaves it intact).
 */
export async function saveWeights(model: Model, file: string, options: { overwrite?: boolean } = {}): Promise<void> {
  const state = modelState(model, 'saveWeights');
  if (extname(file).toLowerCase() !== '.safetensors') throw new UsageError(`saveWeights: ${file} must end in .safetensors (the format written)`);
  if (!options.overwrite && await access(file).then(() => true, () => false)) {
    throw new UsageError(`saveWeights: ${file} already exists; pass { overwrite: true } to replace it, or choose another file`);
  }
  await exportTorchvisionWeights(state.inner, file, {
    metadata: {
      ...(model.classNames ? { [METADATA_KEYS.classNames]: JSON.stringify(model.classNames) } : {}),
      [METADATA_KEYS.preprocessing]: JSON.stringify(model.preprocessing),
    },
  });
}

export interface LoadModelOptions extends Pick<ModelOptions, 'memory'> {
  /** The architecture, for safetensors files that do not record it (default: the config the file records, else the preset its tensors match). */
  model?: ModelSpec;
}

/**
 * A Model from a file: torchvision-named .safetensors (ImageNet weights converted from torchvision,
 * or saveWeights()/`densenet-wgsl export` output) or a training checkpoint of `densenet-wgsl train`
 * (last.ckpt, best.ckpt: its class names and normalization come with it).
 */
export async function loadModel(device: Device, file: string, options: LoadModelOptions = {}): Promise<Model> {
  const gpu = gpuOf(device, 'loadModel');
  const header = await readCheckpointHeader(file);
  if (header) {
    if (header.format !== CHECKPOINT_FORMAT) throw new UsageError(`loadModel: ${file} is not a densenet-wgsl training checkpoint of this version (format "${String(header.format)}")`);
    if (options.model !== undefined) throw new UsageError(`loadModel: ${file} is a training checkpoint, which records its model; drop the model option`);
    const checkpoint = await readCheckpoint(file);
    const config = checkpoint.header.config as DenseNetConfig;
    validateConfig(config);
    const inner = DenseNetModel.create(gpu, config, 0);
    try {
      inner.writeParameters(new Map([...checkpoint.tensors].filter(([n]) => !n.startsWith('optimizer.'))));
    } catch (e) {
      inner.close();
      throw new UsageError(`loadModel: ${file}: its weights do not fit model "${config.name}": ${(e as Error).message}`);
    }
    const mean = checkpoint.header.mean as number[] | undefined;
    const std = checkpoint.header.std as number[] | undefined;
    const names = checkpoint.header.classNames as string[] | undefined;
    const preprocessing = mean && std ? { ...defaultPreprocessing(config), mean: [...mean], std: [...std] } : undefined;
    return wrapModel(device, inner, { memory: options.memory, classNames: names, preprocessing });
  }
  const contents = await readSafetensors(file);
  const config = options.model !== undefined ? resolveConfig(options.model) : configFromWeights(contents);
  if (!config) throw new UsageError(`loadModel: ${file} matches no preset and records no config; pass { model: 'densenet121' } (a preset name or DenseNet settings)`);
  const model = wrapModel(device, DenseNetModel.create(gpu, config, 0), { memory: options.memory });
  try {
    loadContents(model, contents, file, {});
  } catch (e) {
    model.close();
    throw e;
  }
  return model;
}
