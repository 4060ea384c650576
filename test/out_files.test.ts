// The user's files in export, features, predict and bench --json/--svg (no GPU needed): an existing --out file is
// never replaced without --overwrite and the refusal says what the file holds, an extension that
// does not match the format and a missing directory are refused before any work, and a checkpoint
// given as --weights (or safetensors as --checkpoint) is pointed to the right flag.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, type ParsedFlags } from '../src/cli/args.js';
import { BENCH_COMMANDS } from '../src/cli/bench_commands.js';
import { fileKind } from '../src/cli/files.js';
import { runExport } from '../src/cli/export.js';
import { runFeatures, runPredictDispatch } from '../src/cli/imagenet.js';
import { encodeNpyFloat32 } from '../src/io/npy.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { denseNetConfig, describeDenseNet, size } from '../src/models/index.js';
import { writeCheckpoint } from '../src/train/checkpoint.js';
import type { Gpu } from '../src/gpu/device.js';

const test = suite('out files');
let dir = '';
let checkpoint = '';
let weights = '';
const CONFIG = denseNetConfig({ name: 'tiny-out-files', blocks: [1, 1], growthRate: 2, initialFeatures: 4, bottleneck: true, compression: 0.5, inputShape: [1, 8, 8], classes: 3 });

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'out-files-test-'));
  checkpoint = join(dir, 'best.ckpt');
  const tensors = new Map(describeDenseNet(CONFIG).parameters.map((p) => [p.name, new Float32Array(size(p.shape)).fill(0.5)]));
  await writeCheckpoint(checkpoint, { header: { format: 'densenet-wgsl-training-v1', config: CONFIG, stepsTaken: 3 }, tensors });
  weights = join(dir, 'weights.safetensors');
  await writeSafetensors(weights, [['foo', { dtype: 'F32', shape: [1], data: [1] }]]);
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

/** A device that fails the test if any GPU work is attempted. */
const NO_GPU = new Proxy({}, { get: (_t, key) => assert.unreachable(`GPU touched (${String(key)}) before the flags were checked`) }) as Gpu;

async function refused(p: Promise<unknown>, ...parts: string[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, UsageError, (e as Error).stack);
    const message = (e as Error).message;
    for (const part of parts) assert.ok(message.includes(part), `"${message}"\nshould mention "${part}"`);
    return message;
  }
  return assert.unreachable(`expected a UsageError mentioning ${parts.join(', ')}`) as never;
}

const bytesOf = async (path: string) => new Uint8Array(await readFile(path));
const exists = (path: string) => stat(path).then(() => true, () => false);
const quiet = () => {};

test('fileKind tells a checkpoint, a safetensors file and a .npy array by their first bytes', async () => {
  const npy = join(dir, 'kind.npy');
  await writeFile(npy, encodeNpyFloat32(new Float32Array(2), [2]));
  const text = join(dir, 'kind.txt');
  await writeFile(text, '{"not": "safetensors"}');
  assert.is(await fileKind(checkpoint), 'checkpoint');
  assert.is(await fileKind(weights), 'safetensors');
  assert.is(await fileKind(npy), 'npy');
  assert.is(await fileKind(text), undefined);
  assert.is(await fileKind(join(dir, 'absent')), undefined);
});

test('export: an existing --out is refused, naming it and what it holds; --overwrite replaces it', async () => {
  const before = await bytesOf(checkpoint);
  // The reported accident: a checkpoint given as --out.
  await refused(runExport({ checkpoint, out: checkpoint }, quiet), `--out ${checkpoint} already exists (a densenet-wgsl training checkpoint)`, '--overwrite');
  assert.equal(await bytesOf(checkpoint), before, 'the checkpoint is untouched');
  const model = join(dir, 'model.safetensors');
  await writeFile(model, await bytesOf(weights));
  await refused(runExport({ checkpoint, out: model }, quiet), `--out ${model} already exists (a safetensors file)`, 'give --overwrite to replace it, or another --out');
  assert.equal(await bytesOf(model), await bytesOf(weights), 'the safetensors file is untouched');
  const other = join(dir, 'notes.safetensors');
  await writeFile(other, 'my notes');
  await refused(runExport({ checkpoint, out: other }, quiet), 'already exists (a file of 8 bytes)');

  await runExport({ checkpoint, out: model, overwrite: true }, quiet);
  const exported = await readSafetensors(model);
  assert.equal([...exported.tensors.get('features.norm5.num_batches_tracked')!.data], [3n], 'the export replaced the file');
});

test('export: --out must end in .safetensors, its directory must exist; both checked before the checkpoint is read', async () => {
  const npy = join(dir, 'weights.npy');
  await refused(runExport({ checkpoint, out: npy }, quiet), `--out ${npy}`, 'export writes safetensors', 'must end in .safetensors');
  assert.not.ok(await exists(npy), 'nothing written');
  const missingDir = join(dir, 'no-such-dir', 'model.safetensors');
  await refused(runExport({ checkpoint, out: missingDir }, quiet), `directory ${join(dir, 'no-such-dir')} does not exist`);
  // Before any work: a missing checkpoint is not even looked at.
  await refused(runExport({ checkpoint: join(dir, 'absent.ckpt'), out: npy }, quiet), 'must end in .safetensors');
  await refused(runExport({ checkpoint: weights, out: join(dir, 'fresh.safetensors') }, quiet), `${weights} is a safetensors file`, 'already safetensors');
});

test('features: a missing --out directory, an existing --out and a wrong extension are refused before the weights are read or the GPU used', async () => {
  const image = join(dir, 'image.png');
  const absentWeights = join(dir, 'absent.safetensors'); // would fail later: proves the --out checks come first
  const flags = (out: string, extra: ParsedFlags = {}): ParsedFlags => ({ weights: absentWeights, out, batch: 8, ...extra });
  const missing = join(dir, 'missing', 'features.npy');
  await refused(runFeatures(flags(missing), [image], quiet, NO_GPU), `features: --out ${missing}: directory ${join(dir, 'missing')} does not exist`);
  const existing = join(dir, 'features.npy');
  await writeFile(existing, encodeNpyFloat32(new Float32Array(4), [2, 2]));
  const before = await bytesOf(existing);
  await refused(runFeatures(flags(existing), [image], quiet, NO_GPU), `--out ${existing} already exists (a NumPy .npy array)`, '--overwrite');
  assert.equal(await bytesOf(existing), before);
  await refused(runFeatures(flags(join(dir, 'f.txt')), [image], quiet, NO_GPU), 'must end in .npy or .json');
  await refused(runFeatures(flags(dir), [image], quiet, NO_GPU), `--out ${dir} is a directory`);
  // With --overwrite the --out checks pass and the next problem is the weights.
  await refused(runFeatures(flags(existing, { overwrite: true }), [image], quiet, NO_GPU), 'absent.safetensors');
  await refused(runFeatures({ ...flags(join(dir, 'new.npy')), weights: checkpoint }, [image], quiet, NO_GPU),
    `${checkpoint} is a densenet-wgsl training checkpoint, not what --weights takes; give it with "densenet-wgsl export --checkpoint ${checkpoint} --out FILE.safetensors" first`);
});

test('predict: a checkpoint given as --weights says --checkpoint, safetensors given as --checkpoint says --weights', async () => {
  const flags: ParsedFlags = { batch: 8, top: 5 };
  await refused(runPredictDispatch({ ...flags, weights: checkpoint }, ['x.png'], new Set(['weights'])),
    `${checkpoint} is a densenet-wgsl training checkpoint, not what --weights takes; give it with --checkpoint`);
  await refused(runPredictDispatch({ ...flags, checkpoint: weights }, ['x.png'], new Set(['checkpoint'])),
    `${weights} is a safetensors file, not what --checkpoint takes; give it with --weights`);
});

test('bench --json and --svg: an existing file is refused before any measurement unless --overwrite, and a wrong extension is named', async () => {
  const json = join(dir, 'rows.json');
  await writeFile(json, '{"rows": "measured yesterday"}\n');
  const before = await bytesOf(json);
  for (const name of ['bench ops', 'bench train', 'bench memory', 'bench inference'] as const) {
    await refused(BENCH_COMMANDS[name].run({ json }), `${name}: --json ${json} already exists`, 'give --overwrite to replace it, or another --json');
    assert.ok(BENCH_COMMANDS[name].flags.some((f) => f.name === 'overwrite'), `${name} lists --overwrite`);
  }
  assert.equal(await bytesOf(json), before, 'the existing file is untouched');
  await refused(BENCH_COMMANDS['bench memory'].run({ svg: join(dir, 'plot.png') }), '--svg', 'must end in .svg');
  await refused(BENCH_COMMANDS['bench ops'].run({ json: join(dir, 'no-such-dir', 'rows.json') }), 'no-such-dir');
});

test.run();
