// Inference with a Model: evaluate() on a data set (top-1, top-5, loss, per class, confusion),
// predict() (top-k classes with names) and features() (pooled feature vectors) on image files or
// raw arrays, and prepareImages(), the preprocessing they apply to files.

import { UsageError } from '../base/usage_error.js';
import { checkStrategy } from '../models/densenet_graph.js';
import type { MemoryStrategy } from './model.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession } from '../models/session.js';
import { decodeImageFile, toModelInput } from '../train/images.js';
import { scoreLogits, topClasses } from '../train/logits.js';
import { imagenetInput, invertsLight } from '../train/preprocessing.js';
import type { ImageDataset } from './data.js';
import { modelState, type ModelState } from './internal.js';
import type { Model } from './model.js';

/** Image files (PNG, JPEG), or raw pixel values in [0, 1] at the model's input size, image-major N·C·H·W. */
export type ImageInput = string[] | Float32Array;

export interface InferenceOptions {
  /** Images per GPU run (default 8, or the data set's size if smaller). */
  batch?: number;
  /** Default the model's. */
  memory?: MemoryStrategy;
}

/** Refuses a data set whose image shape or classes do not fit the model, naming both. */
export function checkDatasetFits(model: Model, data: ImageDataset, what: string): void {
  if (!data || typeof data.read !== 'function' || !Number.isInteger(data.size) || !Array.isArray(data.shape) || !Array.isArray(data.classNames)) {
    throw new UsageError(`${what}: expected an ImageDataset ({ size, shape, classNames, read }) or ImageArrays ({ images, labels, shape })`);
  }
  if (data.size < 1) throw new UsageError(`${what}: the data set has no images`);
  if (data.shape.join() !== model.inputShape.join()) {
    throw new UsageError(`${what}: model "${model.name}" takes images of [${model.inputShape.join(', ')}] but the data set's are [${data.shape.join(', ')}]; ` +
      'create the model with inputShape (or a preset made for these images)');
  }
  if (model.classes !== null && data.classNames.length > model.classes) {
    throw new UsageError(`${what}: the data set has ${data.classNames.length} classes but model "${model.name}" has ${model.classes}; create the model with classes: ${data.classNames.length}`);
  }
}

/** An inference session of `batch` for the model, reused while batch and strategy stay the same. */
function sessionFor(state: ModelState, batch: number, memory: MemoryStrategy): Promise<InferenceSession> | InferenceSession {
  const cached = state.inference;
  if (cached && cached.batch === batch && cached.memory === memory) return cached.session;
  cached?.session.destroy();
  state.inference = undefined;
  return InferenceSession.create(state.inner, { batch, memory }).then((session) => {
    state.inference = { session, batch, memory };
    return session;
  });
}

function batchOf(o: InferenceOptions, count: number, what: string): number {
  const batch = o.batch ?? Math.min(8, count);
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`${what}: batch must be a whole number >= 1, got ${batch}`);
  return batch;
}

/** Runs `count` model-ready images through `session` in batches (the last padded with zeros: inference rows are independent). */
async function runBatches(session: InferenceSession, perImage: number, count: number, fill: (first: number, n: number, input: Float32Array) => Promise<void> | void,
  onOutput: (output: Float32Array, first: number, n: number) => void): Promise<void> {
  const input = new Float32Array(session.batch * perImage);
  for (let first = 0; first < count; first += session.batch) {
    const n = Math.min(session.batch, count - first);
    input.fill(0);
    await fill(first, n, input);
    onOutput(await session.run(input), first, n);
  }
}

export interface Evaluation {
  count: number;
  /** Top-1 and top-5 accuracy (top-5 is 1 for models of at most 5 classes). */
  accuracy: number;
  top5Accuracy: number;
  /** Mean cross-entropy loss. */
  loss: number;
  /** Accuracy per class (NaN for a class with no images). */
  perClassAccuracy: number[];
  /** confusion[truth][predicted]. */
  confusion: number[][];
}

/** Evaluates `model` on every image of `data` (in order; read with train: false, so no augmentation). */
export async function evaluate(model: Model, data: ImageDataset, options: InferenceOptions = {}): Promise<Evaluation> {
  const state = modelState(model, 'evaluate');
  checkDatasetFits(model, data, 'evaluate');
  const k = model.classes;
  if (k === null) throw new UsageError(`evaluate: model "${model.name}" has no classifier (classes: null)`);
  const batch = batchOf(options, data.size, 'evaluate');
  const session = await sessionFor(state, batch, checkStrategy(options.memory ?? model.memory));
  const [c, h, w] = model.inputShape;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let labels: Uint32Array = new Uint32Array(0);
  let correct = 0;
  let top5 = 0;
  let lossSum = 0;
  await runBatches(session, c * h * w, data.size, async (first, n, input) => {
    const indices = Uint32Array.from({ length: n }, (_, i) => first + i);
    const got = await data.read(indices, { epoch: 0, batch: first / batch, seed: 0, train: false });
    if (got.images.length !== n * c * h * w || got.labels.length !== n) throw new UsageError(`evaluate: the data set's read() returned ${got.images.length} values and ${got.labels.length} labels for ${n} images`);
    input.set(got.images);
    labels = got.labels;
  }, (logits, _first, n) => {
    for (let i = 0; i < n; i++) {
      const label = labels[i];
      if (label >= k) throw new UsageError(`evaluate: label ${label} is not a class of model "${model.name}" (${k} classes)`);
      const { best, inTop5, loss } = scoreLogits(logits.subarray(i * k, (i + 1) * k), label);
      lossSum += loss;
      confusion[label][best]++;
      if (best === label) correct++;
      if (inTop5) top5++;
    }
  });
  const count = data.size;
  const perClassAccuracy = confusion.map((row, i) => row[i] / row.reduce((a, b) => a + b, 0));
  return { count, accuracy: correct / count, top5Accuracy: top5 / count, loss: lossSum / count, perClassAccuracy, confusion };
}

/**
 * Images as the model takes them: each file decoded and fitted to the input size by the model's
 * preprocessing ('center-crop': torchvision's evaluation transform; 'resize'), or raw arrays as
 * they are; then normalized with the model's mean and std (a light file inverted first where the
 * preprocessing says invertLight and the model is gray). Image-major N·C·H·W.
 */
export async function prepareImages(model: Model, images: ImageInput): Promise<Float32Array> {
  const [c, h, w] = model.inputShape;
  const per = c * h * w;
  const { mean, std, resize, invertLight } = model.preprocessing;
  if (images instanceof Float32Array) {
    if (images.length === 0 || images.length % per !== 0) {
      throw new UsageError(`model "${model.name}" takes images of [${c}, ${h}, ${w}] (${per} values each); got ${images.length} values`);
    }
    const out = new Float32Array(images.length);
    for (let i = 0; i < images.length; i++) {
      const ch = Math.floor((i % per) / (h * w));
      out[i] = (images[i] - mean[ch]) / std[ch];
    }
    return out;
  }
  if (!Array.isArray(images) || images.length === 0) throw new UsageError('give one or more image files (PNG or JPEG), or a Float32Array of raw pixel values');
  const out = new Float32Array(images.length * per);
  for (let i = 0; i < images.length; i++) {
    const image = await decodeImageFile(images[i]);
    const one = resize === 'center-crop' ? imagenetInput(image, [c, h, w], { mean, std })
      : toModelInput(image, { channels: c, height: h, width: w, mean, std, invert: invertsLight(image, c, invertLight) });
    out.set(one, i * per);
  }
  return out;
}

export interface Prediction {
  /** The file, or the image's index in the array. */
  input: string | number;
  /** Best first: class index, name (the model's classNames, else "class N") and softmax probability. */
  top: { index: number; name: string; probability: number }[];
}

/** The `top` (default 5) most probable classes of each image. */
export async function predict(model: Model, images: ImageInput, options: InferenceOptions & { top?: number } = {}): Promise<Prediction[]> {
  const state = modelState(model, 'predict');
  const k = model.classes;
  if (k === null) throw new UsageError(`predict: model "${model.name}" has no classifier (classes: null); use features()`);
  const top = options.top ?? 5;
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`predict: top must be a whole number >= 1, got ${top}`);
  const input = await prepareImages(model, images);
  const per = model.inputShape[0] * model.inputShape[1] * model.inputShape[2];
  const count = input.length / per;
  const session = await sessionFor(state, batchOf(options, count, 'predict'), checkStrategy(options.memory ?? model.memory));
  const names = model.classNames;
  const out: Prediction[] = [];
  await runBatches(session, per, count, (first, n, batchInput) => { batchInput.set(input.subarray(first * per, (first + n) * per)); }, (logits, first, n) => {
    for (let i = 0; i < n; i++) {
      out.push({
        input: Array.isArray(images) ? images[first + i] : first + i,
        top: topClasses(logits.subarray(i * k, (i + 1) * k), top).map((t) => ({ ...t, name: names?.[t.index] ?? `class ${t.index}` })),
      });
    }
  });
  return out;
}

/**
 * Pooled feature vectors (norm5 → ReLU → global average pool, before the classifier) of each
 * image: `features` is [images, dims] row-major. The model's weights are copied into a
 * classifier-less network for the call, then freed.
 */
export async function features(model: Model, images: ImageInput, options: InferenceOptions = {}): Promise<{ features: Float32Array; dims: number }> {
  const state = modelState(model, 'features');
  const input = await prepareImages(model, images);
  const per = model.inputShape[0] * model.inputShape[1] * model.inputShape[2];
  const count = input.length / per;
  const batch = batchOf(options, count, 'features');
  const headless = DenseNetModel.create(state.gpu, { ...state.inner.config, blocks: [...state.inner.config.blocks], inputShape: [...state.inner.config.inputShape], classes: null }, 0);
  let session: InferenceSession | undefined;
  try {
    const weights = await state.inner.readParameters();
    headless.writeParameters(new Map([...weights].filter(([name]) => !name.startsWith('classifier.'))));
    session = await InferenceSession.create(headless, { batch, memory: checkStrategy(options.memory ?? model.memory) });
    const dims = headless.arch.features;
    const out = new Float32Array(count * dims);
    await runBatches(session, per, count, (first, n, batchInput) => { batchInput.set(input.subarray(first * per, (first + n) * per)); }, (output, first, n) => {
      // The session gives [features, batch] channel-major.
      for (let i = 0; i < n; i++) for (let f = 0; f < dims; f++) out[(first + i) * dims + f] = output[f * batch + i];
    });
    return { features: out, dims };
  } finally {
    session?.destroy();
    headless.close();
  }
}
