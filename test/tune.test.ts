// The autotuner's table, cache and flags: a table of non-default choices (other tiles, split-K
// with its planned workspace, other pool blocks) trains with the same losses and gradients as the
// defaults; its entries reach the launches; the per-adapter cache is written, read back and used;
// a corrupt cache warns and gives the defaults; --no-tune-cache ignores it; `tune` prints and caches.
// Every test points XDG_CACHE_HOME at a temporary directory (and keeps Mesa's shader cache where it was).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyTuning } from '../src/cli/tune.js';
import { candidatesFor, collectSites, tuneTargets } from '../src/cli/tuner.js';
import { compareWholeStep } from '../src/cli/tune_verify.js';
import type { Gpu } from '../src/gpu/device.js';
import { setTuning, tuningOf, TuningTable, type TuningChoice } from '../src/gpu/tuning.js';
import { adapterIdentity, loadTuningCache, saveTuningCache, tuningCacheDir, tuningCachePath, type TuningCacheEntry } from '../src/gpu/tuning_cache.js';
import { CONV_TILES } from '../src/kernels/conv2d.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { TrainingSession } from '../src/models/session.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('tune');
// The tuned choices are register tiles and pool blocks, which the software kernel class uses: a
// forced GPU class (kernel_class.test.ts) would run the workgroup conv and ignore them.
delete process.env.DENSENET_WGSL_KERNELS;
const original = { xdg: process.env.XDG_CACHE_HOME, mesa: process.env.MESA_SHADER_CACHE_DIR };
// Mesa's shader cache stays where it was (a cold one costs minutes on lavapipe); only ours moves.
// (Mesa puts its cache in MESA_SHADER_CACHE_DIR/mesa_shader_cache_db, as it does under XDG_CACHE_HOME.)
const mesaCache = original.mesa ?? (original.xdg || join(homedir(), '.cache'));
const cacheHome = mkdtempSync(join(tmpdir(), 'densenet-wgsl-tune-'));
process.env.MESA_SHADER_CACHE_DIR = mesaCache;
process.env.XDG_CACHE_HOME = cacheHome;

test.after(async () => {
  await closeTestGpu();
  rmSync(cacheHome, { recursive: true, force: true });
  for (const [name, value] of [['XDG_CACHE_HOME', original.xdg], ['MESA_SHADER_CACHE_DIR', original.mesa]] as const) {
    if (value === undefined) delete process.env[name]; else process.env[name] = value;
  }
});

const CONFIG = preset('densenet-bc-tiny');
const BATCH = 4;
const target = { config: CONFIG, batch: BATCH, memory: 'fused' as const, training: true };

/** Not the default for any site of the tiny model: a small conv tile, split-K 3 for the filter gradient, 3 pool blocks. */
function alternativeChoice(kernel: string): TuningChoice {
  if (kernel === 'conv2d.backwardFilter') return { tile: { ...CONV_TILES.split } };
  if (kernel.startsWith('conv2d')) return { tile: { ...CONV_TILES.small } };
  return { blocksPerInvocation: 3 };
}

function alternativeTable(gpu: Gpu, memory: 'fused' | 'recompute' = 'fused'): TuningTable {
  return new TuningTable(collectSites(gpu, { ...target, memory }).map((s) => [s.kernel, s.key, alternativeChoice(s.kernel)]));
}

async function oneStep(gpu: Gpu, table: TuningTable | undefined, memory: 'fused' | 'recompute' = 'fused') {
  setTuning(gpu, table);
  const model = DenseNetModel.create(gpu, CONFIG, 7);
  const session = await TrainingSession.create(model, {
    batch: BATCH, memory, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
  });
  try {
    const [c, h, w] = CONFIG.inputShape;
    const { loss } = await session.step(randomArray(BATCH * c * h * w, 11), Uint32Array.from([1, 3, 5, 7]), 0.1);
    const second = await session.step(randomArray(BATCH * c * h * w, 12), Uint32Array.from([0, 2, 4, 6]), 0.1);
    return { loss, second: second.loss, gradients: await session.readGradients(), session, model };
  } finally {
    setTuning(gpu, undefined);
  }
}

test('the sites of a graph are its distinct conv and average-pool shapes; every site has alternatives to time', async () => {
  const gpu = await testGpu();
  const sites = collectSites(gpu, target);
  const kernels = new Set(sites.map((s) => s.kernel));
  for (const k of ['conv2d.forward', 'conv2d.backwardInput', 'conv2d.backwardFilter', 'avgPool2x2.forward', 'avgPool2x2.backward']) assert.ok(kernels.has(k as never), k);
  assert.is(new Set(sites.map((s) => `${s.kernel} ${s.key}`)).size, sites.length, 'distinct');
  for (const s of sites) {
    const c = candidatesFor(gpu, s);
    assert.is(c[0].name, 'default');
    assert.ok(c.length >= 3 && c.length <= 6, `${s.kernel} ${s.key}: ${c.length} candidates`);
  }
});

test('--freeze features: the frozen graph\'s sites are the forward ones (none of its backward kernels), all of them sites of the full graph too', async () => {
  const gpu = await testGpu();
  const full = collectSites(gpu, target);
  const frozen = collectSites(gpu, { ...target, freeze: 'features' });
  const keys = (sites: typeof full) => sites.map((s) => `${s.kernel} ${s.key}`);
  assert.ok(frozen.length > 0 && frozen.length < full.length, `${frozen.length} sites frozen, ${full.length} in all`);
  assert.equal(frozen.filter((s) => /backward/.test(s.kernel)).map((s) => s.kernel), [], 'no backward kernel of a frozen layer');
  for (const k of keys(frozen)) assert.ok(keys(full).includes(k), `${k} is a site of the full graph too`);
  assert.equal(keys(frozen).sort(), keys(full).filter((k) => !/backward/.test(k)).sort(), 'exactly the forward sites');
});

test('a table of non-default choices trains with the same losses (rel 1e-5) and gradients (atol 2e-5 + rtol 1e-3) as the defaults, and reaches the launches', async () => {
  const gpu = await testGpu();
  const table = alternativeTable(gpu);
  const plain = await oneStep(gpu, undefined);
  const tuned = await oneStep(gpu, table);
  try {
    assert.ok(Math.abs(tuned.loss - plain.loss) <= 1e-5 * Math.abs(plain.loss), `loss ${tuned.loss} vs ${plain.loss}`);
    assert.ok(Math.abs(tuned.second - plain.second) <= 1e-5 * Math.abs(plain.second), `second loss ${tuned.second} vs ${plain.second}`);
    for (const [name, g] of plain.gradients) assertClose(tuned.gradients.get(name)!, g, { atol: 2e-5, rtol: 1e-3 }, name);
    // The split-K workspace is a planned tensor of the graph, written by the filter-gradient ops that split.
    const graph = tuned.session.built.graph;
    const split = graph.ops.filter((op) => op.writes.some((v) => v.name.endsWith('.backwardFilter.workspace')));
    assert.ok(split.length > 0, 'some filter gradient splits');
    assert.ok(tuned.session.executable.plan.poolBytes.workspace > plain.session.executable.plan.poolBytes.workspace, 'workspace planned');
    // The same op's program differs: the table's tile and blocks are in its key.
    const key = async (s: TrainingSession, name: string) => {
      const op = s.built.graph.ops.find((o) => o.name === name)!;
      const launches = await op.build({ gpu, ref: (v) => s.executable.ref(v) });
      launches.forEach((l) => l.destroy());
      return launches.map((l) => `${l.program.spec.name} ${l.program.spec.key}`).join(' + ');
    };
    const conv = graph.ops.find((o) => o.name.endsWith('.conv1') && !o.name.includes('.backward'))!.name;
    const pool = graph.ops.find((o) => o.name.includes('pool') && !o.name.includes('.backward') && !o.name.includes('norm'))!.name;
    for (const name of [conv, `${conv}.backwardFilter`, pool]) {
      const [a, b] = [await key(plain.session, name), await key(tuned.session, name)];
      assert.is.not(a, b, `${name}: ${a}`);
    }
    assert.match(await key(tuned.session, conv), /"rows":4,"cols":4,"workgroupSize":64/);
    assert.match(await key(tuned.session, `${conv}.backwardFilter`), /splitSum/);
    assert.match(await key(tuned.session, pool), /R=3/);
  } finally {
    for (const r of [plain, tuned]) { r.session.destroy(); r.model.close(); }
  }
});

test('under recompute (convs without the fused BN→ReLU) the tuned table also trains as the defaults do (same tolerances)', async () => {
  const gpu = await testGpu();
  const table = alternativeTable(gpu, 'recompute');
  assert.ok([...table.sites.values()].length === 0 && table.size > 0);
  const plain = await oneStep(gpu, undefined, 'recompute');
  const tuned = await oneStep(gpu, table, 'recompute');
  try {
    assert.ok(Math.abs(tuned.loss - plain.loss) <= 1e-5 * Math.abs(plain.loss), `loss ${tuned.loss} vs ${plain.loss}`);
    assert.ok(Math.abs(tuned.second - plain.second) <= 1e-5 * Math.abs(plain.second), `second loss ${tuned.second} vs ${plain.second}`);
    for (const [name, g] of plain.gradients) assertClose(tuned.gradients.get(name)!, g, { atol: 2e-5, rtol: 1e-3 }, name);
    assert.is(table.sites.size, table.size, 'every entry was asked for by the recompute graph');
  } finally {
    for (const r of [plain, tuned]) { r.session.destroy(); r.model.close(); }
  }
});

test('no site is started after the budget: with none, every site is skipped and nothing is timed', async () => {
  const gpu = await testGpu();
  const report = await tuneTargets(gpu, [target], { reps: 1, budgetSeconds: 0 });
  assert.is(report.results.length, 0);
  assert.is(report.skipped.length, report.sites);
  assert.ok(report.sites > 10);
});

test('the whole-step check sees a table that makes the step slower (lavapipe: the 4×4/64 tile for every filter gradient)', async () => {
  const gpu = await testGpu();
  if (gpu.profile.class !== 'software') return; // what is slow on a CPU need not be on a GPU
  const slow = new TuningTable(collectSites(gpu, target).filter((s) => s.kernel === 'conv2d.backwardFilter')
    .map((s) => [s.kernel, s.key, { tile: { ...CONV_TILES.small } }]));
  const check = await compareWholeStep(gpu, target, slow, 3);
  assert.ok(check.tunedMs > 1.2 * check.defaultMs, `tuned ${check.tunedMs} ms vs default ${check.defaultMs} ms`);
  assert.is(tuningOf(gpu), undefined, 'the device\'s own table is restored');
});

const entry = (kernel: string, key: string, choice: TuningChoice): TuningCacheEntry =>
  ({ kernel, key, choice, candidate: 'test', ms: 1, defaultMs: 2, method: 'wall-clock' });

test('the cache is one file per adapter under $XDG_CACHE_HOME/densenet-wgsl, merged on write, read back as a table', async () => {
  assert.is(tuningCacheDir(), join(cacheHome, 'densenet-wgsl'));
  assert.is(tuningCacheDir({ HOME: '/h' } as NodeJS.ProcessEnv).endsWith(join('.cache', 'densenet-wgsl')), true);
  const a = { name: 'Some GPU', driver: 'drv 1', backend: 'vulkan' };
  const b = { ...a, driver: 'drv 2' };
  assert.is.not(tuningCachePath(a), tuningCachePath(b), 'another driver: another file');
  await saveTuningCache(a, [entry('conv2d.forward', 'k1', { tile: { rows: 4, cols: 4, workgroupSize: 64 } })]);
  await saveTuningCache(a, [entry('avgPool2x2.forward', 'k2', { blocksPerInvocation: 2 })]);
  const loaded = await loadTuningCache(a);
  assert.ok(loaded);
  assert.is(loaded!.table.size, 2, 'the second write merged with the first');
  assert.equal(loaded!.table.get('conv2d.forward', 'k1'), { tile: { rows: 4, cols: 4, workgroupSize: 64 } });
  assert.is(loaded!.table.get('avgPool2x2.forward', 'k2')!.blocksPerInvocation, 2);
  assert.is(await loadTuningCache(b), undefined, 'nothing cached for the other driver');
  assert.equal(readdirSync(join(cacheHome, 'densenet-wgsl')).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
});

test('a corrupt or foreign cache file is reported and ignored; --no-tune-cache ignores a good one; the adapter\'s cache reaches the device', async () => {
  const gpu = await testGpu();
  const id = adapterIdentity(gpu.profile);
  const path = tuningCachePath(id);
  const site = collectSites(gpu, target).find((s) => s.kernel === 'avgPool2x2.forward')!;
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  try {
    writeFileSync(path, '{"format": "densenet-wgsl-tuning", "ver');
    await applyTuning(gpu, {}, () => [], log);
    assert.is(tuningOf(gpu), undefined, 'corrupt: the defaults');
    assert.match(lines.join('\n'), /tune cache .* is corrupt .*using the default launch choices/);
    lines.length = 0;
    writeFileSync(path, JSON.stringify({ format: 'densenet-wgsl-tuning', version: 1, adapter: { ...id, name: 'other' }, entries: [] }));
    await applyTuning(gpu, {}, () => [], log);
    assert.is(tuningOf(gpu), undefined);
    assert.match(lines.join('\n'), /ignored \(written for another adapter\)/);
    writeFileSync(path, JSON.stringify({ format: 'densenet-wgsl-tuning', version: 1, adapter: id, entries: [entry(site.kernel, site.key, { blocksPerInvocation: 0 })] }));
    lines.length = 0;
    await applyTuning(gpu, {}, () => [], log);
    assert.is(tuningOf(gpu), undefined, 'an entry out of range: the whole file is ignored');
    assert.match(lines.join('\n'), /a bad entry/);

    rmSync(path);
    await saveTuningCache(id, [entry(site.kernel, site.key, { blocksPerInvocation: 5 })]);
    lines.length = 0;
    await applyTuning(gpu, { 'no-tune-cache': true }, () => [], log);
    assert.is(tuningOf(gpu), undefined, '--no-tune-cache');
    assert.equal(lines, []);
    await applyTuning(gpu, {}, () => [], log);
    assert.is(tuningOf(gpu)!.get(site.kernel, site.key)!.blocksPerInvocation, 5);
    assert.match(lines.join('\n'), /tune cache: 1 launch choices for this adapter/);
    // The graph a session builds asks the attached table: the pool op's program has the cached blocks.
    const model = DenseNetModel.create(gpu, CONFIG, 0);
    const session = await TrainingSession.create(model, { batch: BATCH, memory: 'fused', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 }, precompile: false });
    try {
      const pool = session.built.graph.ops.find((o) => o.name.includes('pool') && !o.name.includes('.backward') && !o.name.includes('norm'))!;
      const launches = await pool.build({ gpu, ref: (v) => session.executable.ref(v) });
      launches.forEach((l) => l.destroy());
      assert.match(launches[0].program.spec.key, /R=5/);
    } finally {
      session.destroy();
      model.close();
    }
  } finally {
    setTuning(gpu, undefined);
    rmSync(path, { force: true });
  }
});

const cli = (args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], {
  encoding: 'utf8', timeout: 600_000, env: { ...process.env, XDG_CACHE_HOME: cacheHome, MESA_SHADER_CACHE_DIR: mesaCache },
});

/** The cache file `tune` wrote for this adapter (read by the next test). */
let tunedPath = '';

test('`tune` times candidates within its budget, prints each pick against the default and the time taken, and caches them for this adapter', () => {
  const r = cli(['tune', '--model', 'densenet-bc-tiny', '--batch', '4', '--reps', '1', '--budget', '2']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /tuning on .*\((software|integrated|discrete|unknown), driver/);
  assert.match(r.stdout, /\[1\/\d+\] conv2d\.forward x3x4x16x16 w\d+x3x3x3 s1 p1: (default kept|.* ms vs default [\d.]+ ms)/);
  // Whether the budget runs out depends on how warm the driver's shader cache is: both forms are right.
  assert.match(r.stdout, /densenet-bc-tiny batch 4 fused: \d+ distinct kernel shapes, [1-9]\d* tuned \(\d+ not the default\)(, \d+ skipped \(--budget 2 s ran out; they keep the default\))?; 1 reps, median, .* timing; tuning took [\d.]+ s/);
  // Where a winner is not the default, the whole step is compared with and without the choices.
  if (!/\(0 not the default\)/.test(r.stdout)) assert.match(r.stdout, /whole step of densenet-bc-tiny batch 4 fused \(training\): tuned [\d.]+ ms vs default [\d.]+ ms/);
  const path = /cache: (.*\.json)/.exec(r.stdout)![1];
  tunedPath = path;
  assert.ok(path.startsWith(join(cacheHome, 'densenet-wgsl')), path);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.is(file.format, 'densenet-wgsl-tuning');
  assert.ok(file.adapter.name && file.adapter.backend && typeof file.adapter.driver === 'string');
  assert.ok(file.entries.length >= 1 && file.entries[0].kernel === 'conv2d.forward' && file.entries[0].defaultMs > 0);
  const bad = cli(['tune', '--batch', '4']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /tune: --model is required/);
});

test('train reads the adapter\'s cache: a corrupt one is reported once and the run trains on the defaults; --no-tune-cache does not read it; --tune rewrites it', () => {
  assert.ok(tunedPath, 'the previous test wrote the cache');
  writeFileSync(tunedPath, '{"format": "densenet-wgsl-tuning", "entries": [');
  const args = ['train', '--model', 'digits-tiny', '--limit', '16', '--batch', '8', '--epochs', '1'];
  const corrupt = cli([...args, '--out', join(cacheHome, 'run-a')]);
  assert.is(corrupt.status, 0, corrupt.stderr);
  assert.is(corrupt.stderr.match(/tune cache .* is corrupt/g)?.length, 1, corrupt.stderr);
  assert.match(corrupt.stdout, /done: 1 of 1 epochs/);
  const ignored = cli([...args, '--no-tune-cache', '--out', join(cacheHome, 'run-b')]);
  assert.is(ignored.status, 0, ignored.stderr);
  assert.not.match(ignored.stderr, /tune cache/);
  // --tune tunes this run's model and batch first and replaces the corrupt file with a good one, which the run then uses.
  const tuned = cli([...args, '--tune', '--out', join(cacheHome, 'run-c')]);
  assert.is(tuned.status, 0, tuned.stderr);
  assert.match(tuned.stderr, /tuning on .*\n[\s\S]*digits-tiny batch 8 fused: \d+ distinct kernel shapes, \d+ tuned[\s\S]*cache: /);
  assert.match(tuned.stderr, /tune cache: \d+ launch choices for this adapter/);
  assert.is(JSON.parse(readFileSync(tunedPath, 'utf8')).format, 'densenet-wgsl-tuning');
  for (const command of ['train', 'eval', 'predict', 'features', 'bench train', 'bench inference']) {
    const help = cli([...command.split(' '), '--help']);
    assert.match(help.stdout, /--tune .*--no-tune-cache/s, command);
  }
});

test.run();
