// The Digits page: a drawing pad whose digit a DenseNet reads on the visitor's GPU, top-3 updating
// as the stroke goes; the model is the default one shipped with the page or a file the visitor picks.

import { modelFromWeights, readWeights, showProblem, startPage, type Gpu, type LoadedWeights } from '../common/engine.js';
import { InferenceSession } from '../../src/models/session.js';
import type { DenseNetModel } from '../../src/models/model.js';
import { digitFromCanvas, showDigit } from './preprocess.js';

interface Loaded { model: DenseNetModel; session: InferenceSession; weights: LoadedWeights; mean: number[]; std: number[]; label: string }

/** MNIST statistics of the built-in training split, for a safetensors file that does not record them. */
let defaultStats = { mean: [0.1307], std: [0.3081] };
let current: Loaded | undefined;
let gpu: Gpu | undefined;

const pad = document.getElementById('pad') as HTMLCanvasElement;
const preview = document.getElementById('preview') as HTMLCanvasElement;
const predictions = document.getElementById('predictions')!;
const modelLine = document.getElementById('model')!;
const timing = document.getElementById('timing')!;

function normalized(images: Float32Array, mean: number[], std: number[]): Float32Array {
  return images.map((v) => (v - mean[0]) / std[0]);
}

async function load(bytes: Uint8Array, name: string, label: string): Promise<void> {
  const weights = readWeights(bytes, name);
  const [c, h, w] = weights.config.inputShape;
  if (c !== 1 || h !== 28 || w !== 28 || weights.config.classes !== 10) {
    throw new Error(`${name} holds model "${weights.config.name}" for [${weights.config.inputShape.join(', ')}] images and ${weights.config.classes} classes; this page draws 28×28 digits (10 classes)`);
  }
  const model = modelFromWeights(gpu!, weights);
  const session = await InferenceSession.create(model, { batch: 1 });
  current?.session.destroy();
  current?.model.close();
  current = { model, session, weights, mean: weights.mean ?? defaultStats.mean, std: weights.std ?? defaultStats.std, label };
  const accuracy = weights.accuracy !== undefined ? `, test accuracy ${(100 * weights.accuracy).toFixed(2)}%` : '';
  modelLine.textContent = `${label}: ${weights.config.name} (${model.trainableCount.toLocaleString('en-US')} parameters, from a ${weights.kind}${accuracy})`;
  void predictNow();
}

/** Logits of `count` 28×28 images (raw values in [0, 1]) by the loaded model; one session per batch size. */
async function logits(images: Float32Array, count: number): Promise<Float32Array> {
  if (!current) throw new Error('no model loaded');
  const session = count === 1 ? current.session : await InferenceSession.create(current.model, { batch: count });
  try {
    return await session.run(normalized(images, current.mean, current.std));
  } finally {
    if (session !== current.session) session.destroy();
  }
}

function softmax(z: Float32Array): number[] {
  const m = Math.max(...z);
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

let busy = false;
let again = false;

/** Predicts the drawing; while one prediction runs, later strokes only ask for one more. */
async function predictNow(): Promise<void> {
  if (!current) return;
  if (busy) { again = true; return; }
  const digit = digitFromCanvas(pad);
  if (!digit) { predictions.innerHTML = '<p class="muted">Draw a digit.</p>'; return; }
  showDigit(preview, digit);
  busy = true;
  try {
    const t = performance.now();
    const p = softmax(await logits(digit, 1));
    timing.textContent = `${(performance.now() - t).toFixed(1)} ms per prediction`;
    const top = p.map((v, d) => [d, v] as const).sort((a, b) => b[1] - a[1]).slice(0, 3);
    predictions.innerHTML = top.map(([d, v], i) =>
      `<div class="pred${i === 0 ? ' first' : ''}"><span class="digit">${d}</span><span class="bar"><span style="width:${(100 * v).toFixed(1)}%"></span></span><span>${(100 * v).toFixed(1)}%</span></div>`).join('');
  } finally {
    busy = false;
  }
  if (again) { again = false; void predictNow(); }
}

function setUpPad(): void {
  // Every prediction reads the pad back: the first getContext call sets that up.
  const ctx = pad.getContext('2d', { willReadFrequently: true })!;
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, pad.width, pad.height); void predictNow(); };
  clear();
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 20;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  let last: [number, number] | undefined;
  const at = (e: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
  };
  pad.addEventListener('pointerdown', (e) => { pad.setPointerCapture(e.pointerId); last = at(e); ctx.beginPath(); ctx.arc(last[0], last[1], 10, 0, 2 * Math.PI); ctx.fillStyle = '#fff'; ctx.fill(); void predictNow(); });
  pad.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
    void predictNow();
  });
  const end = () => { last = undefined; void predictNow(); };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  document.getElementById('clear')!.addEventListener('click', clear);
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function main(): Promise<void> {
  gpu = await startPage();
  if (!gpu) { modelLine.textContent = 'no model: WebGPU is not available'; return; }
  setUpPad();
  try {
    defaultStats = await (await fetch('../model/digits.json')).json() as typeof defaultStats;
    await load(await fetchBytes('../model/digits.ckpt'), 'digits.ckpt', 'default model');
  } catch (e) {
    showProblem(`The default model did not load: ${(e as Error).message}`, 'Pick a checkpoint or .safetensors file below.');
  }
  (document.getElementById('file') as HTMLInputElement).addEventListener('change', async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      document.getElementById('problem')!.hidden = true;
      await load(new Uint8Array(await file.arrayBuffer()), file.name, file.name);
    } catch (err) {
      showProblem(`${file.name} was not loaded: ${(err as Error).message}`, 'The model loaded before stays in use.');
    }
  });
}

const ready = main().catch((e) => showProblem(`The page failed: ${(e as Error).message}`));
// For the browser tests: the model's logits for given images, compared with Node's on the same weights.
(globalThis as Record<string, unknown>).digitsPage = {
  ready,
  loaded: () => current !== undefined,
  logits: async (images: number[], count: number) => Array.from(await logits(Float32Array.from(images), count)),
};
