// ONNX export without a GPU: every preset becomes a graph that ONNX Runtime loads (its model checks,
// type and shape inference); the graph has the ops the architecture implies; the batch dimension
// is dynamic; metadata carries the preprocessing; options the exporter cannot express are refused
// by name; `export`'s flags and files; the built CLI finds the schema (it is bundled).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { UsageError, type ParsedFlags } from '../src/cli/args.js';
import { runExport } from '../src/cli/export.js';
import { IMAGENET_CLASSES } from '../src/io/imagenet_classes.js';
import { denseNetOnnxModel, encodeDenseNetOnnx, OnnxExportError } from '../src/io/onnx/densenet_onnx.js';
import { decodeOnnxModel } from '../src/io/onnx/onnx_proto.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { torchvisionStateDict } from '../src/io/torchvision.js';
import { denseNetConfig, describeDenseNet, preset, PRESETS, size, type DenseNetConfig } from '../src/models/index.js';
import { writeCheckpoint } from '../src/train/checkpoint.js';
import { maxRelativeError, ortRun, randomDenseNetParams, randomInput } from './onnx_helpers.js';

const test = suite('onnx export');
let dir = '';
const quiet = () => {};
const DIGITS = preset('digits-tiny');
const HEADER = { format: 'densenet-wgsl-training-v1', stepsTaken: 3, mean: [0.1307], std: [0.3081], classNames: ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] };
let checkpoint = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onnx-export-test-'));
  checkpoint = join(dir, 'digits.ckpt');
  const tensors = randomDenseNetParams(DIGITS, 3);
  tensors.set('optimizer.momentum.features.conv0.weight', new Float32Array(4)); // optimizer state is not exported
  await writeCheckpoint(checkpoint, { header: { ...HEADER, config: DIGITS }, tensors });
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

async function refused(p: Promise<unknown>, kind: new (...a: never[]) => Error, ...parts: string[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, kind, (e as Error).stack);
    for (const part of parts) assert.ok((e as Error).message.includes(part), `"${(e as Error).message}"\nshould mention "${part}"`);
    return;
  }
  assert.unreachable(`expected a ${kind.name} mentioning ${parts.join(', ')}`);
}

const metadataOf = (bytes: Uint8Array) => Object.fromEntries(decodeOnnxModel(bytes).metadata_props.map((p) => [p.key, p.value]));
const exists = (path: string) => stat(path).then(() => true, () => false);

test('every preset is a graph ONNX Runtime loads, with input "input" [batch, C, H, W] and output "logits"', async () => {
  // One shared buffer for every tensor: loading checks shapes and types, not values.
  const largest = Math.max(...Object.values(PRESETS).flatMap((c) => describeDenseNet(c).parameters.map((p) => size(p.shape))));
  const shared = new Float32Array(largest).fill(0.01);
  for (const config of Object.values(PRESETS)) {
    const params = new Map(describeDenseNet(config).parameters.map((p) => [p.name, shared.subarray(0, size(p.shape))]));
    const session = await ort.InferenceSession.create(encodeDenseNetOnnx(config, params), { graphOptimizationLevel: 'disabled' });
    try {
      assert.equal(session.inputNames, ['input'], config.name);
      assert.equal(session.outputNames, ['logits'], config.name);
    } finally {
      await session.release();
    }
  }
});

test('the graph has the ops DenseNet-121 and DenseNet-BC-100-12 are made of (counts from the papers, not from the walk)', () => {
  const opCounts = (config: DenseNetConfig) => {
    const counts: Record<string, number> = {};
    const params = new Map(describeDenseNet(config).parameters.map((p) => [p.name, new Float32Array(size(p.shape))]));
    for (const n of denseNetOnnxModel(config, params).graph.node) counts[n.op_type] = (counts[n.op_type] ?? 0) + 1;
    return counts;
  };
  // DenseNet-121: 58 dense layers of 2 convs, conv0, 3 transition convs; BN before every conv but conv0, plus norm0 and norm5.
  assert.equal(opCounts(preset('densenet121')), {
    Conv: 120, BatchNormalization: 121, Relu: 121, MaxPool: 1, Concat: 58, AveragePool: 3, GlobalAveragePool: 1, Flatten: 1, Gemm: 1,
  });
  // BC-100-12: 48 layers of 2 convs, conv0 (cifar stem: no BN, no pool), 2 transitions, norm5.
  assert.equal(opCounts(preset('densenet-bc-100-12')), {
    Conv: 99, BatchNormalization: 99, Relu: 99, Concat: 48, AveragePool: 2, GlobalAveragePool: 1, Flatten: 1, Gemm: 1,
  });
});

test('dynamic batch (and height, width): one file runs at batch 1 and 3, and each image gives the same logits either way', async () => {
  const bytes = encodeDenseNetOnnx(DIGITS, randomDenseNetParams(DIGITS, 5));
  const model = decodeOnnxModel(bytes);
  assert.equal(model.graph.input[0].type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_value: 1 }, { dim_param: 'height' }, { dim_param: 'width' }]);
  assert.equal(model.graph.output[0].type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_value: 10 }]);
  const images = randomInput(3 * 28 * 28, 6);
  const three = (await ortRun(bytes, images, [3, 1, 28, 28])).logits;
  assert.equal(three.dims, [3, 10]);
  for (let i = 0; i < 3; i++) {
    const one = (await ortRun(bytes, images.slice(i * 784, (i + 1) * 784), [1, 1, 28, 28])).logits;
    assert.equal(one.dims, [1, 10]);
    const err = maxRelativeError(one.data, three.data.subarray(i * 10, (i + 1) * 10));
    assert.ok(err <= 1e-6, `image ${i}: batch 1 and batch 3 differ by ${err}`);
  }
});

test('an option the exporter cannot express is refused by name; so is a softmax without a classifier and a missing tensor', async () => {
  const params = randomDenseNetParams(DIGITS, 1);
  const withActivation = { ...DIGITS, activation: 'gelu' } as unknown as DenseNetConfig;
  assert.throws(() => denseNetOnnxModel(withActivation, params), (e: Error) => e instanceof OnnxExportError && /model option "activation" \("gelu"\) cannot be expressed/.test(e.message));
  const features = { ...DIGITS, classes: null };
  const featureParams = new Map([...params].filter(([n]) => !n.startsWith('classifier.')));
  assert.throws(() => denseNetOnnxModel(features, featureParams, { softmax: true }), /softmax output needs a classifier/);
  const missing = new Map(params);
  missing.delete('features.denseblock2.denselayer1.norm2.running_var');
  assert.throws(() => denseNetOnnxModel(DIGITS, missing), /parameter "features.denseblock2.denselayer1.norm2.running_var" \[32\] is missing/);
  // Dropout is the identity in inference: exported without a node, not refused.
  const dropout = { ...DIGITS, dropRate: 0.2 };
  assert.not.ok(denseNetOnnxModel(dropout, params).graph.node.some((n) => n.op_type === 'Dropout'));

  // Through the command: the checkpoint's config names the option; nothing is written.
  const bad = join(dir, 'bad.ckpt');
  await writeCheckpoint(bad, { header: { ...HEADER, config: withActivation }, tensors: params });
  const out = join(dir, 'bad.onnx');
  await refused(runExport({ checkpoint: bad, out }, quiet), OnnxExportError, '"activation"');
  assert.not.ok(await exists(out));
});

test('metadata: a checkpoint\'s mean, std and class names, the input size; through safetensors too; ImageNet\'s for torchvision weights', async () => {
  const onnx = join(dir, 'digits.onnx');
  const lines: string[] = [];
  await runExport({ checkpoint, out: onnx, softmax: true }, (l) => lines.push(l));
  assert.match(lines.join('\n'), /input "input" \[batch, 1, 28, 28\] float32 NCHW, output "logits" \[batch, 10\] and "probabilities" \[batch, 10\]/);
  const bytes = new Uint8Array(await readFile(onnx));
  let meta = metadataOf(bytes);
  assert.equal(JSON.parse(meta.mean), HEADER.mean);
  assert.equal(JSON.parse(meta.std), HEADER.std);
  assert.equal(JSON.parse(meta.input_size), [1, 28, 28]);
  assert.equal(JSON.parse(meta.class_names), HEADER.classNames);
  assert.equal(JSON.parse(meta['densenet_wgsl.config']), DIGITS);
  assert.equal(decodeOnnxModel(bytes).graph.output.map((o) => o.name), ['logits', 'probabilities']);

  // checkpoint → safetensors → ONNX keeps the preprocessing.
  const weights = join(dir, 'digits.safetensors');
  await runExport({ checkpoint, out: weights }, quiet);
  const chained = join(dir, 'chained.onnx');
  await runExport({ weights, out: chained }, quiet);
  meta = metadataOf(new Uint8Array(await readFile(chained)));
  assert.equal(JSON.parse(meta.mean), HEADER.mean);
  assert.equal(JSON.parse(meta.class_names), HEADER.classNames);

  // torchvision-style weights (no recorded preprocessing) of a 1000-class imagenet-stem model: ImageNet's, as predict --weights assumes.
  const config = denseNetConfig({ name: 'tiny-imagenet-1000', blocks: [1, 1], growthRate: 2, initialFeatures: 4, bottleneck: true, stem: 'imagenet', inputShape: [3, 32, 32], classes: 1000 });
  const configFile = join(dir, 'tiny-imagenet.json');
  await writeFile(configFile, JSON.stringify(config));
  const torchvision = join(dir, 'torchvision.safetensors');
  await writeSafetensors(torchvision, torchvisionStateDict(describeDenseNet(config), randomDenseNetParams(config, 2)));
  const imagenetOnnx = join(dir, 'imagenet.onnx');
  lines.length = 0;
  await runExport({ weights: torchvision, model: configFile, out: imagenetOnnx }, (l) => lines.push(l));
  assert.match(lines.join('\n'), /preprocessing recorded: ImageNet's/);
  meta = metadataOf(new Uint8Array(await readFile(imagenetOnnx)));
  assert.equal(JSON.parse(meta.mean), [0.485, 0.456, 0.406]);
  assert.equal(JSON.parse(meta.std), [0.229, 0.224, 0.225]);
  assert.equal(JSON.parse(meta.input_size), [3, 32, 32]);
  assert.equal(JSON.parse(meta.class_names).length, 1000);
  assert.is(JSON.parse(meta.class_names)[1], IMAGENET_CLASSES[1]);
});

test('export flags: the --out extension picks the format; combinations that cannot work are refused before anything is read', async () => {
  const flags = (f: ParsedFlags) => runExport(f, quiet);
  const weights = join(dir, 'w.safetensors');
  await writeSafetensors(weights, torchvisionStateDict(describeDenseNet(DIGITS), randomDenseNetParams(DIGITS, 4)));
  await refused(flags({ checkpoint, out: join(dir, 'x.pt') }), UsageError, 'export writes safetensors or ONNX', 'must end in .safetensors or .onnx');
  await refused(flags({ weights, out: join(dir, 'x.safetensors') }), UsageError, '--weights go with an .onnx --out');
  await refused(flags({ checkpoint, softmax: true, out: join(dir, 'x.safetensors') }), UsageError, '--softmax go with an .onnx --out');
  await refused(flags({ checkpoint, weights, out: join(dir, 'x.onnx') }), UsageError, 'give --checkpoint or --weights, not both');
  await refused(flags({ checkpoint, model: 'digits-tiny', out: join(dir, 'x.onnx') }), UsageError, '--model goes with --weights');
  await refused(flags({ out: join(dir, 'x.onnx') }), UsageError, '--checkpoint FILE is required (or --weights FILE.safetensors)');
  await refused(flags({ checkpoint: weights, out: join(dir, 'x.onnx') }), UsageError, `${weights} is a safetensors file, not what --checkpoint takes; give it with --weights`);
  await refused(flags({ weights: checkpoint, out: join(dir, 'x.onnx') }), UsageError, 'not what --weights takes; give it with --checkpoint');
  await refused(flags({ checkpoint, out: join(dir, 'no-such-dir', 'x.onnx') }), UsageError, 'does not exist');
  assert.not.ok(await exists(join(dir, 'x.onnx')));
  // An existing .onnx is replaced only with --overwrite.
  const existing = join(dir, 'existing.onnx');
  await writeFile(existing, 'mine');
  await refused(flags({ checkpoint, out: existing }), UsageError, `--out ${existing} already exists (a file of 4 bytes)`, '--overwrite');
  assert.is(await readFile(existing, 'utf8'), 'mine');
  await flags({ checkpoint, out: existing, overwrite: true });
  assert.equal((await ort.InferenceSession.create(existing)).outputNames, ['logits']);
});

test('the built CLI writes a file ONNX Runtime runs (the schema is bundled), and refuses an unknown option in one line', async () => {
  const out = join(dir, 'cli.onnx');
  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', 'export', ...args], { encoding: 'utf8', timeout: 60_000 });
  const ok = cli('--checkpoint', checkpoint, '--out', out);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /wrote .*cli\.onnx: model digits-tiny/);
  const logits = (await ortRun(out, randomInput(2 * 784, 9), [2, 1, 28, 28])).logits;
  assert.equal(logits.dims, [2, 10]);
  const bad = join(dir, 'dropout-schedule.ckpt');
  await writeCheckpoint(bad, { header: { ...HEADER, config: { ...DIGITS, dropSchedule: 'linear' } }, tensors: randomDenseNetParams(DIGITS, 1) });
  const refusedRun = cli('--checkpoint', bad, '--out', join(dir, 'cli-bad.onnx'));
  assert.is(refusedRun.status, 1, refusedRun.stderr);
  assert.match(refusedRun.stderr, /model option "dropSchedule" \("linear"\) cannot be expressed/);
  assert.not.match(refusedRun.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
