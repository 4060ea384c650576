// A training checkpoint as a model to run: its weights on a device, its class names and the
// preprocessing it records (older checkpoints: what they were trained with), and
// `predict --checkpoint`, which prints each image's top classes by name.

import { openDevice } from '../gpu/device.js';
import type { DenseNetConfig } from '../models/densenet_config.js';
import { DenseNetModel } from '../models/model.js';
import { InferenceSession } from '../models/session.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { decodeImageFile } from '../train/images.js';
import { evalInput, preprocessingOf, type Preprocessing } from '../train/preprocessing.js';
import { topClasses } from '../train/logits.js';
import { CHECKPOINT_FORMAT } from '../train/trainer.js';
import { UsageError, type ParsedFlags } from './args.js';
import { tunedAdapterOptions } from './tune.js';

/** The class names a checkpoint records (every training run records them), else "class i". */
export function classNamesOf(header: Record<string, unknown>, classes: number): string[] {
  const names = header.classNames;
  if (Array.isArray(names) && names.length === classes) return names.map(String);
  return Array.from({ length: classes }, (_, i) => `class ${i}`);
}

/** The checkpoint's model on a device opened from the flags; `batch`: what --tune tunes the inference graph for. */
export async function modelFromCheckpoint(path: string, flags: ParsedFlags, batch: number) {
  const checkpoint = await readCheckpoint(path);
  if (checkpoint.header.format !== CHECKPOINT_FORMAT) throw new UsageError(`${path} is not a densenet-wgsl training checkpoint`);
  const config = checkpoint.header.config as DenseNetConfig;
  const preprocessing: Preprocessing = preprocessingOf(checkpoint.header, config);
  const classNames = classNamesOf(checkpoint.header, config.classes ?? 0);
  const gpu = await openDevice(tunedAdapterOptions(flags, () => [{ config, batch, memory: 'fused', training: false }]));
  const model = DenseNetModel.create(gpu, config, 0);
  try {
    model.writeParameters(new Map([...checkpoint.tensors].filter(([n]) => !n.startsWith('optimizer.'))));
  } catch (e) {
    model.close(); gpu.close();
    throw new UsageError(`${path}: its weights do not fit model "${config.name}": ${(e as Error).message}`);
  }
  return { gpu, model, header: checkpoint.header, config, preprocessing, classNames };
}

export async function runPredict(flags: ParsedFlags, files: string[], log: (line: string) => void = console.log): Promise<void> {
  const path = flags.checkpoint as string | undefined;
  if (!path) throw new UsageError('predict: --checkpoint FILE is required');
  if (files.length === 0) throw new UsageError('predict: give one or more image files (PNG, JPEG or WebP)');
  const decoded = await Promise.all(files.map((f) => decodeImageFile(f)));
  const { gpu, model, config, preprocessing, classNames } = await modelFromCheckpoint(path, flags, files.length);
  try {
    const [c, h, w] = config.inputShape;
    const plane = c * h * w;
    const session = await InferenceSession.create(model, { batch: files.length });
    const input = new Float32Array(files.length * plane);
    decoded.forEach((image, i) => {
      const x = evalInput(image, preprocessing);
      for (let ch = 0; ch < c; ch++) {
        for (let k = ch * h * w; k < (ch + 1) * h * w; k++) x[k] = (x[k] - preprocessing.mean[ch]) / preprocessing.std[ch];
      }
      input.set(x, i * plane);
    });
    const logits = await session.run(input);
    session.destroy();
    const k = config.classes!;
    files.forEach((file, i) => {
      const top = topClasses(logits.subarray(i * k, (i + 1) * k), 5);
      log(`${file}: ${top.map((t) => `${classNames[t.index]} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`);
    });
  } finally {
    model.close();
    gpu.close();
  }
}
