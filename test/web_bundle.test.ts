// The pages bundle the engine's core for the browser: no Node built-in, no `webgpu` (Dawn) package and
// no Node globals in what web/ imports; package.json "browser" swaps each Node host file for a browser
// side that exports the same names.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { build } from 'esbuild';

const test = suite('web bundle');
const PAGES = ['web/digits/main.ts', 'web/train/main.ts', 'web/bench/main.ts'];

async function browserBundle(entry: string) {
  const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
  return { inputs: Object.keys(result.metafile.inputs).map((p) => relative('.', p).replace(/\\/g, '/')), text: result.outputFiles[0].text };
}

/** What a page bundle must not hold, as readable lines (empty: clean). */
function nodeOnly(inputs: string[], text: string): string[] {
  const bad = inputs.filter((p) => p.startsWith('node:') || /node_modules\/webgpu\//.test(p) || /src\/base\/host\.ts$|src\/gpu\/(webgpu_host|native_stderr)\.ts$|bench\/train_tfjs_gradients\.ts$/.test(p));
  for (const m of text.matchAll(/\b(process\.(env|pid|argv|stderr)|require\(|__dirname)/g)) bad.push(`uses ${m[0]}`);
  return [...new Set(bad)];
}

for (const entry of PAGES) {
  test(`${entry} bundles for the browser without Node built-ins or Dawn`, async () => {
    let bundle;
    try {
      bundle = await browserBundle(entry);
    } catch (e) {
      const errors = (e as { errors?: { text: string; location?: { file: string } }[] }).errors ?? [];
      assert.unreachable(`${entry} does not bundle for the browser:\n  ${errors.map((x) => `${x.location?.file}: ${x.text}`).join('\n  ') || (e as Error).message}`);
      return;
    }
    assert.ok(bundle.inputs.includes('src/gpu/device.ts'), `the page should carry the engine: ${bundle.inputs.length} inputs`);
    assert.ok(bundle.inputs.includes('src/gpu/webgpu_host.browser.ts') && bundle.inputs.includes('src/base/host.browser.ts'), 'the browser host files');
    assert.equal(nodeOnly(bundle.inputs, bundle.text), [], 'Node-only code in the page bundle');
  });
}

test('the check sees a Node built-in reaching a page (the Node host file imported past the swap)', async () => {
  let failed = '';
  try {
    await browserBundle('src/gpu/native_stderr.ts');
  } catch (e) {
    failed = (e as Error).message;
  }
  assert.match(failed, /node:fs/);
  assert.equal(nodeOnly(['src/gpu/device.ts', 'node_modules/webgpu/index.js'], 'x = process.env.A'), ['node_modules/webgpu/index.js', 'uses process.env']);
});

test('each browser host file exports what its Node side exports', async () => {
  const swaps = (JSON.parse(readFileSync('package.json', 'utf8')) as { browser: Record<string, string> }).browser;
  assert.ok(Object.keys(swaps).length >= 2, 'package.json "browser" lists the swapped host files');
  const exportsOf = async (file: string) => {
    const r = await build({ entryPoints: [file], bundle: false, format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    return Object.values(r.metafile.outputs)[0].exports.sort();
  };
  for (const [nodeSide, browserSide] of Object.entries(swaps)) {
    const nodeFile = nodeSide.replace(/\.js$/, '.ts');
    const browserExports = (await exportsOf(browserSide)).filter((n) => n !== 'WebGpuUnavailableError');
    assert.equal(browserExports, await exportsOf(nodeFile), `${browserSide} against ${nodeFile}`);
  }
});

test.run();
