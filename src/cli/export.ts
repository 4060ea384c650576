// `export`: a model leaves the engine, in the format the --out extension names. `.safetensors`: a
// training checkpoint's weights with torchvision names (PyTorch load_state_dict). `.onnx`: the
// inference graph (src/io/onnx) from a checkpoint or from torchvision-named safetensors, with the
// preprocessing in its metadata. No GPU is used: both formats are written from the stored weights.

import { extname } from 'node:path';
import { writeFileAtomic } from '../base/atomic_file.js';
import { validateConfig, type DenseNetConfig } from '../models/index.js';
import { describeDenseNet } from '../models/architecture.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { IMAGENET_CLASSES } from '../io/imagenet_classes.js';
import { checkOnnxExportable, encodeDenseNetOnnx, onnxOutputNames, ONNX_INPUT_NAME, ONNX_OPSET, type OnnxPreprocessing } from '../io/onnx/densenet_onnx.js';
import { readSafetensors } from '../io/safetensors.js';
import { configFromWeights, exportTorchvisionWeights, matchTorchvisionWeights } from '../io/torchvision.js';
import { UsageError, type FlagSpec, type ParsedFlags } from './args.js';
import { checkOutFile, refuseWrongKind } from './files.js';
import { asUsage, configFromFlag, IMAGENET_MEAN, IMAGENET_STD } from './imagenet.js';
import { METADATA_KEYS } from '../io/weights_metadata.js';
import { preprocessingOf } from '../train/preprocessing.js';

export const EXPORT_FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'checkpoint written by train' },
  { name: 'weights', type: 'string', help: 'with an .onnx --out: torchvision-named .safetensors weights' },
  { name: 'model', type: 'string', help: 'with --weights: preset (densenet121/169/201/161) or JSON config (default: from the weights)' },
  { name: 'out', type: 'string', help: 'output file; its extension picks the format: .safetensors (torchvision names; load_state_dict in PyTorch) or .onnx (inference graph)' },
  { name: 'softmax', type: 'boolean', help: 'with an .onnx --out: add a "probabilities" output (softmax of the logits)' },
  { name: 'overwrite', type: 'boolean', help: 'replace an existing --out file' },
];

/** Keys under which a safetensors export records the checkpoint's preprocessing, for `predict --weights`, `features` and a later `export --weights ... --out .onnx`. */
const PREPROCESSING_KEYS = METADATA_KEYS;

const IMAGENET_PREPROCESSING_TEXT = 'torchvision ImageNet evaluation transform: RGB, resize the shorter side to 256/224 of the input size ' +
  '(bilinear, antialiased), centre crop to the input size, pixels / 255, then (x - mean) / std per channel';

const numberList = (v: unknown): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? v : undefined);
const stringList = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);
const parseJson = (text: string | undefined): unknown => {
  try { return text === undefined ? undefined : JSON.parse(text); } catch { return undefined; }
};

/** What a checkpoint header knows of its preprocessing (train writes mean, std and class names). */
function checkpointPreprocessing(header: Record<string, unknown>, config: DenseNetConfig): OnnxPreprocessing | undefined {
  const mean = numberList(header.mean);
  const std = numberList(header.std);
  if (!mean || !std) return undefined;
  const gray = config.inputShape[0] === 1 ? '; digit models learned white strokes on black: invert a drawing on a light background' : '';
  return {
    mean, std, classNames: stringList(header.classNames),
    description: `resize to the input size (bilinear), ${config.inputShape[0] === 1 ? 'grayscale' : 'RGB'}, pixels / 255, then (x - mean) / std per channel${gray}`,
  };
}

export async function runExport(flags: ParsedFlags, log: (line: string) => void = console.log): Promise<void> {
  const checkpoint = flags.checkpoint as string | undefined;
  const weights = flags.weights as string | undefined;
  const out = flags.out as string | undefined;
  if (!out) throw new UsageError('export: --out FILE.safetensors or FILE.onnx is required');
  await checkOutFile('export', out, { extensions: ['.safetensors', '.onnx'], format: 'safetensors or ONNX (chosen by the extension)', overwrite: flags.overwrite === true });
  const onnx = extname(out).toLowerCase() === '.onnx';
  if (checkpoint && weights) throw new UsageError('export: give --checkpoint or --weights, not both');
  if (!onnx) {
    const onnxOnly = ['weights', 'model', 'softmax'].filter((f) => flags[f] !== undefined && flags[f] !== false);
    if (onnxOnly.length > 0) throw new UsageError(`export: ${onnxOnly.map((f) => `--${f}`).join(', ')} go with an .onnx --out (a .safetensors export is of a --checkpoint)`);
  }
  if (!checkpoint && !weights) throw new UsageError(`export: --checkpoint FILE is required${onnx ? ' (or --weights FILE.safetensors)' : ''}`);
  if (checkpoint && flags.model !== undefined) throw new UsageError('export: --model goes with --weights, not --checkpoint (a checkpoint knows its model)');

  if (checkpoint) {
    await refuseWrongKind('export', 'checkpoint', checkpoint, {
      safetensors: onnx ? '--weights' : 'predict --weights or features --weights (it is already safetensors)',
    });
    const contents = await readCheckpoint(checkpoint);
    if (!onnx) {
      const { mean, std, classNames } = contents.header;
      const config = contents.header.config as DenseNetConfig | undefined;
      // The whole evaluation transform (the library's form: loadModel reads it too), so that
      // `predict --weights` prepares images as training did; mean/std alone for older readers.
      const recorded = config && typeof config === 'object' && Array.isArray(config.inputShape) ? preprocessingOf(contents.header, config) : undefined;
      const metadata: Record<string, string> = numberList(mean) && numberList(std) ? {
        [PREPROCESSING_KEYS.mean]: JSON.stringify(mean), [PREPROCESSING_KEYS.std]: JSON.stringify(std),
        ...(recorded && numberList(recorded.mean) && numberList(recorded.std) ? { [PREPROCESSING_KEYS.preprocessing]: JSON.stringify({
          mean: recorded.mean, std: recorded.std, resize: recorded.resize === 'shorter-crop' ? 'center-crop' : 'resize',
          ...(recorded.invertLight === true ? { invertLight: true } : {}) }) } : {}),
        ...(stringList(classNames) ? { [PREPROCESSING_KEYS.classNames]: JSON.stringify(classNames) } : {}),
      } : {};
      const report = await asUsage('export', () => exportTorchvisionWeights({ ...contents, name: checkpoint }, out, { metadata }));
      log(`wrote ${out}: model ${report.config.name}, ${report.parameters} tensors with torchvision names plus ${report.tensors - report.parameters} num_batches_tracked`);
      if (report.config.stem === 'imagenet') {
        log('in PyTorch: from safetensors.torch import load_file; model.load_state_dict(load_file(' + JSON.stringify(out) + '))');
      }
      return;
    }
    const config = contents.header.config as DenseNetConfig;
    if (!config || typeof config !== 'object') throw new UsageError(`export: ${checkpoint} has no model config in its header; is it a densenet-wgsl training checkpoint?`);
    checkOnnxExportable(config); // before validateConfig: a field the exporter does not know is named as such
    validateConfig(config);
    const params = new Map([...contents.tensors].filter(([n]) => !n.startsWith('optimizer.')));
    const preprocessing = checkpointPreprocessing(contents.header, config);
    await writeOnnx(out, config, params, preprocessing, flags.softmax === true, checkpoint, log);
    if (!preprocessing) log(`note: ${checkpoint} records no mean and std, so the ONNX metadata has none: normalize the input as the model was trained`);
    return;
  }

  await refuseWrongKind('export', 'weights', weights!, { checkpoint: '--checkpoint (a model trained here)' });
  const contents = await asUsage('export', () => readSafetensors(weights!));
  const config = flags.model !== undefined ? await configFromFlag(String(flags.model), 'export') : configFromWeights(contents);
  if (!config) throw new UsageError(`export: ${weights} matches no preset; give --model (a preset name or a JSON config file)`);
  const { values, report } = await asUsage('export', async () => matchTorchvisionWeights(describeDenseNet(config), contents, weights!,
    { ignore: config.classes === null ? (n) => n.startsWith('classifier.') : undefined }));
  const mean = numberList(parseJson(report.metadata[PREPROCESSING_KEYS.mean]));
  const std = numberList(parseJson(report.metadata[PREPROCESSING_KEYS.std]));
  let preprocessing: OnnxPreprocessing;
  if (mean && std) {
    // Our own safetensors export of a checkpoint: its preprocessing travelled in the metadata.
    preprocessing = { mean, std, classNames: stringList(parseJson(report.metadata[PREPROCESSING_KEYS.classNames])),
      description: `resize to the input size (bilinear), pixels / 255, then (x - mean) / std per channel` };
  } else {
    // torchvision weights: what `predict --weights` does with them.
    preprocessing = { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], description: IMAGENET_PREPROCESSING_TEXT,
      classNames: config.classes === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : undefined };
    log(`preprocessing recorded: ImageNet's (mean [${IMAGENET_MEAN.join(', ')}], std [${IMAGENET_STD.join(', ')}]), as predict --weights uses` +
      (preprocessing.classNames ? ', with the 1000 ImageNet class names' : ''));
  }
  const converted = Object.entries(report.converted).map(([d, n]) => `${n} ${d}`).join(', ');
  if (converted) log(`weights converted to float32: ${converted}`);
  await writeOnnx(out, config, values, preprocessing, flags.softmax === true, weights!, log);
}

async function writeOnnx(out: string, config: DenseNetConfig, params: Map<string, Float32Array>, preprocessing: OnnxPreprocessing | undefined,
  softmax: boolean, source: string, log: (line: string) => void): Promise<void> {
  const bytes = encodeDenseNetOnnx(config, params, { softmax, preprocessing });
  await writeFileAtomic(out, [bytes]);
  const [c, h, w] = config.inputShape;
  const width = config.classes ?? describeDenseNet(config).features;
  const outputs = onnxOutputNames(config, softmax).map((n) => `"${n}" [batch, ${width}]`).join(' and ');
  const metadata = ['input_size', ...(preprocessing ? ['mean', 'std'] : []), ...(preprocessing?.classNames && config.classes !== null ? ['class_names'] : [])];
  log(`wrote ${out}: model ${config.name} from ${source}, ONNX opset ${ONNX_OPSET}, ${(bytes.length / 2 ** 20).toFixed(1)} MiB; ` +
    `input "${ONNX_INPUT_NAME}" [batch, ${c}, ${h}, ${w}] float32 NCHW, output ${outputs}; metadata: ${metadata.join(', ')}`);
}
