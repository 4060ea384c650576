// The benchmark page: `bench ops` (bench/ops.ts, unchanged) run in the tab on the visitor's GPU, ours
// against @tensorflow/tfjs-backend-webgpu on the same device, as a table and a JSON download that
// records the adapter and the browser.

import { adapterLine, showProblem, startPage, type Gpu } from '../common/engine.js';
import { runOpsBenchmark, type OpsRow } from '../../bench/ops.js';
import type { Scale } from '../../bench/ops_spec.js';

const $ = (id: string) => document.getElementById(id)!;
let gpu: Gpu | undefined;
let record: object | undefined;

const ms = (v: number | null, error?: string) => (v === null ? `<span class="slower" title="${error ?? ''}">failed</span>` : v.toFixed(3));

function showRows(rows: OpsRow[]): void {
  $('results').querySelector('tbody')!.innerHTML = rows.map((r) => `<tr><td>${r.op}</td><td>${r.pass}</td><td>${ms(r.oursMs, r.oursError)}</td><td>${ms(r.tfjsMs, r.tfjsError)}</td>` +
    `<td class="${r.ratio === null ? '' : r.ratio >= 1 ? 'faster' : 'slower'}">${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`}</td>` +
    `<td>${r.maxRelDiff === null ? '—' : r.maxRelDiff.toExponential(1)}</td></tr>`).join('');
}

async function run(): Promise<Record<string, unknown>> {
  const scale = ($('scale') as HTMLSelectElement).value as Scale;
  const reps = Number(($('reps') as HTMLInputElement).value);
  if (!Number.isInteger(reps) || reps < 1) throw new Error('repetitions must be a whole number ≥ 1');
  ($('run') as HTMLButtonElement).disabled = true;
  ($('download') as HTMLButtonElement).disabled = true;
  $('log').textContent = '';
  $('status').textContent = 'running… (the first pass of each op compiles its GPU programs)';
  const started = performance.now();
  try {
    const rows = await runOpsBenchmark({ gpu, scale, reps, warmup: 1, log: (line) => { $('log').textContent += `${line}\n`; } });
    showRows(rows);
    const seconds = (performance.now() - started) / 1000;
    $('status').textContent = `done in ${seconds.toFixed(1)} s: ${rows.length} measurements; tfjs / ours above 1 means ours is faster`;
    record = { benchmark: 'ops', scale, reps, date: new Date().toISOString(), browser: navigator.userAgent, adapter: gpu!.profile, rows };
    ($('download') as HTMLButtonElement).disabled = false;
    return { rows: rows.length, complete: rows.every((r) => r.oursMs !== null && r.tfjsMs !== null) };
  } finally {
    ($('run') as HTMLButtonElement).disabled = false;
  }
}

function download(): void {
  if (!record) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(record, null, 2)], { type: 'application/json' }));
  a.download = `densenet-wgsl-bench-ops-${gpu!.profile.name.replace(/[^\w.-]+/g, '_') || 'adapter'}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function main(): Promise<void> {
  gpu = await startPage();
  if (!gpu) { $('status').textContent = 'WebGPU is not available: nothing to measure.'; return; }
  $('status').textContent = `ready on ${adapterLine(gpu)}`;
  ($('run') as HTMLButtonElement).disabled = false;
  $('run').addEventListener('click', () => void run().catch((e) => showProblem(`The benchmark failed: ${(e as Error).message}`)));
  $('download').addEventListener('click', download);
}

const ready = main().catch((e) => showProblem(`The page failed: ${(e as Error).message}`));
// For the browser tests: run with the page's current settings.
(globalThis as Record<string, unknown>).benchPage = { ready, run, record: () => record };
