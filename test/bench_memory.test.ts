import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMemoryBenchmark } from '../bench/memory.js';
import { deepestWithin, evaluateFit, fitGrowth, fitPolynomial } from '../bench/memory_fit.js';
import { memorySvg } from '../bench/memory_svg.js';
import { MEMORY_STRATEGIES } from '../src/models/densenet_graph.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('bench memory');
test.after(closeTestGpu);

const close = (a: number, b: number, rtol: number) => Math.abs(a - b) <= rtol * Math.abs(b);

test('least squares recovers a known quadratic and a known line exactly; the growth verdict follows the curvature', () => {
  const depths = [40, 64, 100, 136, 172, 208, 250];
  const quad = depths.map((d) => 1.457e-4 * d * d + 8.6e-3 * d - 0.02);
  const q = fitPolynomial(depths, quad, 2);
  assert.ok(close(q.coefficients[2], 1.457e-4, 1e-9), `a = ${q.coefficients[2]}`);
  assert.ok(close(q.coefficients[1], 8.6e-3, 1e-9), `b = ${q.coefficients[1]}`);
  assert.ok(close(q.coefficients[0], -0.02, 1e-7), `c = ${q.coefficients[0]}`);
  assert.ok(q.r2 > 1 - 1e-12 && q.maxRelativeResidual < 1e-10);
  // Depths in the thousands stay well conditioned.
  const deep = [1000, 1500, 2000, 3000];
  const q2 = fitPolynomial(deep, deep.map((d) => 2e-7 * d * d + 3e-3 * d + 5), 2);
  assert.ok(close(q2.coefficients[2], 2e-7, 1e-8) && close(q2.coefficients[1], 3e-3, 1e-8) && close(q2.coefficients[0], 5, 1e-8));
  const line = fitPolynomial(depths, depths.map((d) => 4.8e-3 * d + 0.01), 1);
  assert.ok(close(line.coefficients[1], 4.8e-3, 1e-10) && close(line.coefficients[0], 0.01, 1e-8));
  // A line through quadratic points misses them; a known least-squares line through 3 points.
  const l2 = fitPolynomial([0, 1, 2], [0, 1, 4], 1);
  assert.ok(close(l2.coefficients[1], 2, 1e-12) && close(l2.coefficients[0], -1 / 3, 1e-12), `${l2.coefficients}`);
  assert.ok(close(l2.r2, 1 - 1 / 13, 1e-12), `R² ${l2.r2}`);
  assert.ok(close(evaluateFit(q, 300), 1.457e-4 * 9e4 + 8.6e-3 * 300 - 0.02, 1e-9));
  const g1 = fitGrowth(depths, quad);
  assert.is(g1.explainedBy, 'quadratic');
  assert.ok(g1.linear.r2 < g1.quadratic.r2);
  const g2 = fitGrowth(depths, depths.map((d) => 4.8e-3 * d + 0.01 + 6e-7 * d * d));
  assert.is(g2.explainedBy, 'linear', `max residual of the line ${g2.linear.maxRelativeResidual}`);
  assert.ok(g2.quadraticShareAtMax > 0.02 && g2.quadraticShareAtMax < 0.04, `${g2.quadraticShareAtMax}`);
  assert.throws(() => fitPolynomial([1, 2], [1, 2], 2), /at least 3 points/);
});

test('deepest within a budget: the largest fitting n, found by doubling and bisection, monotone in the budget', () => {
  const f = (n: number) => 3 * n * n + 7 * n + 100;
  const brute = (budget: number) => { let best: number | null = null; for (let n = 1; n <= 5000; n++) if (f(n) <= budget) best = n; return best; };
  let previous = 0;
  for (const budget of [50, 110, 117, 130, 1e3, 12345, 1e5, 3e6, 7.5e7]) {
    const r = deepestWithin(budget, f);
    assert.is(r.n, brute(budget), `budget ${budget}`);
    if (r.n !== null) {
      assert.ok(f(r.n) <= budget && f(r.n + 1) > budget);
      assert.is(r.bytes, f(r.n));
      assert.is(r.nextBytes, f(r.n + 1));
      assert.ok(r.n >= previous, 'a larger budget never gives a shallower network');
      previous = r.n;
      assert.ok(r.evaluations <= 2 * Math.log2(r.n + 2) + 3, `${r.evaluations} evaluations for n = ${r.n}`);
    } else {
      assert.is(r.nextBytes, f(1));
    }
  }
  // A cap on n that still fits.
  const capped = deepestWithin(1e12, f, 1, 40);
  assert.is(capped.n, 40);
  assert.is(capped.nextBytes, null);
});

/** Checks that every tag is closed in order and attribute quotes balance (enough for our generator). */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, closing, name, attrs, selfClosing] = m;
    if ((attrs.match(/"/g) ?? []).length % 2 !== 0) return false;
    if (closing) { if (stack.pop() !== name) return false; } else if (!selfClosing) stack.push(name);
  }
  return stack.length === 0 && !/<[^>]*</.test(xml.replace(/<!--.*?-->/g, ''));
}

test('the SVG is well-formed, with one polyline per strategy, measured circles and tfjs marks', () => {
  const series = MEMORY_STRATEGIES.map((s, i) => ({
    name: s, color: '#123456', planned: [40, 100, 250].map((d) => ({ depth: d, bytes: (i + 1) * d * 1e7 })),
    measured: i === 0 ? [{ depth: 40, bytes: 4.1e8 }] : [], deepest: 1000 + i,
  }));
  const svg = memorySvg({ title: 'a <b> & "c"', series, tfjs: [{ depth: 40, bytes: 1e9, lowerBound: false }, { depth: 100, bytes: 3e9, lowerBound: true }], budgetBytes: 12e9, budgetLabel: '12 GB', references: [{ depth: 154, label: 'ref' }] });
  assert.ok(wellFormed(svg), 'tags balance');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  const polylines = [...svg.matchAll(/<polyline class="planned" data-strategy="(\w+)" points="([^"]+)"/g)];
  assert.equal(polylines.map((p) => p[1]), [...MEMORY_STRATEGIES]);
  for (const p of polylines) {
    const pts = p[2].split(' ').map((xy) => xy.split(',').map(Number));
    assert.is(pts.length, 3);
    for (const [x, y] of pts) assert.ok(Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0 && x < 960 && y < 560, `${x},${y}`);
    assert.ok(pts[0][0] < pts[1][0] && pts[1][1] < pts[0][1], 'depth runs right, memory up');
  }
  assert.is((svg.match(/class="measured"/g) ?? []).length, 1);
  assert.is((svg.match(/class="tfjs"/g) ?? []).length, 1);
  assert.is((svg.match(/class="tfjs lower-bound"/g) ?? []).length, 1);
  assert.is((svg.match(/class="deepest"/g) ?? []).length, 4);
  assert.match(svg, /a &lt;b&gt; &amp; &quot;c&quot;/);
});

test('tiny run: the arena holds exactly the plan per category (by construction; test/memory_measured checks real memory), RSS rows, deepest rows, fits, JSON and SVG; tfjs stopped at a cap gives a lower bound', async () => {
  const gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
  const json = join(dir, 'memory.json');
  const svgFile = join(dir, 'memory.svg');
  const tiny = { depths: [10, 16, 22], growthRate: 4, inputShape: [3, 8, 8] as [number, number, number], batch: 2, extraDepths: [28, 34, 52], gpu, log: () => {} };
  try {
    const lines: string[] = [];
    const r = await runMemoryBenchmark({ ...tiny, budgetBytes: 1.2e6, measure: 'all', json, svg: svgFile, command: 'test', log: (l) => lines.push(l) });
    for (const s of MEMORY_STRATEGIES) {
      const mine = r.rows.filter((x) => x.strategy === s);
      assert.ok(mine.length >= 3, s);
      for (const row of mine) {
        assert.is(row.batch, 2);
        assert.ok(row.plannedPeakBytes! > 0 && Number.isFinite(row.plannedPeakBytes!));
        if (row.depth <= 22) {
          // The arena allocates exactly the plan; the measured peak only adds the launches' uniform buffers.
          assert.ok(row.measuredPeakBytes !== null, `${s} ${row.depth}: ${row.measureNote}`);
          for (const c of ['parameters', 'gradients', 'optimizer', 'activations', 'workspace', 'io']) {
            assert.is(row.measuredByCategory![c], row.plannedByCategory![c], `${s} depth ${row.depth} ${c}`);
          }
          assert.is(row.measuredPeakBytes! - row.plannedPeakBytes!, row.measuredByCategory!.uniforms);
          // The resident set (software adapter): too small here to compare with the plan (test/memory_measured does), but measured.
          if (gpu.adapter.isSoftware) {
            assert.ok(Number.isFinite(row.rssGrowthBytes) && Number.isFinite(row.gpuPagesGrowthBytes), `${s} ${row.depth}: RSS growth ${row.rssGrowthBytes}, GPU pages ${row.gpuPagesGrowthBytes} (${row.rssNote})`);
            assert.ok(row.stepPlannedBytes! > 0 && row.stepPlannedBytes! < row.plannedPeakBytes!, `${s} ${row.depth}: the step's planned bytes leave out the parameters`);
          }
        }
      }
      const planned = mine.map((x) => x.plannedPeakBytes!);
      assert.equal(planned, [...planned].sort((a, b) => a - b), `${s}: deeper needs more`);
    }
    const tfjs = r.rows.filter((x) => x.strategy === 'tfjs-webgpu');
    assert.equal(tfjs.map((x) => x.depth), [10, 16, 22]);
    for (const t of tfjs) assert.ok(t.measuredPeakBytes! > 0 && !t.measuredIsLowerBound, `tfjs ${t.depth}: ${t.measureNote}`);

    assert.equal(r.deepest.map((d) => d.strategy), [...MEMORY_STRATEGIES]);
    for (const d of r.deepest) {
      assert.ok(d.deepestIn12GB !== null && (d.deepestIn12GB - 4) % 6 === 0, `${d.strategy}: ${d.deepestIn12GB}`);
      assert.ok(d.plannedPeakBytes! <= 1.2e6 && d.nextDepthPlannedBytes! > 1.2e6);
      assert.is(d.nextDepth, d.deepestIn12GB + 6);
    }
    // The fused strategy stores the least, so it reaches at least as deep as naive.
    const depthOf = (s: string) => r.deepest.find((d) => d.strategy === s)!.deepestIn12GB!;
    assert.ok(depthOf('fused') >= depthOf('naive') && depthOf('shared') >= depthOf('naive'));
    assert.equal(r.fits.map((f) => f.strategy), [...MEMORY_STRATEGIES, 'tfjs-webgpu']);

    if (gpu.adapter.isSoftware) {
      assert.match(lines.join('\n'), /RSS growth \(ratio\), GPU pages \(ratio\) \/ step planned/);
      assert.match(lines.join('\n'), /\| 10 +\| fused .*\| -?\d\.\d{4} \(-?\d+\.\d\d\), GPU pages -?\d\.\d{4} \(-?\d+\.\d\d\) \/ \d\.\d{4} +\|/);
    }
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { header: Record<string, unknown>; rows: Record<string, unknown>[]; deepest: Record<string, unknown>[] };
    for (const row of parsed.rows) for (const k of ['strategy', 'depth', 'batch', 'plannedPeakBytes', 'measuredPeakBytes']) assert.ok(k in row, k);
    if (gpu.adapter.isSoftware) assert.ok(parsed.rows.some((row) => typeof row.rssGrowthBytes === 'number'), 'the JSON rows carry the RSS growth');
    for (const row of parsed.deepest) for (const k of ['strategy', 'deepestIn12GB']) assert.ok(k in row, k);
    assert.is(parsed.header.bindingLimitBytes, gpu.limits.maxStorageBufferBindingSize);
    const svg = readFileSync(svgFile, 'utf8');
    assert.ok(wellFormed(svg));
    assert.is((svg.match(/<polyline class="planned"/g) ?? []).length, 4);

    // A cap below tfjs's pool: the step is stopped and the row is a lower bound.
    const capped = await runMemoryBenchmark({ ...tiny, depths: [10, 16], budgetBytes: 1e12, maxSearchDepth: 40, measure: 'all', tfjsMemoryCapBytes: 2e5 });
    // Everything fits 1 TB: the search stops at its maximum depth and says it did not look deeper.
    for (const d of capped.deepest) assert.equal([d.deepestIn12GB, d.nextDepthPlannedBytes], [40, null]);
    const t = capped.rows.filter((x) => x.strategy === 'tfjs-webgpu');
    assert.is(t.length, 2);
    for (const x of t) {
      assert.ok(x.measuredIsLowerBound && x.measuredPeakBytes! > 2e5, `${JSON.stringify(x)}`);
      assert.match(x.measureNote!, /stopped at the 0\.0 GB cap/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.not.throws(() => gpu.arena.free(gpu.zeros('after', 'workspace', 4)), 'the lent device is still open');
});

test.run();
