// Runs each built test file in its own Node process (a crash or hang fails that file alone),
// echoes uvu's output, and ends with the totals line CI reads: `N passed, N failed`.
//
// A file is stopped, and counted as one failure with a line naming it and why, when it
// - has used TEST_FILE_CPU_LIMIT_S CPU-seconds (default 600; its process and every process it
//   started): too slow or looping. CPU time, not wall-clock time, so that a machine busy with other
//   work (the GPU is software here, so tests are CPU-bound) stretches a file's time but not its budget;
// - has used under 1 CPU-second in TEST_FILE_IDLE_LIMIT_S seconds (default 180): waiting on
//   something that will not come (every test here computes; none sleeps that long);
// - has run TEST_FILE_TIMEOUT_MS of wall-clock time (default 3,600,000 = 60 min): a backstop.
// Where /proc is missing (not Linux) only the wall-clock limit applies, at 600 s by default.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const filter = process.argv[2];
const files = readdirSync('dist/test').filter((f) => f.endsWith('.test.js') && (!filter || f.includes(filter))).sort();
const hasProc = (() => { try { readFileSync('/proc/self/stat'); return true; } catch { return false; } })();
const cpuLimitS = Number(process.env.TEST_FILE_CPU_LIMIT_S ?? 600);
const idleLimitS = Number(process.env.TEST_FILE_IDLE_LIMIT_S ?? 180);
const wallLimitMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? (hasProc ? 3_600_000 : 600_000));
const CHECK_EVERY_MS = 5000;
const TICKS_PER_S = 100; // Linux USER_HZ

/** CPU-seconds used by `root` and its live descendants (each including the children it has reaped). */
function treeCpuSeconds(root) {
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    // Fields after the command name (which may hold spaces): state ppid ... utime(14) stime cutime cstime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
  }
  let ticks = 0;
  for (const [pid, p] of procs) {
    for (let at = pid, hops = 0; at > 1 && hops < 64; at = procs.get(at)?.ppid ?? 0, hops++) {
      if (at === root) { ticks += p.ticks; break; }
    }
  }
  return ticks / TICKS_PER_S;
}

/** CPU-seconds of this runner's finished children (a file's process and all it started, once it has exited). */
function reapedChildrenCpuSeconds() {
  if (!hasProc) return NaN;
  const f = readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_S;
}

let passed = 0;
let failed = 0;
for (const file of files) {
  const started = Date.now();
  const cpuBefore = reapedChildrenCpuSeconds();
  const { code, output, stopped } = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', `dist/test/${file}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stopped;
    const onData = (d) => { output += d; process.stdout.write(d); };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const stop = (why) => {
      if (stopped) return;
      const load = `load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`;
      stopped = `stopped after ${((Date.now() - started) / 1000).toFixed(0)} s (${load}): ${why}`;
      process.stdout.write(`\n${file}: ${stopped}\n`);
      child.kill('SIGKILL');
    };
    let lastCpu = 0;
    let lastProgressAt = Date.now();
    const watch = setInterval(() => {
      if (Date.now() - started >= wallLimitMs) return stop(`ran past the wall-clock limit of ${wallLimitMs / 1000} s (TEST_FILE_TIMEOUT_MS)`);
      if (!hasProc) return;
      const cpu = treeCpuSeconds(child.pid);
      if (cpu >= cpuLimitS) return stop(`used ${cpu.toFixed(0)} CPU-seconds, the limit (TEST_FILE_CPU_LIMIT_S=${cpuLimitS}): too slow, or looping`);
      if (cpu - lastCpu >= 1) { lastCpu = cpu; lastProgressAt = Date.now(); }
      if (Date.now() - lastProgressAt >= idleLimitS * 1000) {
        stop(`used under 1 CPU-second in the last ${idleLimitS} s (TEST_FILE_IDLE_LIMIT_S): hung, waiting on something that does not come`);
      }
    }, CHECK_EVERY_MS);
    child.on('close', (code) => { clearInterval(watch); resolve({ code, output, stopped }); });
  });
  const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const bad = total - ok - skipped;
  passed += ok;
  // A file that crashed before reporting, or exited non-zero with nothing failed, counts as one failure.
  const fileFailed = bad > 0 ? bad : code !== 0 || total === 0 ? 1 : 0;
  failed += fileFailed;
  const cpu = reapedChildrenCpuSeconds() - cpuBefore;
  console.log(`# ${file}: ${ok} passed, ${fileFailed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)` +
    `${Number.isNaN(cpu) ? '' : ` [${cpu.toFixed(1)} CPU-s]`}${stopped ? ` — ${stopped}` : ''}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
