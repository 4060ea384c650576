// What a user of the package does: `npm pack` this repository, install the tarball into a new
// project (dependencies from npm's cache, which `npm ci` filled; Dawn's addon and sharp's prebuilt
// libvips come with their packages), import 'densenet-wgsl' there to train a tiny model a few steps
// and predict, run the installed CLI, and type-check a TypeScript file against the published
// declarations with strict settings and skipLibCheck off (so they must resolve without
// @webgpu/types or anything else the engine uses inside). Needs the build (dist/lib, dist/types).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const test = suite('package');
const repo = resolve('.');
let dir = '';
let project = '';
let tarball = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'densenet-package-'));
  project = join(dir, 'user-project');
  await mkdir(project);
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

/** The environment without npm's own variables (an `npm test` parent sets npm_config_*, which would steer the inner npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'));
}

function sh(command: string, args: string[], options: SpawnSyncOptions = {}): { code: number; out: string; err: string; seconds: number } {
  const started = performance.now();
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, env: cleanEnv(), ...options });
  return { code: r.status ?? -1, out: String(r.stdout), err: String(r.stderr), seconds: (performance.now() - started) / 1000 };
}

test('npm pack holds the CLI, the library bundle, its declarations and the examples, and no tests or sources', () => {
  assert.ok(existsSync('dist/lib/index.js') && existsSync('dist/types/index.d.ts'), 'build first: node scripts/build.mjs');
  // --ignore-scripts: prepack would rebuild dist/ under the test run; it was just built.
  const r = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo });
  assert.is(r.code, 0, r.err);
  const [info] = JSON.parse(r.out) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, info.filename);
  const files = info.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'dist/cli.js', 'dist/bench.js', 'dist/lib/index.js', 'dist/types/index.d.ts', 'dist/types/api/train.d.ts',
    'examples/train-digits.mjs', 'scripts/setup.sh', 'scripts/probe-adapter.mjs']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  assert.equal(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('src/') || f.startsWith('test/')), [], 'no tests or TypeScript sources');
  console.log(`  npm pack: ${files.length} files, ${r.seconds.toFixed(1)} s`);
});

test('installed into a new project: import trains and predicts, the CLI runs, sharp loads', async () => {
  await writeFile(join(project, 'package.json'), JSON.stringify({
    name: 'user-project', version: '1.0.0', private: true, type: 'module',
    // npm 11 runs a dependency's install script only when the project allows it: webgpu's (a macOS quarantine fix).
    allowScripts: { webgpu: true },
  }, null, 2));
  const install = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'info', tarball], { cwd: project });
  assert.is(install.code, 0, install.out + install.err);
  assert.match(install.out + install.err, /run webgpu@[\d.]+ postinstall \{ code: 0/, 'webgpu\'s install script ran and succeeded');
  console.log(`  npm install of the tarball: ${install.seconds.toFixed(1)} s`);
  assert.ok(existsSync(join(project, 'node_modules/densenet-wgsl/dist/lib/index.js')));

  await writeFile(join(project, 'smoke.mjs'), `
import { createModel, loadDigits, openDevice, predict, train } from 'densenet-wgsl';
import sharp from 'sharp';
const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#ff0000' } }).png().toBuffer();
const { train: digits, test } = loadDigits({ limit: 40 });
const device = await openDevice();
try {
  const model = createModel(device, 'digits-tiny');
  const steps = [];
  const result = await train(model, digits, { batch: 8, epochs: 1, onStep: (s) => steps.push(s.loss) });
  const raw = new Float32Array(2 * 28 * 28).fill(0.5);
  const predictions = await predict(model, raw, { top: 2 });
  console.log(JSON.stringify({ pngBytes: png.length, status: result.status, steps, predictions, classNames: model.classNames, adapter: device.adapter.name }));
} finally {
  device.close();
}
`);
  const smoke = sh(process.execPath, ['smoke.mjs'], { cwd: project });
  assert.is(smoke.code, 0, smoke.err);
  const got = JSON.parse(smoke.out.trim().split('\n').at(-1)!);
  assert.ok(got.pngBytes > 0, 'sharp encoded a PNG');
  assert.is(got.status, 'completed');
  assert.is(got.steps.length, 4, '32 training digits at batch 8');
  assert.ok(got.steps.every((l: number) => Number.isFinite(l) && l > 0), `losses ${got.steps}`);
  assert.is(got.predictions.length, 2);
  for (const p of got.predictions) {
    assert.is(p.top.length, 2);
    assert.ok(/^[0-9]$/.test(p.top[0].name) && p.top[0].probability >= p.top[1].probability, JSON.stringify(p));
  }
  console.log(`  import, 4 training steps and a prediction in the new project: ${smoke.seconds.toFixed(1)} s on ${got.adapter}`);

  const bin = sh(join(project, 'node_modules/.bin/densenet-wgsl'), ['summary', '--model', 'digits-tiny', '--batch', '8'], { cwd: project });
  assert.is(bin.code, 0, bin.err);
  assert.match(bin.out, /parameters: 19,978/);
});

test('a TypeScript file importing the package type-checks against the declarations (strict, skipLibCheck off), and wrong uses are errors', async () => {
  await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false,
      lib: ['es2022'], types: ['node'], typeRoots: [join(repo, 'node_modules/@types')],
    },
    files: ['use.ts'],
  }, null, 2));
  await writeFile(join(project, 'use.ts'), `
import { createModel, loadDigits, openDevice, planMemory, predict, train, WeightsError, type Model, type TrainResult } from 'densenet-wgsl';

const device = await openDevice({ backend: 'vulkan' });
const model: Model = createModel(device, 'digits-tiny', { memory: 'recompute' });
const { train: digits } = loadDigits({ limit: 40 });
const result: TrainResult = await train(model, digits, { epochs: 1, batch: 8, signal: new AbortController().signal, onStep: (s) => console.log(s.step, s.loss.toFixed(3)) });
const top: string = (await predict(model, new Float32Array(784)))[0].top[0].name;
const bytes: number = planMemory('densenet121', { batch: 16 })[0].totalBytes;
const isWeightsError = (e: unknown): boolean => e instanceof WeightsError && e.problems.length > 0;
console.log(result.status, top, bytes, isWeightsError);
// @ts-expect-error: memory strategies are checked by name
createModel(device, 'digits-tiny', { memory: 'compressed' });
// @ts-expect-error: train needs a data set
await train(model, {});
// @ts-expect-error: the engine's internals are not part of the package
import { TrainingSession } from 'densenet-wgsl/dist/lib/index.js';
console.log(TrainingSession);
device.close();
`);
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const r = sh(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], { cwd: project });
  assert.is(r.code, 0, `tsc:\n${r.out}${r.err}`);
  // A declaration that leaked an engine type would have failed above; and they really are types (not any):
  await writeFile(join(project, 'use.ts'), "import { createModel } from 'densenet-wgsl';\nconst n: string = createModel;\nconsole.log(n);\n");
  const wrong = sh(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], { cwd: project });
  assert.is.not(wrong.code, 0, 'assigning a function to a string must fail');
  assert.match(wrong.out, /use\.ts\(2,7\): error TS2322/);
  console.log(`  declarations: ${(await readdir(join(project, 'node_modules/densenet-wgsl/dist/types'))).length} entries under dist/types; tsc ${r.seconds.toFixed(1)} s`);
});

test.run();
