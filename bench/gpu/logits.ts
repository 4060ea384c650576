// The GPU harness's oracle step: runs our engine on torchvision-named weights (.safetensors) and a
// fixed input batch (.npy, float32 N×C×H×W) and writes the logits as .npy (float32 N×classes), for
// bench/gpu/compare_logits.py to check against PyTorch's. Built to dist/gpu_logits.js by
// bench/gpu/build.mjs; `node dist/gpu_logits.js --help` lists the flags.

import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { formatAdapter, openDevice } from '../../src/gpu/device.js';
import { describeDenseNet, preset, type DenseNetConfig } from '../../src/models/index.js';
import { DenseNetModel } from '../../src/models/model.js';
import { InferenceSession } from '../../src/models/session.js';
import { MEMORY_STRATEGIES, type MemoryStrategy } from '../../src/models/densenet_graph.js';
import { decodeNpyFloat32, encodeNpyFloat32 } from '../../src/io/npy.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { configFromWeights, loadTorchvisionWeights } from '../../src/io/torchvision.js';

const USAGE = `usage: node dist/gpu_logits.js --weights W.safetensors --input X.npy --out LOGITS.npy [--model NAME] [--memory S] [--backend B] [--adapter NAME] [--overwrite]
  --weights   torchvision-named weights (PyTorch: safetensors.torch.save_file(model.state_dict(), W))
  --input     float32 .npy of shape (N, C, H, W), already normalized
  --out       float32 .npy of shape (N, classes) written here (refused if it exists, unless --overwrite)
  --model     preset name (default: the model the weights match)
  --memory    naive, shared, recompute or fused (default fused)`;

/** A one-line error for the user: printed without a stack, exit code 2. */
class HarnessUsageError extends Error {}

interface LogitsOptions { weights: string; input: string; out: string; model?: string; memory: MemoryStrategy; backend?: string; adapter?: string; overwrite: boolean }

function parseArgs(argv: string[]): LogitsOptions {
  const values: Record<string, string> = {};
  let overwrite = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    if (a === '--overwrite') { overwrite = true; continue; }
    const name = a.startsWith('--') ? a.slice(2) : '';
    if (!['weights', 'input', 'out', 'model', 'memory', 'backend', 'adapter'].includes(name)) throw new HarnessUsageError(`unknown argument "${a}"\n${USAGE}`);
    if (i + 1 >= argv.length) throw new HarnessUsageError(`--${name} needs a value\n${USAGE}`);
    values[name] = argv[++i];
  }
  for (const required of ['weights', 'input', 'out']) if (!values[required]) throw new HarnessUsageError(`--${required} is required\n${USAGE}`);
  const memory = (values.memory ?? 'fused') as MemoryStrategy;
  if (!MEMORY_STRATEGIES.includes(memory)) throw new HarnessUsageError(`--memory must be one of ${MEMORY_STRATEGIES.join(', ')}, got "${memory}"`);
  return { weights: values.weights, input: values.input, out: values.out, model: values.model, memory, backend: values.backend, adapter: values.adapter, overwrite };
}

/** Our logits for `images` ([n, c, h, w] row-major) with the weights loaded: [n, classes] row-major. */
async function engineLogits(o: LogitsOptions, config: DenseNetConfig, weights: Awaited<ReturnType<typeof readSafetensors>>, images: Float32Array, n: number, log: (s: string) => void): Promise<Float32Array> {
  const gpu = await openDevice({ backend: o.backend ?? process.env.DENSENET_WGSL_BACKEND, adapter: o.adapter ?? process.env.DENSENET_WGSL_ADAPTER });
  try {
    log(formatAdapter(gpu.adapter));
    const model = DenseNetModel.create(gpu, config, 0);
    let session: InferenceSession | undefined;
    try {
      const report = await loadTorchvisionWeights(model, weights, { file: o.weights });
      log(`loaded ${report.loaded} tensors from ${o.weights} (skipped ${report.skipped.length}: num_batches_tracked)`);
      session = await InferenceSession.create(model, { batch: n, memory: o.memory });
      const t0 = performance.now();
      const logits = await session.run(images);
      log(`ran ${config.name} on ${n} image(s) in ${((performance.now() - t0) / 1000).toFixed(2)} s (first run: pipelines compiled), memory ${o.memory}`);
      return logits;
    } finally {
      session?.destroy();
      model.close();
    }
  } finally {
    gpu.close();
  }
}

async function main(argv: string[], log: (s: string) => void = console.log): Promise<void> {
  const o = parseArgs(argv);
  if (existsSync(o.out) && !o.overwrite) throw new HarnessUsageError(`${o.out} exists; give --overwrite to replace it, or another --out`);
  let input: { shape: number[]; data: Float32Array };
  try { input = decodeNpyFloat32(new Uint8Array(await readFile(o.input))); } catch (e) { throw new HarnessUsageError(`--input ${o.input}: ${(e as Error).message}`); }
  const weights = await readSafetensors(o.weights);
  const config = o.model ? preset(o.model) : configFromWeights(weights);
  if (!config) throw new HarnessUsageError(`${o.weights} matches no preset and records no config; give --model`);
  const classes = config.classes;
  if (classes === null) throw new HarnessUsageError(`model ${config.name} has no classifier: no logits to compare`);
  const [c, h, w] = config.inputShape;
  const [n, ...chw] = input.shape;
  if (input.shape.length !== 4 || chw[0] !== c || chw[1] !== h || chw[2] !== w) {
    throw new HarnessUsageError(`--input ${o.input} has shape (${input.shape.join(', ')}); model ${config.name} takes (N, ${c}, ${h}, ${w})`);
  }
  log(`model ${config.name}: ${describeDenseNet(config).parameters.length} parameter tensors, input (${input.shape.join(', ')})`);
  const logits = await engineLogits(o, config, weights, input.data, n, log);
  await writeFile(o.out, encodeNpyFloat32(logits, [n, classes]));
  log(`wrote ${o.out}: float32 (${n}, ${classes})`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof HarnessUsageError || (e instanceof Error && /Safetensors|Weights/.test(e.name))) {
    console.error(`gpu_logits: ${e.message}`);
    process.exit(2);
  }
  throw e;
});
