// Shared by the ONNX tests: random weights that exercise every parameter (BN statistics far from
// the identity, so a swapped γ/β or mean/var shows), ONNX Runtime on a file, the engine on the GPU,
// and the error measure both compare with.

import * as ort from 'onnxruntime-node';
import { describeDenseNet, size, type DenseNetConfig } from '../src/models/index.js';
import { DenseNetModel } from '../src/models/model.js';
import { InferenceSession } from '../src/models/session.js';
import type { Gpu } from '../src/gpu/device.js';
import { seededRandom } from './helpers.js';

/**
 * Every parameter of `config`, seeded: conv and linear weights uniform with He variance 2/fanIn
 * (so activations keep their scale through deep blocks), BN γ ∈ [0.5, 1.5], β ∈ [−0.2, 0.2],
 * running mean ∈ [−0.2, 0.2], running var ∈ [0.5, 1.5], classifier bias ∈ [−0.1, 0.1].
 */
export function randomDenseNetParams(config: DenseNetConfig, seed: number): Map<string, Float32Array> {
  const rng = seededRandom(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rng();
  const out = new Map<string, Float32Array>();
  for (const p of describeDenseNet(config).parameters) {
    const n = size(p.shape);
    const fanIn = n / p.shape[0];
    const bound = Math.sqrt(6 / fanIn);
    const draw: Record<typeof p.kind, () => number> = {
      'conv': () => uniform(-bound, bound), 'linear-weight': () => uniform(-bound, bound), 'linear-bias': () => uniform(-0.1, 0.1),
      'bn-weight': () => uniform(0.5, 1.5), 'bn-bias': () => uniform(-0.2, 0.2), 'bn-running-mean': () => uniform(-0.2, 0.2), 'bn-running-var': () => uniform(0.5, 1.5),
    };
    out.set(p.name, Float32Array.from({ length: n }, draw[p.kind]));
  }
  return out;
}

/** Seeded images, values in [−2, 2) (about what a normalized image spans). */
export function randomInput(n: number, seed: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: n }, () => rng() * 4 - 2);
}

/** The engine's output for `images` on the GPU: logits [N, classes] row-major, or features [features, N] channel-major. */
export async function engineOutput(gpu: Gpu, config: DenseNetConfig, params: Map<string, Float32Array>, images: Float32Array, batch: number): Promise<Float32Array> {
  const model = DenseNetModel.create(gpu, config, 0);
  let session: InferenceSession | undefined;
  try {
    model.writeParameters(params);
    session = await InferenceSession.create(model, { batch });
    return await session.run(images);
  } finally {
    session?.destroy();
    model.close();
  }
}

/** ONNX Runtime (CPU execution provider) on an .onnx file or bytes: every output by name. */
export async function ortRun(model: string | Uint8Array, images: Float32Array, dims: number[], options: ort.InferenceSession.SessionOptions = {}):
  Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  try {
    const results = await session.run({ input: new ort.Tensor('float32', images, dims) });
    return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, { data: t.data as Float32Array, dims: t.dims }]));
  } finally {
    await session.release();
  }
}

export { maxRelativeError } from '../bench/rel_diff.js';
