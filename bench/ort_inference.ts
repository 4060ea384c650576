// ONNX Runtime (onnxruntime-node, CPU execution provider) on the same network as the inference
// benchmark: the model's parameters exported by src/io/onnx (the file `export --out x.onnx`
// writes), run with every core (intraOpNumThreads = os.availableParallelism()) and ORT's full
// graph optimizations, as a user without a GPU would run it. onnxruntime-node is a dev dependency:
// where it is absent (e.g. the GPU pack) the benchmark says so and goes on without this side.

import { availableParallelism } from 'node:os';
import type { DenseNetConfig } from '../src/models/index.js';
import { encodeDenseNetOnnx } from '../src/io/onnx/densenet_onnx.js';

export interface OrtInferenceModel {
  /** NCHW images (host) → outputs (host), [N, classes] row-major (or [N, features]). */
  run(imagesNchw: Float32Array, batch: number): Promise<Float32Array>;
  dispose(): Promise<void>;
  /** "onnxruntime-node 1.30.0, CPU execution provider, 16 threads" */
  description: string;
}

export async function createOrtInference(config: DenseNetConfig, params: Map<string, Float32Array>): Promise<OrtInferenceModel> {
  const ort = await import('onnxruntime-node');
  const threads = availableParallelism();
  const session = await ort.InferenceSession.create(encodeDenseNetOnnx(config, params), {
    executionProviders: ['cpu'], intraOpNumThreads: threads, graphOptimizationLevel: 'all',
  });
  const [c, h, w] = config.inputShape;
  const output = session.outputNames[0];
  return {
    description: `onnxruntime-node ${ort.env.versions.common}, CPU execution provider, ${threads} thread${threads === 1 ? '' : 's'} (intraOpNumThreads = all cores)`,
    async run(images, batch) {
      const results = await session.run({ input: new ort.Tensor('float32', images, [batch, c, h, w]) });
      return results[output].data as Float32Array;
    },
    dispose: () => session.release(),
  };
}
