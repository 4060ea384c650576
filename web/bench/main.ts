// The benchmark page: `bench ops` and `bench train` (bench/ops.ts, bench/train.ts, the CLI's code) run
// in the tab on the visitor's GPU, ours against @tensorflow/tfjs-backend-webgpu on the same device,
// and `bench profile` (bench/profile.ts) times each of our launches of one step; as tables and a
// JSON download that records the adapter and the browser.

import { adapterLine, showProblem, startPage, type Gpu } from '../common/engine.js';
import { runOpsBenchmark, type OpsRow } from '../../bench/ops.js';
import type { Scale } from '../../bench/ops_spec.js';
import { runTrainBenchmark, type TrainRow } from '../../bench/train.js';
import { runProfile } from '../../bench/profile.js';
import { formatProfile } from '../../bench/profile_report.js';

const $ = (id: string) => document.getElementById(id)!;
let gpu: Gpu | undefined;
let record: { ops?: object; train?: object; profile?: object; browser: string; adapter?: object } | undefined;

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
    record = { ...record, browser: navigator.userAgent, adapter: gpu!.profile, ops: { scale, reps, date: new Date().toISOString(), rows } };
    ($('download') as HTMLButtonElement).disabled = false;
    return { rows: rows.length, complete: rows.every((r) => r.oursMs !== null && r.tfjsMs !== null) };
  } finally {
    ($('run') as HTMLButtonElement).disabled = false;
  }
}

const fixed = (v: number | null, digits = 2) => (v === null ? '—' : v.toFixed(digits));

function showTrainRows(rows: TrainRow[]): void {
  $('train-results').querySelector('tbody')!.innerHTML = rows.map((r) => `<tr><td>${r.impl}</td><td>${r.model}</td><td>${r.batch}</td>` +
    `<td>${r.imagesPerSec === null ? `<span class="slower" title="${r.notRunReason ?? ''}">not run</span>` : fixed(r.imagesPerSec)}</td><td>${fixed(r.medianMs, 1)}</td>` +
    `<td>${r.ratioVsTfjsWebgpu === null ? '—' : `${r.ratioVsTfjsWebgpu.toFixed(2)}×`}</td><td>${r.losses.length ? r.losses[0].toFixed(5) : '—'}</td></tr>`).join('');
}

/** `bench train` for one model and batch: ours (fused) and tfjs-webgpu, as the CLI runs it. */
async function runTrain(test: { model?: string; batch?: number; steps?: number } = {}): Promise<Record<string, unknown>> {
  const [chosenModel, chosenBatch] = ($('train-config') as HTMLSelectElement).value.split(':');
  // The browser tests ask for a smaller problem and one timed step: the page's own choices are for people.
  const model = test.model ?? chosenModel, batch = test.batch ?? Number(chosenBatch);
  ($('run-train') as HTMLButtonElement).disabled = true;
  ($('download') as HTMLButtonElement).disabled = true;
  $('log').textContent = '';
  $('train-status').textContent = `running ${model} batch ${batch}… (compiling the GPU programs first)`;
  const started = performance.now();
  try {
    const result = await runTrainBenchmark({
      gpu, models: [model], batches: [batch], impls: ['ours-fused', 'tfjs-webgpu'], command: `web bench page: ${model} batch ${batch}`,
      ...(test.steps ? { steps: test.steps, minSteps: test.steps } : {}),
      log: (line) => { $('log').textContent += `${line}\n`; },
    });
    showTrainRows(result.rows);
    $('train-status').textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s; "vs tfjs-webgpu" above 1 means ours is faster`;
    record = { ...record, browser: navigator.userAgent, adapter: gpu!.profile, train: result };
    ($('download') as HTMLButtonElement).disabled = false;
    return { rows: result.rows.length, complete: result.rows.every((r) => r.imagesPerSec !== null) };
  } finally {
    ($('run-train') as HTMLButtonElement).disabled = false;
  }
}

/** `bench profile` of one model, batch and mode: per-launch GPU times summed into the CLI's tables. */
async function profileStep(test: { model?: string; batch?: number; mode?: 'train' | 'inference'; steps?: number } = {}): Promise<Record<string, unknown>> {
  const [chosenModel, chosenBatch] = ($('profile-config') as HTMLSelectElement).value.split(':');
  const model = test.model ?? chosenModel, batch = test.batch ?? Number(chosenBatch);
  const mode = test.mode ?? ($('profile-mode') as HTMLSelectElement).value as 'train' | 'inference';
  const top = 12;
  ($('run-profile') as HTMLButtonElement).disabled = true;
  $('log').textContent = '';
  $('profile-report').textContent = '';
  $('profile-status').textContent = `profiling ${model} batch ${batch} (${mode})… (compiling the GPU programs first)`;
  const started = performance.now();
  try {
    const report = await runProfile({
      gpu, model, batch, mode, memory: 'fused', steps: test.steps ?? 3, top, command: `web bench page: profile ${model} batch ${batch} ${mode}`,
      log: (line) => { $('log').textContent += `${line}\n`; },
    });
    $('profile-report').textContent = formatProfile(report, top);
    $('profile-status').textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
    record = { ...record, browser: navigator.userAgent, adapter: gpu!.profile, profile: report };
    ($('download') as HTMLButtonElement).disabled = false;
    return { launches: report.header.launches, launchSumMs: report.header.launchSumMs, byRole: report.byRole.map((g) => [g.name, g.launches, g.ms]) };
  } finally {
    ($('run-profile') as HTMLButtonElement).disabled = false;
  }
}

function download(): void {
  if (!record) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(record, null, 2)], { type: 'application/json' }));
  a.download = `densenet-wgsl-bench-${gpu!.profile.name.replace(/[^\w.-]+/g, '_') || 'adapter'}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function main(): Promise<void> {
  gpu = await startPage();
  if (!gpu) { $('status').textContent = 'WebGPU is not available: nothing to measure.'; return; }
  $('status').textContent = `ready on ${adapterLine(gpu)}`;
  ($('run') as HTMLButtonElement).disabled = false;
  ($('run-train') as HTMLButtonElement).disabled = false;
  ($('run-profile') as HTMLButtonElement).disabled = false;
  $('run-profile').addEventListener('click', () => void profileStep().catch((e) => showProblem(`The profile failed: ${(e as Error).message}`)));
  $('run-train').addEventListener('click', () => void runTrain().catch((e) => showProblem(`The training benchmark failed: ${(e as Error).message}`)));
  $('run').addEventListener('click', () => void run().catch((e) => showProblem(`The benchmark failed: ${(e as Error).message}`)));
  $('download').addEventListener('click', download);
}

const ready = main().catch((e) => showProblem(`The page failed: ${(e as Error).message}`));
// For the browser tests: run with the page's current settings.
(globalThis as Record<string, unknown>).benchPage = { ready, run, runTrain, profileStep, record: () => record };
