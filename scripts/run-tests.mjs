// Runs each built test file in its own Node process (a crash or hang fails that file alone),
// echoes uvu's output, and ends with the totals line CI reads: `N passed, N failed`.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

const filter = process.argv[2];
const files = readdirSync('dist/test').filter((f) => f.endsWith('.test.js') && (!filter || f.includes(filter))).sort();
const perFileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 600_000);
let passed = 0;
let failed = 0;
for (const file of files) {
  const started = Date.now();
  const { code, output } = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', `dist/test/${file}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (d) => { output += d; process.stdout.write(d); };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => { output += `\n${file}: timed out after ${perFileTimeoutMs} ms\n`; child.kill('SIGKILL'); }, perFileTimeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
  const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const bad = total - ok - skipped;
  passed += ok;
  // A file that crashed before reporting, or exited non-zero with nothing failed, counts as one failure.
  const fileFailed = bad > 0 ? bad : code !== 0 || total === 0 ? 1 : 0;
  failed += fileFailed;
  console.log(`# ${file}: ${ok} passed, ${fileFailed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
