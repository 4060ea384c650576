// The browser pages: `node scripts/web.mjs build` bundles web/ into web/dist/ (esbuild, platform
// browser: package.json "browser" swaps the core's Node host files for their browser sides);
// `node scripts/web.mjs serve [--port N]` serves web/dist/ on localhost until Ctrl-C.
//
// The Digits page ships a small pretrained model, web/model/digits.ckpt (kept in the repository so a
// build is quick). When it is missing the build makes it: from runs/digits-fast-mnist/best.ckpt
// when `npm start` has written one, else by a short real training run (--limit 6000, 3 epochs:
// about two minutes on a software GPU).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';

const WEB = 'web';
const DIST = join(WEB, 'dist');
const MODEL = join(WEB, 'model', 'digits.ckpt');
const MODEL_INFO = join(WEB, 'model', 'digits.json');
const PAGES = ['digits', 'train', 'bench'];
const TRAIN_ARGS = ['--limit', '6000', '--epochs', '3'];

function run(args, what) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`web build: ${what} failed (exit ${r.status})`);
}

/** The caller's header of a training checkpoint (see src/train/checkpoint.ts for the layout). */
function checkpointHeader(path) {
  const bytes = readFileSync(path);
  const length = bytes.readUInt32LE(12);
  return JSON.parse(bytes.subarray(16, 16 + length).toString('utf8')).header;
}

function ensureDefaultModel() {
  if (existsSync(MODEL) && existsSync(MODEL_INFO)) return;
  mkdirSync(join(WEB, 'model'), { recursive: true });
  const source = 'runs/digits-fast-mnist/best.ckpt';
  let how = 'npm start (runs/digits-fast-mnist/best.ckpt)';
  if (!existsSync(source)) {
    console.log(`web build: no ${MODEL} and no ${source}; training digits-fast (${TRAIN_ARGS.join(' ')}) for the Digits page's default model`);
    if (!existsSync('dist/cli.js')) run(['scripts/build.mjs', '--no-tests'], 'building the CLI');
    const out = mkdtempSync(join(tmpdir(), 'densenet-wgsl-web-'));
    try {
      run(['dist/cli.js', 'train', ...TRAIN_ARGS, '--out', join(out, 'run')], 'training the default model');
      copyFileSync(join(out, 'run', 'best.ckpt'), MODEL);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    how = `densenet-wgsl train ${TRAIN_ARGS.join(' ')}`;
  } else {
    copyFileSync(source, MODEL);
  }
  const header = checkpointHeader(MODEL);
  const info = { model: header.config.name, trainedBy: how, testAccuracy: header.progress?.bestTestAccuracy ?? null, mean: header.mean, std: header.std };
  writeFileSync(MODEL_INFO, JSON.stringify(info, null, 2) + '\n');
  console.log(`web build: wrote ${MODEL} (${info.model}, test accuracy ${(100 * info.testAccuracy).toFixed(2)}%)`);
}

/** The built-in digits for the training page, made once (they only change with the mnist package). */
async function ensureDigitsData() {
  const out = join(DIST, 'data', 'mnist-digits.bin');
  if (existsSync(out)) return;
  mkdirSync(join(DIST, 'data'), { recursive: true });
  const tool = join(DIST, '.build', 'digits_data.js');
  await build({ entryPoints: ['web/build/digits_data.ts'], outfile: tool, bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning' });
  run([tool, out], 'writing the digits data');
}

export async function buildPages() {
  const started = Date.now();
  ensureDefaultModel();
  mkdirSync(DIST, { recursive: true });
  await build({
    entryPoints: PAGES.map((p) => ({ in: `web/${p}/main.ts`, out: `${p}/main` })),
    outdir: DIST, bundle: true, platform: 'browser', format: 'esm', target: 'es2022', sourcemap: 'linked', minify: true, logLevel: 'warning',
  });
  copyFileSync(join(WEB, 'index.html'), join(DIST, 'index.html'));
  for (const p of PAGES) copyFileSync(join(WEB, p, 'index.html'), join(DIST, p, 'index.html'));
  cpSync(join(WEB, 'common', 'style.css'), join(DIST, 'common', 'style.css'));
  cpSync(join(WEB, 'model'), join(DIST, 'model'), { recursive: true });
  await ensureDigitsData();
  rmSync(join(DIST, '.build'), { recursive: true, force: true });
  console.log(`web build: pages in ${DIST}/ (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.map': 'application/json', '.bin': 'application/octet-stream', '.ckpt': 'application/octet-stream', '.svg': 'image/svg+xml', '.png': 'image/png' };

/** A static server of web/dist on 127.0.0.1 (port 0: any free one); resolves to the server once listening. */
export function servePages(port = 8080, root = DIST) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) { res.writeHead(403).end('forbidden'); return; }
    if (existsSync(file) && statSync(file).isDirectory()) {
      if (!path.endsWith('/')) { res.writeHead(301, { location: `${path}/` }).end(); return; }
      file = join(file, 'index.html');
    }
    if (!existsSync(file)) { res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(readFileSync(file));
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [command, ...rest] = process.argv.slice(2);
  try {
    if (command === 'build') {
      await buildPages();
    } else if (command === 'serve') {
      if (!existsSync(join(DIST, 'index.html'))) throw new Error(`web: ${DIST}/ is not built; run npm run web:build (or npm run web)`);
      const i = rest.indexOf('--port');
      const port = i >= 0 ? Number(rest[i + 1]) : Number(process.env.PORT ?? 8080);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`web: --port must be a whole number in [0, 65535], got "${rest[i + 1]}"`);
      const server = await servePages(port).catch((e) => {
        throw new Error(e.code === 'EADDRINUSE' ? `web: port ${port} is in use; pass --port N (e.g. npm run web -- --port 8090)` : `web: ${e.message}`);
      });
      console.log(`serving ${DIST}/ at http://localhost:${server.address().port}/ (Ctrl-C stops)`);
      process.on('SIGINT', () => { server.close(); process.exit(0); });
    } else {
      throw new Error('usage: node scripts/web.mjs build | serve [--port N]');
    }
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
