// torchvision DenseNet weights in and out. Our parameter names ARE torchvision's state_dict keys
// with its layouts (conv OIHW, linear [out, in]), so loading is a checked name-for-name copy:
// every missing, unexpected or mis-shaped tensor is reported by name with both shapes, all at once,
// and nothing is written unless everything fits (never a half-loaded model). Older torchvision
// checkpoints spell dense-layer keys `denselayer1.norm.1.weight`; they are renamed with the regex
// torchvision's own _load_state_dict uses. BatchNorm's `num_batches_tracked` (I64) is skipped on
// load and written on export, so `model.load_state_dict(...)` in PyTorch works with strict=True.

import { describeDenseNet, size, type ArchitectureSpec } from '../models/architecture.js';
import { validateConfig, type DenseNetConfig } from '../models/densenet_config.js';
import type { DenseNetModel } from '../models/model.js';
import { PRESETS } from '../models/presets.js';
import { readSafetensors, writeSafetensors, type SafetensorsContents, type WritableTensor } from './safetensors.js';

/** Weights that do not fit a model; `problems` lists each one (also in the message). */
export class WeightsError extends Error {
  override name = 'WeightsError';
  constructor(message: string, readonly problems: string[] = []) { super(message); }
}

/** torchvision's pattern for pre-0.3 keys: `...denselayer1.norm.1.weight` → `...denselayer1.norm1.weight`. */
const OLD_DENSELAYER_KEY = /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$/;

/** A state_dict key in today's torchvision spelling (old dense-layer keys renamed, as torchvision does). */
export function modernKey(key: string): string {
  const m = OLD_DENSELAYER_KEY.exec(key);
  return m ? m[1] + m[2] : key;
}

/** Metadata key under which our exports record the model config (so `--model` can be omitted). */
export const CONFIG_METADATA_KEY = 'densenet_wgsl.config';

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export interface LoadOptions {
  /**
   * File tensors the model lacks that may be skipped instead of reported as unexpected: e.g.
   * `(n) => n.startsWith('classifier.')` when loading a classifier's weights into a feature extractor.
   */
  ignore?: (name: string) => boolean;
}

export interface LoadReport {
  file: string;
  /** Tensors written to the model (every parameter and running statistic it has). */
  loaded: number;
  /** Old-style keys renamed (`norm.1` → `norm1`), and whether a DataParallel `module.` prefix was removed. */
  renamed: number;
  strippedModulePrefix: boolean;
  /** File tensors not loaded: num_batches_tracked and what `ignore` accepted. */
  skipped: string[];
  /** How many tensors were converted to float32, by their stored dtype (F16, BF16, F64). */
  converted: Record<string, number>;
  metadata: Record<string, string>;
}

/**
 * Checks a file's tensors against a model's parameters and returns the float32 values by our
 * name, or throws a WeightsError listing every problem (nothing is written either way).
 */
export function matchTorchvisionWeights(arch: ArchitectureSpec, contents: SafetensorsContents, file: string, options: LoadOptions = {}):
  { values: Map<string, Float32Array>; report: LoadReport } {
  const expected = new Map(arch.parameters.map((p) => [p.name, p.shape]));
  const bnNames = new Set(arch.parameters.filter((p) => p.kind === 'bn-weight').map((p) => p.name.slice(0, -'.weight'.length)));
  const keys = [...contents.tensors.keys()];
  const stripModule = keys.length > 0 && keys.every((k) => k.startsWith('module.'));
  const report: LoadReport = { file, loaded: 0, renamed: 0, strippedModulePrefix: stripModule, skipped: [], converted: {}, metadata: { ...contents.metadata } };
  const values = new Map<string, Float32Array>();
  const origin = new Map<string, string>();
  const missing: string[] = [];
  const unexpected: string[] = [];
  const misshaped: string[] = [];
  const other: string[] = [];

  for (const [key, tensor] of contents.tensors) {
    const name = modernKey(stripModule ? key.slice('module.'.length) : key);
    const spelled = name === key ? '' : ` (stored as "${key}")`;
    if (modernKey(key) !== key) report.renamed++;
    if (name.endsWith('.num_batches_tracked') && bnNames.has(name.slice(0, -'.num_batches_tracked'.length))) {
      report.skipped.push(key);
      continue;
    }
    const want = expected.get(name);
    if (!want) {
      if (options.ignore?.(name)) report.skipped.push(key);
      else unexpected.push(`  unexpected ${name} ${shapeText(tensor.shape)}${spelled}: the model has no such tensor`);
      continue;
    }
    if (origin.has(name)) {
      other.push(`  duplicate ${name}: given as both "${origin.get(name)}" and "${key}"`);
      continue;
    }
    origin.set(name, key);
    if (!(tensor.data instanceof Float32Array)) {
      other.push(`  wrong dtype ${name}${spelled}: ${tensor.dtype} in the file, the model needs a floating-point tensor ${shapeText(want)}`);
      continue;
    }
    if (tensor.shape.length !== want.length || tensor.shape.some((d, i) => d !== want[i])) {
      misshaped.push(`  shape mismatch ${name}${spelled}: file ${shapeText(tensor.shape)}, model ${shapeText(want)}`);
      continue;
    }
    values.set(name, tensor.data);
    if (tensor.dtype !== 'F32') report.converted[tensor.dtype] = (report.converted[tensor.dtype] ?? 0) + 1;
  }
  for (const [name, shape] of expected) if (!origin.has(name)) missing.push(`  missing ${name} ${shapeText(shape)}: not in the file`);

  const problems = [...missing, ...unexpected, ...misshaped, ...other];
  if (problems.length > 0) {
    const counts = [[missing, 'missing'], [unexpected, 'unexpected'], [misshaped, 'mis-shaped'], [other, 'other']]
      .filter(([list]) => list.length > 0).map(([list, what]) => `${list.length} ${what}`).join(', ');
    const hint = missing.length > 0 && unexpected.length > 0 ? '; is this file for another model? (check --model)' : '';
    throw new WeightsError(`weights ${file} do not fit model "${arch.config.name}" (${counts}${hint}); nothing was loaded:\n${problems.join('\n')}`,
      problems.map((p) => p.trim()));
  }
  report.loaded = values.size;
  return { values, report };
}

/**
 * Loads torchvision-named weights (a .safetensors path, or contents already read) into `model`:
 * all or nothing. Throws WeightsError (every problem listed) or SafetensorsError (a bad file).
 */
export async function loadTorchvisionWeights(model: DenseNetModel, source: string | SafetensorsContents, options: LoadOptions & { file?: string } = {}): Promise<LoadReport> {
  const file = typeof source === 'string' ? source : options.file ?? '(in memory)';
  const contents = typeof source === 'string' ? await readSafetensors(source) : source;
  const { values, report } = matchTorchvisionWeights(model.arch, contents, file, options);
  model.writeParameters(values);
  return report;
}

/** Every tensor of a torchvision state_dict in its order: our parameters plus an I64 num_batches_tracked per BN. */
export function torchvisionStateDict(arch: ArchitectureSpec, params: Map<string, Float32Array>, numBatchesTracked = 0): [string, WritableTensor][] {
  const out: [string, WritableTensor][] = [];
  for (const p of arch.parameters) {
    const data = params.get(p.name);
    if (!data) throw new WeightsError(`export: parameter "${p.name}" ${shapeText(p.shape)} is missing`);
    if (data.length !== size(p.shape)) throw new WeightsError(`export: parameter "${p.name}" has ${data.length} values, shape ${shapeText(p.shape)} needs ${size(p.shape)}`);
    out.push([p.name, { dtype: 'F32', shape: p.shape, data }]);
    if (p.kind === 'bn-running-var') {
      out.push([`${p.name.slice(0, -'.running_var'.length)}.num_batches_tracked`, { dtype: 'I64', shape: [], data: [BigInt(numBatchesTracked)] }]);
    }
  }
  return out;
}

export interface ExportOptions {
  /** Value of every num_batches_tracked (default: the checkpoint's training steps, or 0 for a model). */
  numBatchesTracked?: number;
  /** Extra metadata strings. */
  metadata?: Record<string, string>;
}

/** A training checkpoint's contents (src/train/checkpoint.ts's CheckpointContents) and, for messages, its file name. */
export interface TrainedWeights { header: Record<string, unknown>; tensors: Map<string, Float32Array>; name?: string }

export interface ExportReport { file: string; config: DenseNetConfig; tensors: number; parameters: number }

/**
 * Writes a model's (or a training checkpoint's) weights as a torchvision state_dict in safetensors:
 * F32 tensors with torchvision names and layouts plus I64 num_batches_tracked scalars, and the
 * config in the metadata. `source` is a model or a training checkpoint's contents (read by the
 * caller: checkpoints are src/train's format, which this room does not import).
 */
export async function exportTorchvisionWeights(source: DenseNetModel | TrainedWeights, file: string, options: ExportOptions = {}): Promise<ExportReport> {
  let config: DenseNetConfig;
  let params: Map<string, Float32Array>;
  let steps = 0;
  if (!('arch' in source)) {
    const checkpoint = source;
    const name = source.name ?? 'checkpoint';
    config = checkpoint.header.config as DenseNetConfig;
    if (!config || typeof config !== 'object') throw new WeightsError(`export: ${name} has no model config in its header; is it a densenet-wgsl training checkpoint?`);
    validateConfig(config);
    params = new Map([...checkpoint.tensors].filter(([n]) => !n.startsWith('optimizer.')));
    if (typeof checkpoint.header.stepsTaken === 'number') steps = checkpoint.header.stepsTaken;
  } else {
    config = source.config;
    params = await source.readParameters();
  }
  const arch = describeDenseNet(config);
  const extra = [...params.keys()].filter((n) => !arch.parameters.some((p) => p.name === n));
  if (extra.length > 0) throw new WeightsError(`export: tensors ${extra.map((n) => `"${n}"`).join(', ')} are not parameters of model "${config.name}"`);
  const tensors = torchvisionStateDict(arch, params, options.numBatchesTracked ?? steps);
  await writeSafetensors(file, tensors, { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(config), ...options.metadata });
  return { file, config, tensors: tensors.length, parameters: arch.parameters.length };
}

/**
 * The model a weights file is for: the config our exports record, else every preset (ImageNet
 * ones first) whose parameter names and shapes the file matches exactly. Undefined when none does.
 */
export function configFromWeights(contents: SafetensorsContents): DenseNetConfig | undefined {
  const recorded = contents.metadata[CONFIG_METADATA_KEY];
  if (recorded) {
    try {
      const config = JSON.parse(recorded) as DenseNetConfig;
      validateConfig(config);
      return config;
    } catch {
      // A damaged record: fall through to the presets.
    }
  }
  const candidates = Object.values(PRESETS).sort((a, b) => Number(b.stem === 'imagenet') - Number(a.stem === 'imagenet'));
  for (const c of candidates) {
    const config: DenseNetConfig = { ...c, blocks: [...c.blocks], inputShape: [...c.inputShape] };
    try {
      matchTorchvisionWeights(describeDenseNet(config), contents, '');
      return config;
    } catch {
      // not this one
    }
  }
  return undefined;
}
