// The house's one-way imports: every src/, bench/ and web/ file may import only from its own room or a
// lower one (base ← gpu ← kernels ← graph ← models ← train/io ← cli; bench and the library API
// (src/api) beside cli; src/index.ts, the package's entry, above them; the browser pages' shared
// code (web/common) and build step (web/build) above everything of the engine's, and the pages
// themselves, which import none of each other, on top), and the
// CLI bundle carries no benchmark code (bench is its own bundle, dist/bench.js, loaded at run time).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { build } from 'esbuild';

const test = suite('imports');

/** Rooms and their floors: a file may import its own room or a room on a lower floor. Rooms on one floor do not import each other. */
const ROOMS: [room: string, floor: number][] = [
  ['src/base', 0], ['src/gpu', 1], ['src/kernels', 2], ['src/graph', 3], ['src/models', 4],
  ['src/train', 5], ['src/io', 5], ['src/cli', 6], ['bench', 6], ['src/api', 6], ['src/index.ts', 7],
  ['web/common', 8], ['web/build', 8], ['web/digits', 9], ['web/train', 9], ['web/bench', 9],
];

function roomOf(path: string): [string, number] | undefined {
  return ROOMS.find(([room]) => path === room || path.startsWith(`${room}/`));
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The string-literal specifiers of a file's import/export-from statements and import() calls (comments removed first). */
export function importSpecifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.push(m[1]);
  return found;
}

/** Every import against the room order, as "FILE imports SPECIFIER (room → room)". */
export function violations(files: { path: string; source: string }[]): string[] {
  const out: string[] = [];
  for (const { path, source } of files) {
    const from = roomOf(path);
    if (!from) { out.push(`${path} is in no room (${ROOMS.map(([r]) => r).join(', ')})`); continue; }
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith('.')) continue; // packages and node: builtins
      const target = normalize(join(dirname(path), specifier)).replace(/\\/g, '/');
      if (target.startsWith('node_modules/')) continue;
      const to = roomOf(target);
      if (to?.[0] === from[0]) continue;
      if (!to) out.push(`${path} imports "${specifier}" (${target} is in no room)`);
      else if (to[1] >= from[1]) out.push(`${path} imports "${specifier}" (${from[0]} may not import ${to[0]})`);
    }
  }
  return out;
}

test('every src/, bench/ and web/ import goes to its own room or a lower one', () => {
  const web = tsFiles('web').filter((path) => !path.startsWith('web/dist/'));
  assert.ok(web.some((path) => path.startsWith('web/digits/')), 'the pages are checked too');
  const files = [...tsFiles('src'), ...tsFiles('bench'), ...web].map((path) => ({ path, source: readFileSync(path, 'utf8') }));
  assert.ok(files.length > 50, `found only ${files.length} files: run from the repository root`);
  const bad = violations(files);
  assert.equal(bad, [], `imports against the room order:\n  ${bad.join('\n  ')}`);
});

test('the checker sees every import form and refuses upward and sideways imports', () => {
  const bad = violations([
    { path: 'src/io/a.ts', source: "import { x } from '../train/checkpoint.js';\n// import { y } from '../cli/args.js';" },
    { path: 'src/cli/b.ts', source: "import type {\n  T,\n} from '../../bench/train.js';\nconst m = await import('../../bench/ops.js');" },
    { path: 'bench/c.ts', source: "export { u } from '../src/cli/args.js';\nimport '../node_modules/x/y.js';\nimport { v } from '../src/models/index.js';" },
    { path: 'src/gpu/d.ts', source: "import { w } from '../base/atomic_file.js'; import { z } from './arena.js';" },
    { path: 'web/train/e.ts', source: "import { p } from '../digits/preprocess.js';\nimport { q } from '../common/engine.js';\nimport { r } from '../../bench/train.js';" },
    { path: 'src/models/f.ts', source: "import { s } from '../../web/common/engine.js';" },
  ]);
  assert.equal(bad, [
    'src/io/a.ts imports "../train/checkpoint.js" (src/io may not import src/train)',
    'src/cli/b.ts imports "../../bench/train.js" (src/cli may not import bench)',
    'src/cli/b.ts imports "../../bench/ops.js" (src/cli may not import bench)',
    'bench/c.ts imports "../src/cli/args.js" (bench may not import src/cli)',
    'web/train/e.ts imports "../digits/preprocess.js" (web/train may not import web/digits)',
    'src/models/f.ts imports "../../web/common/engine.js" (src/models may not import web/common)',
  ]);
});

test('the CLI bundle carries no benchmark code, the bench bundle no CLI code, the library neither', async () => {
  const bundle = async (entry: string) => {
    const result = await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', packages: 'external', write: false, metafile: true, logLevel: 'silent', loader: { '.proto': 'text' } });
    return Object.keys(result.metafile.inputs).map((p) => relative('.', p).replace(/\\/g, '/'));
  };
  const cli = await bundle('src/cli/main.ts');
  assert.ok(cli.includes('src/cli/main.ts'), cli.join(', '));
  assert.equal(cli.filter((p) => p.startsWith('bench/')), [], 'bench files in the CLI bundle');
  const bench = await bundle('bench/commands.ts');
  assert.equal(bench.filter((p) => p.startsWith('src/cli/')), [], 'CLI files in the bench bundle');
  const library = await bundle('src/index.ts');
  assert.ok(library.includes('src/api/train.ts'), library.join(', '));
  assert.equal(library.filter((p) => p.startsWith('src/cli/') || p.startsWith('bench/')), [], 'CLI or bench files in the library bundle');
});

test('`bench ...` runs the bench bundle: its flag errors reach the user as one line (exit 2), no stack', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  for (const [args, message] of [
    [['bench', 'train', '--impls', 'ours-fast'], 'bench train: unknown implementation "ours-fast" in --impls'],
    [['bench', 'train', '--models', 'densenet-bc-41-12'], 'bench train: unknown DenseNet preset "densenet-bc-41-12"'],
    [['bench', 'inference', '--memory', 'tiny'], 'bench inference: --memory must be one of naive, shared, recompute, fused, got "tiny"'],
    [['bench', 'memory', '--depths', '41'], 'bench memory: --depths takes DenseNet-BC depths 6n + 4'],
    [['bench', 'ops', '--reps', '0'], 'bench ops: --reps must be a whole number >= 1, got 0'],
  ] as const) {
    const r = cli(...args);
    assert.is(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.ok(r.stderr.includes(message), `${args.join(' ')}: "${r.stderr}" should say "${message}"`);
    assert.not.match(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
  }
});

test.run();
