// ImageNet DenseNets from torchvision weights: `predict --model NAME --weights FILE IMAGE...`
// (top-5 ImageNet classes) and `features` (pooled feature vectors to .npy or .json); `export`
// lives in export.ts. `predict --checkpoint` stays the
// training-checkpoint predictor of train.ts; runPredictDispatch picks one by the flags.
//
// Preprocessing is torchvision's ImageNet evaluation transform: RGB, resize the shorter side to 256
// (antialiased bilinear, as PIL), centre-crop 224, normalize with the ImageNet mean and std. For
// models with another input size the resize keeps the 256/224 ratio. Weights written by
// `export --checkpoint` (or the library's saveWeights) record the preprocessing and class names
// their model was trained with in the safetensors metadata: those are used instead.

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { writeFileAtomic } from '../base/atomic_file.js';
import { formatAdapter, openDevice, type Gpu } from '../gpu/device.js';
import type { MemoryReport } from '../gpu/arena.js';
import { denseNetConfig, describeDenseNet, preset, validateConfig, type DenseNetConfig } from '../models/index.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession } from '../models/session.js';
import { decodeImageFile, toModelInput } from '../train/images.js';
import { topClasses } from '../train/logits.js';
import { imagenetInput, invertsLight } from '../train/preprocessing.js';
import { IMAGENET_CLASSES } from '../io/imagenet_classes.js';
import { encodeNpyFloat32 } from '../io/npy.js';
import { readSafetensors, SafetensorsError, type SafetensorsContents } from '../io/safetensors.js';
import { configFromWeights, loadTorchvisionWeights, WeightsError, type LoadReport } from '../io/torchvision.js';
import { recordedClassNames, recordedPreprocessing, type FilePreprocessing } from '../io/weights_metadata.js';
import { ADAPTER_FLAGS, UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { TUNE_FLAGS, tunedAdapterOptions } from './tune.js';
import { checkOutFile, refuseWrongKind } from './files.js';
import { runPredict } from './checkpoint_model.js';

// The transform lives in src/train/preprocessing.ts (eval, folder datasets and the library API use it too); re-exported for this file's users.
export { IMAGENET_MEAN, IMAGENET_STD, imagenetInput } from '../train/preprocessing.js';

/** One decoded image as model input (planar, normalized) by `p`; ImageNet's transform when `p` is undefined. */
function fileInput(image: Parameters<typeof imagenetInput>[0], shape: readonly [number, number, number], p: FilePreprocessing | undefined): Float32Array {
  if (!p || p.resize === 'center-crop') return imagenetInput(image, shape, p);
  const [c, h, w] = shape;
  return toModelInput(image, { channels: c, height: h, width: w, mean: p.mean, std: p.std, invert: invertsLight(image, c, p.invertLight) });
}

export interface RunStats {
  images: number;
  batch: number;
  /** From the first image decoded to the last result read back. */
  seconds: number;
  /** Time inside session.run (upload, GPU, read-back). */
  modelSeconds: number;
  imagesPerSec: number;
  modelImagesPerSec: number;
  /** gpu.arena.peakBytes at the end (parameters + the inference session's buffers). */
  peakGpuBytes: number;
  memory: MemoryReport;
  load: LoadReport;
}

export interface ImagenetRunOptions {
  gpu: Gpu;
  config: DenseNetConfig;
  weights: string | SafetensorsContents;
  /** Name of the weights in messages when `weights` is already read. */
  weightsName?: string;
  files: string[];
  /** Images per GPU run (default 8; never more than the number of files). */
  batch?: number;
  /** How files become input (default ImageNet's evaluation transform). */
  preprocessing?: FilePreprocessing;
  memory?: 'naive' | 'shared' | 'recompute' | 'fused';
}

/** Builds the model, loads the weights, runs every image in batches; `onBatch` gets each batch's outputs. */
async function runModel(o: ImagenetRunOptions, onBatch: (output: Float32Array, first: number, count: number, batch: number) => void): Promise<RunStats> {
  if (o.files.length === 0) throw new UsageError('give one or more image files (PNG, JPEG or WebP)');
  const batch = Math.min(o.batch ?? 8, o.files.length);
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch must be a whole number >= 1, got ${o.batch}`);
  const model = DenseNetModel.create(o.gpu, o.config, 0);
  let session: InferenceSession | undefined;
  try {
    const load = await loadTorchvisionWeights(model, o.weights, { file: o.weightsName, ignore: o.config.classes === null ? (n) => n.startsWith('classifier.') : undefined });
    session = await InferenceSession.create(model, { batch, memory: o.memory });
    const [c, h, w] = o.config.inputShape;
    const perImage = c * h * w;
    const started = performance.now();
    let modelMs = 0;
    for (let first = 0; first < o.files.length; first += batch) {
      const count = Math.min(batch, o.files.length - first);
      const input = new Float32Array(batch * perImage); // a short last batch is padded with zeros (BN uses running statistics: rows are independent)
      for (let i = 0; i < count; i++) input.set(fileInput(await decodeImageFile(o.files[first + i]), o.config.inputShape, o.preprocessing), i * perImage);
      const t0 = performance.now();
      const output = await session.run(input);
      modelMs += performance.now() - t0;
      onBatch(output, first, count, batch);
    }
    const seconds = (performance.now() - started) / 1000;
    const memory = o.gpu.arena.report();
    return {
      images: o.files.length, batch, seconds, modelSeconds: modelMs / 1000, imagesPerSec: o.files.length / seconds,
      modelImagesPerSec: o.files.length / (modelMs / 1000), peakGpuBytes: memory.peakBytes, memory, load,
    };
  } finally {
    session?.destroy();
    model.close();
  }
}

export interface Prediction { file: string; top: { index: number; name: string; probability: number }[] }

/** Softmax top-k of each image with ImageNet class names (indices where the model has other than 1000 classes). */
export async function predictImagenet(o: ImagenetRunOptions & { top?: number; classNames?: readonly string[] }): Promise<{ predictions: Prediction[]; stats: RunStats }> {
  const k = o.config.classes;
  if (k === null) throw new UsageError('predict needs a classifier; this config has classes: null');
  const names = o.classNames ?? (k === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : undefined);
  const top = Math.min(o.top ?? 5, k);
  const predictions: Prediction[] = [];
  const stats = await runModel(o, (logits, first, count) => {
    for (let i = 0; i < count; i++) {
      const best = topClasses(logits.subarray(i * k, (i + 1) * k), top);
      predictions.push({ file: o.files[first + i], top: best.map((t) => ({ ...t, name: names?.[t.index] ?? `class ${t.index}` })) });
    }
  });
  return { predictions, stats };
}

/** Pooled features (norm5 → ReLU → global average pool) of every image: [images, features] row-major. */
export async function extractImagenetFeatures(o: ImagenetRunOptions): Promise<{ features: Float32Array; dims: number; stats: RunStats }> {
  const config: DenseNetConfig = { ...o.config, blocks: [...o.config.blocks], inputShape: [...o.config.inputShape], classes: null };
  const dims = describeDenseNet(config).features;
  const features = new Float32Array(o.files.length * dims);
  const stats = await runModel({ ...o, config }, (output, first, count, batch) => {
    // The session gives [features, batch] channel-major.
    for (let i = 0; i < count; i++) for (let f = 0; f < dims; f++) features[(first + i) * dims + f] = output[f * batch + i];
  });
  return { features, dims, stats };
}

// ---------------------------------------------------------------------------------------------
// Command line.

export const PREDICT_FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'a checkpoint written by train (its own preprocessing and classes)' },
  { name: 'weights', type: 'string', help: 'torchvision-named .safetensors weights (ImageNet preprocessing and classes)' },
  { name: 'model', type: 'string', help: 'with --weights: preset (densenet121/169/201/161) or JSON config (default: from the weights)' },
  { name: 'batch', type: 'number', help: 'with --weights: images per GPU run', default: 8 },
  { name: 'top', type: 'number', help: 'with --weights: classes shown per image', default: 5 },
  ...ADAPTER_FLAGS,
  ...TUNE_FLAGS,
];

export const FEATURES_FLAGS: FlagSpec[] = [
  { name: 'weights', type: 'string', help: 'torchvision-named .safetensors weights' },
  { name: 'model', type: 'string', help: 'preset (densenet121/169/201/161) or JSON config (default: from the weights)' },
  { name: 'out', type: 'string', help: 'output file: .npy (float32, shape (images, features)) or .json' },
  { name: 'overwrite', type: 'boolean', help: 'replace an existing --out file' },
  { name: 'batch', type: 'number', help: 'images per GPU run', default: 8 },
  ...ADAPTER_FLAGS,
  ...TUNE_FLAGS,
];

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A preset name or a JSON config file. */
export async function configFromFlag(value: string, command: string): Promise<DenseNetConfig> {
  if (!value.endsWith('.json')) {
    try { return preset(value); } catch (e) { throw new UsageError(`${command}: ${(e as Error).message}`); }
  }
  let parsed: unknown;
  try { parsed = JSON.parse(await readFile(value, 'utf8')); } catch (e) { throw new UsageError(`${command}: cannot read model config ${value}: ${(e as Error).message}`); }
  try {
    const config = denseNetConfig(parsed as Partial<DenseNetConfig>);
    validateConfig(config);
    return config;
  } catch (e) {
    throw new UsageError(`${command}: model config ${value}: ${(e as Error).message}`);
  }
}

/** Errors about the user's files print as one clean line (no stack). */
export function asUsage<T>(command: string, f: () => Promise<T>): Promise<T> {
  return f().catch((e: unknown) => {
    if (e instanceof SafetensorsError || e instanceof WeightsError) throw new UsageError(`${command}: ${e.message}`);
    throw e;
  });
}

export async function modelAndWeights(flags: ParsedFlags, command: string): Promise<{ config: DenseNetConfig; contents: SafetensorsContents; weights: string }> {
  const weights = flags.weights as string | undefined;
  if (!weights) throw new UsageError(`${command}: --weights FILE.safetensors is required`);
  await refuseWrongKind(command, 'weights', weights, {
    checkpoint: command === 'predict' ? '--checkpoint (a model trained here)' : `"densenet-wgsl export --checkpoint ${weights} --out FILE.safetensors" first`,
  });
  const contents = await asUsage(command, () => readSafetensors(weights));
  let config: DenseNetConfig | undefined;
  if (flags.model !== undefined) config = await configFromFlag(String(flags.model), command);
  else config = configFromWeights(contents);
  if (!config) throw new UsageError(`${command}: ${weights} matches no preset; give --model (a preset name or a JSON config file)`);
  return { config, contents, weights };
}

function statsLine(s: RunStats): string {
  const converted = Object.entries(s.load.converted).map(([d, n]) => `${n} ${d}`).join(', ');
  return `${s.images} image${s.images === 1 ? '' : 's'} in ${s.seconds.toFixed(2)} s: ${s.imagesPerSec.toFixed(2)} images/s ` +
    `(model alone ${s.modelImagesPerSec.toFixed(2)} images/s at batch ${s.batch}); peak GPU memory ${mib(s.peakGpuBytes)} ` +
    `(parameters ${mib(s.memory.byCategory.parameters.peakBytes)}, activations ${mib(s.memory.byCategory.activations.peakBytes)}, ` +
    `gradients ${mib(s.memory.byCategory.gradients.peakBytes)}, optimizer ${mib(s.memory.byCategory.optimizer.peakBytes)})` +
    (converted ? `; weights converted to float32: ${converted}` : '');
}

function preprocessingLine(weights: string, p: FilePreprocessing, classNames: string[] | undefined): string {
  const fmt = (v: number[]) => `[${v.map((x) => x.toFixed(4)).join(', ')}]`;
  return `preprocessing recorded in ${weights}: ${p.resize === 'center-crop' ? 'resize the shorter side and centre-crop' : 'resize to the input size'}, ` +
    `mean ${fmt(p.mean)}, std ${fmt(p.std)}${p.invertLight ? ', a light image inverted (the model learned light strokes on black)' : ''}${classNames ? `; classes ${classNames.join(', ')}` : ''}`;
}

/**
 * Runs `f` on `device` if given (left open), else on a device opened from the adapter flags (with
 * the tuning table; --tune tunes `config`'s inference graph at the batch used) and closed after.
 */
async function withGpu<T>(flags: ParsedFlags, device: Gpu | undefined, config: DenseNetConfig, files: number, f: (gpu: Gpu) => Promise<T>): Promise<T> {
  if (device) return f(device);
  const batch = Math.max(1, Math.min(Number(flags.batch ?? 8), files));
  const gpu = await openDevice(tunedAdapterOptions(flags, () => [{ config, batch, memory: 'fused', training: false }]));
  try { return await f(gpu); } finally { gpu.close(); }
}

export async function runImagenetPredict(flags: ParsedFlags, files: string[], log: (line: string) => void = console.log, device?: Gpu): Promise<void> {
  const top = flags.top as number;
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`predict: --top must be a whole number >= 1, got ${top}`);
  if (files.length === 0) throw new UsageError('predict: give one or more image files (PNG, JPEG or WebP)');
  const { config, contents, weights } = await modelAndWeights(flags, 'predict');
  await withGpu(flags, device, config, files.length, async (gpu) => {
    log(`${formatAdapter(gpu.adapter)}\nmodel ${config.name} (input [${config.inputShape.join(', ')}], ${config.classes} classes) with ${weights}`);
    const preprocessing = recordedPreprocessing(contents.metadata, config);
    const classNames = recordedClassNames(contents.metadata, config.classes);
    if (preprocessing) log(preprocessingLine(weights, preprocessing, classNames));
    const { predictions, stats } = await asUsage('predict', () => predictImagenet({ gpu, config, weights: contents, weightsName: weights, files, batch: flags.batch as number, top, preprocessing, classNames }));
    for (const p of predictions) log(`${p.file}: ${p.top.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`);
    log(statsLine(stats));
  });
}

export async function runFeatures(flags: ParsedFlags, files: string[], log: (line: string) => void = console.log, device?: Gpu): Promise<void> {
  const out = flags.out as string | undefined;
  if (!out) throw new UsageError('features: --out FILE.npy or FILE.json is required');
  await checkOutFile('features', out, { extensions: ['.npy', '.json'], format: 'float32 .npy or .json feature vectors', overwrite: flags.overwrite === true });
  const kind = extname(out).toLowerCase();
  if (files.length === 0) throw new UsageError('features: give one or more image files (PNG, JPEG or WebP)');
  const { config, contents, weights } = await modelAndWeights(flags, 'features');
  await withGpu(flags, device, config, files.length, async (gpu) => {
    log(`${formatAdapter(gpu.adapter)}\nmodel ${config.name} as a feature extractor with ${weights}`);
    const preprocessing = recordedPreprocessing(contents.metadata, config);
    if (preprocessing) log(preprocessingLine(weights, preprocessing, undefined));
    const { features, dims, stats } = await asUsage('features', () => extractImagenetFeatures({ gpu, config, weights: contents, weightsName: weights, files, batch: flags.batch as number, preprocessing }));
    if (kind === '.npy') {
      await writeFileAtomic(out, [encodeNpyFloat32(features, [files.length, dims])]);
      log(`wrote ${out}: float32 (${files.length}, ${dims}); row i is image i in the order given:`);
      files.forEach((f, i) => log(`  ${i} ${f}`));
    } else {
      const rows = files.map((file, i) => ({ file, features: Array.from(features.subarray(i * dims, (i + 1) * dims)) }));
      await writeFileAtomic(out, [new TextEncoder().encode(JSON.stringify({ model: config.name, weights, shape: [files.length, dims], images: rows }) + '\n')]);
      log(`wrote ${out}: ${files.length} feature vectors of ${dims} values`);
    }
    log(statsLine(stats));
  });
}

/** `predict`: --weights → ImageNet weights (this file); --checkpoint → a training checkpoint (train.ts). */
export async function runPredictDispatch(flags: ParsedFlags, files: string[], given: Set<string>): Promise<void> {
  if (given.has('checkpoint') && given.has('weights')) throw new UsageError('predict: give --checkpoint or --weights, not both');
  const imagenetOnly = ['model', 'batch', 'top'].filter((f) => given.has(f));
  if (given.has('checkpoint')) {
    if (imagenetOnly.length > 0) {
      throw new UsageError(`predict: ${imagenetOnly.map((f) => `--${f}`).join(', ')} go with --weights, not --checkpoint (a checkpoint knows its model)`);
    }
    await refuseWrongKind('predict', 'checkpoint', flags.checkpoint as string, { safetensors: '--weights (torchvision-named weights)' });
    return runPredict(flags, files);
  }
  if (given.has('weights')) return runImagenetPredict(flags, files);
  throw new UsageError('predict: give --checkpoint FILE (a model trained here) or --weights FILE.safetensors [--model densenet121] (torchvision ImageNet weights)');
}
