// The autotuner in the GPU kernel class (forced here with DENSENET_WGSL_KERNELS=gpu on the software
// adapter): the conv GEMM sites get their own " gpu" keys and workgroup-tile candidates with the
// register variant as a rival; a table choosing a non-default workgroup tile (and the register
// rival) reaches the launches and trains as the defaults do; the whole-step check runs on it; a
// tile the adapter cannot run is refused naming the rule and the table as its source, and a malformed cached one is ignored.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { candidatesFor, collectSites } from '../src/cli/tuner.js';
import { compareWholeStep } from '../src/cli/tune_verify.js';
import type { Gpu } from '../src/gpu/device.js';
import { GraphError } from '../src/graph/graph.js';
import { setTuning, TuningTable, type TuningChoice, type TuningSite } from '../src/gpu/tuning.js';
import { adapterIdentity, loadTuningCache, tuningCachePath } from '../src/gpu/tuning_cache.js';
import { WORKGROUP_TILES } from '../src/kernels/conv2d.js';
import { DenseNetModel } from '../src/models/model.js';
import { preset } from '../src/models/presets.js';
import { TrainingSession } from '../src/models/session.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('tune gpu class');
const originalKernels = process.env.DENSENET_WGSL_KERNELS;
process.env.DENSENET_WGSL_KERNELS = 'gpu';
test.after(async () => {
  await closeTestGpu();
  if (originalKernels === undefined) delete process.env.DENSENET_WGSL_KERNELS; else process.env.DENSENET_WGSL_KERNELS = originalKernels;
});

const CONFIG = preset('densenet-bc-tiny');
const BATCH = 4;
const target = { config: CONFIG, batch: BATCH, memory: 'fused' as const, training: true };
const sgd = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };
const isGemm = (s: TuningSite) => s.kernel === 'conv2d.forward' || s.kernel === 'conv2d.backwardInput';

test('in the gpu class the conv GEMM sites are keyed " gpu" and their candidates are workgroup tiles and the register rival', async () => {
  const gpu = await testGpu();
  const sites = collectSites(gpu, target);
  const gemm = sites.filter(isGemm);
  assert.ok(gemm.length > 0);
  for (const s of gemm) {
    assert.ok(s.gpuGemm && s.key.endsWith(' gpu'), s.key);
    const c = candidatesFor(gpu, s);
    assert.is(c[0].name, 'default');
    assert.is(c[0].choice, undefined);
    const workgroup = c.filter((x) => x.choice?.workgroupTile);
    assert.ok(workgroup.length >= 2, `${s.key}: ${c.map((x) => x.name).join(', ')}`);
    assert.is(c.filter((x) => x.choice?.tile && !x.choice.workgroupTile).length, 1, 'one register rival');
    // Every candidate is distinct (the default workgroup tile is not repeated as an alternative).
    assert.is(new Set(c.map((x) => JSON.stringify(x.choice ?? null))).size, c.length);
  }
  // The parallel global pool (GPU class only) times other lanes per plane.
  const pool = sites.find((s) => s.kernel === 'globalAvgPool.forward')!;
  assert.ok(pool, 'the global pool is a site');
  assert.ok(candidatesFor(gpu, pool).filter((x) => x.choice?.lanesPerPlane).length >= 3);
  // Batch norm's split reduction times other values per chunk at some of its shapes.
  const bn = sites.filter((s) => s.kernel === 'batchNorm.split');
  assert.ok(bn.length > 0, 'batch norm is a site');
  assert.ok(bn.some((s) => candidatesFor(gpu, s).some((x) => x.choice?.splitChunk)));
  // The filter gradient keeps its key (entries cached before stay valid) and its split default.
  const filter = sites.find((s) => s.kernel === 'conv2d.backwardFilter')!;
  assert.not.ok(filter.key.endsWith(' gpu'));
  assert.ok(candidatesFor(gpu, filter)[0].choice?.tile);
});

/** The tiny workgroup tile (no site's default) for forward; the register rival for backward-input; one lane per global-pool plane; 100 values per batch-norm chunk. */
function alternativeTable(gpu: Gpu): TuningTable {
  const choice = (s: TuningSite): TuningChoice => s.kernel === 'conv2d.forward' ? { workgroupTile: { ...WORKGROUP_TILES.tiny } }
    : s.kernel === 'globalAvgPool.forward' ? { lanesPerPlane: 1 } : s.kernel === 'batchNorm.split' ? { splitChunk: 100 } : candidatesFor(gpu, s).at(-1)!.choice!;
  return new TuningTable(collectSites(gpu, target).filter((s) => isGemm(s) || s.kernel === 'globalAvgPool.forward' || s.kernel === 'batchNorm.split')
    .map((s): [string, string, TuningChoice] => [s.kernel, s.key, choice(s)]));
}

async function session(gpu: Gpu, table: TuningTable | undefined) {
  setTuning(gpu, table);
  const model = DenseNetModel.create(gpu, CONFIG, 7);
  try {
    return { model, session: await TrainingSession.create(model, { batch: BATCH, memory: 'fused', optimizer: sgd, kernels: 'gpu' }) };
  } catch (e) {
    model.close();
    throw e;
  } finally {
    setTuning(gpu, undefined);
  }
}

test('a table picking a non-default workgroup tile and the register rival reaches the launches and trains as the defaults (loss rel 1e-5; gradients atol 1e-4 + rtol 1e-3)', async () => {
  const gpu = await testGpu();
  const table = alternativeTable(gpu);
  const plain = await session(gpu, undefined);
  const tuned = await session(gpu, table);
  try {
    const [c, h, w] = CONFIG.inputShape;
    const images = randomArray(BATCH * c * h * w, 11);
    const labels = Uint32Array.from([1, 3, 5, 7]);
    const a = await plain.session.step(images, labels, 0.1);
    const b = await tuned.session.step(images, labels, 0.1);
    assert.ok(Math.abs(b.loss - a.loss) <= 1e-5 * Math.abs(a.loss), `loss ${b.loss} vs ${a.loss}`);
    const ga = await plain.session.readGradients();
    const gb = await tuned.session.readGradients();
    for (const [name, g] of ga) assertClose(gb.get(name)!, g, { atol: 1e-4, rtol: 1e-3 }, name);
    const key = async (s: TrainingSession, name: string) => {
      const op = s.built.graph.ops.find((o) => o.name === name)!;
      const launches = await op.build({ gpu, ref: (v) => s.executable.ref(v) });
      launches.forEach((l) => l.destroy());
      return launches.map((l) => `${l.program.spec.name} ${l.program.spec.key}`).join(' + ');
    };
    const conv = tuned.session.built.graph.ops.find((o) => o.name.endsWith('.conv1') && !o.name.includes('.backward'))!.name;
    assert.match(await key(plain.session, conv), /\.workgroup .*"m":16,"n":128/, 'default: narrow');
    assert.match(await key(tuned.session, conv), /\.workgroup .*"m":8,"n":32,"k":8,"rows":2,"cols":4/);
    const input = tuned.session.built.graph.ops.find((o) => o.name.endsWith('.backwardInput'))!.name;
    assert.match(await key(plain.session, input), /\.workgroup /);
    assert.not.match(await key(tuned.session, input), /\.workgroup /, 'register rival');
    assert.match(await key(tuned.session, input), /"workgroupSize":/);
    const pool = tuned.session.built.graph.ops.find((o) => o.name.includes('pool') && !o.name.includes('.backward') && !o.name.includes('transition'))!.name;
    assert.match(await key(plain.session, pool), /globalAvgPool\.parallel lanes=(?!1,)/);
    assert.match(await key(tuned.session, pool), /globalAvgPool\.parallel lanes=1,/);
    // The split chunk is a uniform, not in the program key: the planned partials show it (2 per channel and chunk of 100 values).
    const partials = (s: TrainingSession) => s.built.graph.ops.flatMap((o) => o.writes).find((v) => v.name.endsWith('.partials') && v.shape[0] > 0)!;
    const p = partials(tuned.session);
    const x = tuned.session.built.graph.ops.find((o) => o.writes.includes(p))!.reads[0];
    assert.is(p.shape[0], 2 * x.shape[0] * Math.ceil(x.shape.slice(1).reduce((a, b) => a * b, 1) / 100), `${p.name} ${x.name}`);
    assert.is.not(partials(plain.session).shape[0], p.shape[0]);
  } finally {
    for (const r of [plain, tuned]) { r.session.destroy(); r.model.close(); }
  }
  // The tuner's last check (tune_verify.ts) builds and steps both graphs with these choices.
  const check = await compareWholeStep(gpu, target, table, 1);
  assert.ok(check.tunedMs > 0 && check.defaultMs > 0 && check.steps === 1);
});

test('a workgroup tile the adapter cannot run is refused naming the rule; a malformed cached one makes the cache ignored', async () => {
  const gpu = await testGpu();
  const site = collectSites(gpu, target).find((s) => s.kernel === 'conv2d.forward')!;
  // 3 columns do not divide n = 64: no program can be built for it.
  const bad = new TuningTable([[site.kernel, site.key, { workgroupTile: { m: 64, n: 64, k: 16, rows: 4, cols: 3 } }]]);
  let error: unknown;
  try {
    const r = await session(gpu, bad);
    r.session.destroy();
    r.model.close();
  } catch (e) { error = e; }
  assert.ok(error instanceof Error);
  assert.match((error as Error).message, /workgroup tile \{"m":64,"n":64,"k":16,"rows":4,"cols":3\} is invalid \(.*cols divides n.*\); the tile comes from the tuning table \(rerun `densenet-wgsl tune`/);
  assert.ok(error instanceof GraphError, 'a user error (errors.ts): the CLI prints the message alone');
  // Global pool: more lanes than one workgroup has.
  const poolSite = collectSites(gpu, target).find((s) => s.kernel === 'globalAvgPool.forward')!;
  error = undefined;
  try {
    const r = await session(gpu, new TuningTable([[poolSite.kernel, poolSite.key, { lanesPerPlane: 128 }]]));
    r.session.destroy();
    r.model.close();
  } catch (e) { error = e; }
  assert.ok(error instanceof GraphError);
  assert.match((error as Error).message, /lanesPerPlane must be a power of two from 1 to 64, got 128; the lanesPerPlane comes from the tuning table/);

  const dir = mkdtempSync(join(tmpdir(), 'densenet-wgsl-tune-gpu-'));
  try {
    const id = adapterIdentity(gpu.profile);
    const entry = (choice: unknown) => ({ kernel: site.kernel, key: site.key, choice, candidate: 'x', ms: 1, defaultMs: 1, method: 'wall-clock' });
    const bad = [
      { workgroupTile: { m: 0, n: 64, k: 16, rows: 4, cols: 4 } }, { workgroupTile: { ...WORKGROUP_TILES.tiny }, tile: { rows: 4, cols: 4, workgroupSize: 64 } },
      { lanesPerPlane: 3 }, { splitChunk: 0 },
    ];
    for (const choice of bad) {
      writeFileSync(tuningCachePath(id, dir), JSON.stringify({ format: 'densenet-wgsl-tuning', version: 1, adapter: id, entries: [entry(choice)] }));
      const warnings: string[] = [];
      assert.is(await loadTuningCache(id, { dir, warn: (m) => warnings.push(m) }), undefined);
      assert.match(warnings.join('\n'), /is ignored \(a bad entry .*(workgroupTile|lanesPerPlane|splitChunk)/);
    }
    writeFileSync(tuningCachePath(id, dir), JSON.stringify({ format: 'densenet-wgsl-tuning', version: 1, adapter: id, entries: [entry({ workgroupTile: { ...WORKGROUP_TILES.tiny } })] }));
    const loaded = await loadTuningCache(id, { dir, warn: () => assert.unreachable('a good entry') });
    assert.equal(loaded!.table.get(site.kernel, site.key)!.workgroupTile, WORKGROUP_TILES.tiny);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
