// What the public handles (Device, Model) hold inside, kept out of their declarations: the
// published .d.ts files then name no WebGPU or engine-internal types, so a user's project
// type-checks against them without @webgpu/types. Only src/api imports this file.

import type { Gpu } from '../gpu/device.js';
import type { DenseNetModel } from '../models/model.js';
import type { InferenceSession } from '../models/session.js';
import type { MemoryStrategy } from './model.js';

export interface DeviceState { gpu: Gpu }

export interface ModelState {
  gpu: Gpu;
  inner: DenseNetModel;
  /** The last inference session built (predict/evaluate reuse it while batch and strategy match). */
  inference?: { session: InferenceSession; batch: number; memory: MemoryStrategy };
  closed: boolean;
}

const devices = new WeakMap<object, DeviceState>();
const models = new WeakMap<object, ModelState>();

export function attachDevice(handle: object, state: DeviceState): void { devices.set(handle, state); }
export function attachModel(handle: object, state: ModelState): void { models.set(handle, state); }

/** The open device behind a Device handle; a closed or foreign object is refused by name. */
export function gpuOf(device: object, what = 'device'): Gpu {
  const state = devices.get(device);
  if (!state) throw new TypeError(`${what}: expected a Device from openDevice()`);
  return state.gpu;
}

/** The live model behind a Model handle. */
export function modelState(model: object, what = 'model'): ModelState {
  const state = models.get(model);
  if (!state) throw new TypeError(`${what}: expected a Model from createModel() or loadModel()`);
  if (state.closed) throw new Error(`${what}: the model was closed`);
  return state;
}
