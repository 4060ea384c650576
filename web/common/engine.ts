// The engine as the pages use it: the device from navigator.gpu, a model from a file's bytes (a
// training checkpoint or an exported .safetensors), and the adapter line every page shows.
// Everything here is the core of src/, bundled for the browser (package.json "browser" swaps the host files).

import { openDevice, type Gpu } from '../../src/gpu/device.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { configFromWeights, matchTorchvisionWeights } from '../../src/io/torchvision.js';
import { describeDenseNet } from '../../src/models/architecture.js';
import type { DenseNetConfig } from '../../src/models/densenet_config.js';
import { DenseNetModel } from '../../src/models/model.js';
import { parseCheckpoint } from '../../src/train/checkpoint.js';

export type { Gpu };

/** The device, or the sentence to show instead (no WebGPU, no adapter, a refused device). */
export async function openPageDevice(): Promise<{ gpu: Gpu } | { problem: string }> {
  try {
    return { gpu: await openDevice() };
  } catch (e) {
    return { problem: (e as Error).message.replace(/^gpu: /, '') };
  }
}

/** "SwiftShader Device (software), vendor google" from the profile the engine built. */
export function adapterLine(gpu: Gpu): string {
  const p = gpu.profile;
  // Browsers often leave the description empty: vendor and architecture name the adapter then.
  const name = p.name !== 'unknown adapter' ? p.name : [p.vendor, p.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const vendor = p.vendor ? `, vendor ${p.vendor}` : '';
  const sub = p.hasSubgroups ? ', subgroups' : '';
  return `${name} (${p.class}${vendor}${sub}; max binding ${(p.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB)`;
}

/** Weights read from a file, ready for DenseNetModel.writeParameters. */
export interface LoadedWeights {
  config: DenseNetConfig;
  /** Parameters and running statistics by our (torchvision) names; no optimizer state. */
  params: Map<string, Float32Array>;
  /** Input normalization the model was trained with, when the file records it. */
  mean?: number[];
  std?: number[];
  /** Best test accuracy recorded in a training checkpoint. */
  accuracy?: number;
  /** What kind of file it was, for the page. */
  kind: 'checkpoint' | 'safetensors';
}

const CHECKPOINT_MAGIC = new TextEncoder().encode('DNWGSLCK');

/** A checkpoint written by `train` or a safetensors file (`export`, or torchvision names with a config): by its first bytes, not its name. */
export function readWeights(bytes: Uint8Array, name: string): LoadedWeights {
  if (CHECKPOINT_MAGIC.every((b, i) => bytes[i] === b)) {
    const c = parseCheckpoint(bytes, name);
    const config = c.header.config as DenseNetConfig | undefined;
    if (!config || typeof config !== 'object') throw new Error(`${name} has no model config in its header; is it a densenet-wgsl training checkpoint?`);
    const params = new Map([...c.tensors].filter(([n]) => !n.startsWith('optimizer.')));
    const progress = c.header.progress as { bestTestAccuracy?: number } | undefined;
    return { config, params, mean: c.header.mean as number[], std: c.header.std as number[], accuracy: progress?.bestTestAccuracy, kind: 'checkpoint' };
  }
  const contents = parseSafetensors(bytes, name);
  const config = configFromWeights(contents);
  if (!config) throw new Error(`${name}: its tensors fit no model this engine knows (a file from \`densenet-wgsl export\` records its model)`);
  const { values } = matchTorchvisionWeights(describeDenseNet(config), contents, name);
  const meta = contents.metadata;
  const numbers = (key: string) => (meta[key] ? (JSON.parse(meta[key]) as number[]) : undefined);
  return { config, params: values, mean: numbers('densenet_wgsl.mean'), std: numbers('densenet_wgsl.std'), kind: 'safetensors' };
}

/** A model on `gpu` holding `weights`; the caller closes it. */
export function modelFromWeights(gpu: Gpu, weights: LoadedWeights): DenseNetModel {
  const model = DenseNetModel.create(gpu, weights.config, 0);
  try {
    model.writeParameters(weights.params);
  } catch (e) {
    model.close();
    throw e;
  }
  return model;
}

/** Shows `text` as the page's blocking message (no WebGPU, a bad file): never a blank page. */
export function showProblem(text: string, hint = ''): void {
  const box = document.getElementById('problem')!;
  box.hidden = false;
  box.textContent = text;
  if (hint) {
    const p = document.createElement('p');
    p.textContent = hint;
    box.append(p);
  }
}

/** Sets the adapter line (or the reason there is none) at the top of a page. */
export function showAdapter(text: string): void {
  document.getElementById('adapter')!.textContent = text;
}

/** Opens the device and shows the adapter, or shows the problem and returns undefined. */
export async function startPage(): Promise<Gpu | undefined> {
  const opened = await openPageDevice();
  if ('problem' in opened) {
    showAdapter('no WebGPU adapter');
    showProblem(`WebGPU is not available: ${opened.problem}`,
      'This page runs a neural network on your GPU through WebGPU: recent Chrome and Edge have it, as do Safari 26 and Firefox 141+ on Windows; ' +
      'the page must come over https or from localhost.');
    return undefined;
  }
  showAdapter(`adapter: ${adapterLine(opened.gpu)}`);
  return opened.gpu;
}
