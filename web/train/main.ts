// The training page: the digits model trained on the built-in MNIST digits in the tab, with the
// engine's own TrainingSession (the step `densenet-wgsl train` takes), a live plot, images/s, a stop
// button and the trained weights as a .safetensors download (loadable by the Digits page).

import { showProblem, startPage, type Gpu } from '../common/engine.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { CONFIG_METADATA_KEY, torchvisionStateDict } from '../../src/io/torchvision.js';
import { DenseNetModel } from '../../src/models/model.js';
import { preset } from '../../src/models/presets.js';
import { InferenceSession, TrainingSession } from '../../src/models/session.js';
import type { OptimizerConfig } from '../../src/graph/ops/optimizer.js';
import { BatchStream } from '../../src/train/data/batches.js';
import type { Dataset } from '../../src/train/data/core.js';
import { evaluate } from '../../src/train/evaluate.js';
import { learningRate, PAPER_STEP_SCHEDULE } from '../../src/train/schedule.js';
import { drawPlot, type PlotData } from './plot.js';

interface Digits { train: Dataset; test: Dataset; mean: number[]; std: number[] }

const $ = (id: string) => document.getElementById(id)!;
const input = (id: string) => $(id) as HTMLInputElement;
const stats = $('stats');
let gpu: Gpu | undefined;
let digits: Digits | undefined;
let trained: { model: DenseNetModel; mean: number[]; std: number[] } | undefined;
let stopAsked = false;

/** The paper's SGD as `train` uses it by default. */
const sgd = (lr: number): OptimizerConfig => ({ kind: 'sgd', lr, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });

/** Reads web/dist/data/mnist-digits.bin (written by web/build/digits_data.ts). */
async function loadDigits(): Promise<Digits> {
  const r = await fetch('../data/mnist-digits.bin');
  if (!r.ok) throw new Error(`the built-in digits did not load (HTTP ${r.status}); rebuild the pages with npm run web:build`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const length = new DataView(bytes.buffer).getUint32(0, true);
  const info = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as { shape: [number, number, number]; train: number; test: number; mean: number[]; std: number[] };
  const per = info.shape[0] * info.shape[1] * info.shape[2];
  let at = (4 + length + 3) & ~3;
  const take = (n: number) => { const a = bytes.subarray(at, at + n); at += n; return a; };
  const images = (n: number) => Float32Array.from(take(n * per), (v) => v / 255);
  const trainImages = images(info.train), testImages = images(info.test);
  const labels = (n: number) => Uint32Array.from(take(n));
  const names = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  const split = (imgs: Float32Array, lbls: Uint32Array): Dataset => ({ name: 'mnist', images: imgs, labels: lbls, shape: info.shape, classes: 10, classNames: names });
  return { train: split(trainImages, labels(info.train)), test: split(testImages, labels(info.test)), mean: info.mean, std: info.std };
}

function setRunning(running: boolean): void {
  (input('start') as unknown as HTMLButtonElement).disabled = running;
  (input('stop') as unknown as HTMLButtonElement).disabled = !running;
  (input('download') as unknown as HTMLButtonElement).disabled = running || !trained;
}

async function train(): Promise<void> {
  const epochs = Number(input('epochs').value), batch = Number(input('batch').value), baseLr = Number(input('lr').value), seed = Number(input('seed').value);
  if (!(Number.isInteger(epochs) && epochs >= 1 && Number.isInteger(batch) && batch >= 1 && baseLr >= 0 && Number.isInteger(seed) && seed >= 0)) {
    showProblem('Epochs and batch must be whole numbers ≥ 1, the learning rate ≥ 0 and the seed a whole number ≥ 0.');
    return;
  }
  $('problem').hidden = true;
  const d = digits!;
  const config = { ...preset((input('model') as unknown as HTMLSelectElement).value), classes: 10 };
  trained?.model.close();
  trained = undefined;
  const model = DenseNetModel.create(gpu!, config, seed);
  const stream = new BatchStream(d.train, { batch, seed, shuffle: true, augment: false, dropLast: true, mean: d.mean, std: d.std });
  const perEpoch = stream.batchesPerEpoch();
  const plot: PlotData = { loss: [], accuracy: [], testAccuracy: [], totalSteps: epochs * perEpoch };
  stopAsked = false;
  $('epoch-results').textContent = '';
  setRunning(true);
  stats.textContent = 'compiling the GPU programs…';
  const session = await TrainingSession.create(model, { batch, memory: 'fused', optimizer: sgd(baseLr), seed });
  const inference = await InferenceSession.create(model, { batch: 100 });
  let seen = 0, correct = 0;
  const started = performance.now();
  try {
    for (let epoch = 0; epoch < epochs && !stopAsked; epoch++) {
      const lr = learningRate(PAPER_STEP_SCHEDULE, baseLr, epoch, epochs);
      for (let b = stream.next(); b && !stopAsked; b = stream.next()) {
        const r = await session.step(b.images, b.labels, lr);
        seen += b.count; correct += r.correct;
        plot.loss.push(r.loss);
        plot.accuracy.push(correct / seen);
        const perSec = seen / ((performance.now() - started) / 1000);
        stats.innerHTML = `<span>epoch ${epoch + 1}/${epochs}, batch ${b.indexInEpoch + 1}/${perEpoch}</span><span>loss ${r.loss.toFixed(4)}</span>` +
          `<span>train accuracy ${(100 * correct / seen).toFixed(1)}%</span><span>${perSec.toFixed(1)} images/s</span><span>lr ${lr}</span>`;
        if (plot.loss.length % 5 === 1) drawPlot($('plot') as HTMLCanvasElement, plot);
      }
      if (stopAsked) break;
      const test = await evaluate(inference, d.test, d.mean, d.std);
      plot.testAccuracy.push({ step: plot.loss.length, value: test.accuracy });
      $('epoch-results').insertAdjacentHTML('beforeend', `<span><b>test accuracy after epoch ${epoch + 1}: ${(100 * test.accuracy).toFixed(2)}%</b></span>`);
    }
    drawPlot($('plot') as HTMLCanvasElement, plot);
    trained = { model, mean: d.mean, std: d.std };
    $('epoch-results').insertAdjacentHTML('beforeend', `<span>${stopAsked ? 'stopped' : 'done'} after ${plot.loss.length} steps</span>`);
  } catch (e) {
    model.close();
    showProblem(`Training failed: ${(e as Error).message}`);
  } finally {
    session.destroy();
    inference.destroy();
    setRunning(false);
  }
}

/** The trained weights as torchvision-named safetensors with the model config (as `densenet-wgsl export` writes). */
async function weightsFile(model: DenseNetModel, mean: number[], std: number[]): Promise<Uint8Array> {
  const params = await model.readParameters();
  return encodeSafetensors(torchvisionStateDict(model.arch, params), {
    format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(model.config), 'densenet_wgsl.mean': JSON.stringify(mean), 'densenet_wgsl.std': JSON.stringify(std),
  });
}

async function download(): Promise<void> {
  if (!trained) return;
  const bytes = await weightsFile(trained.model, trained.mean, trained.std);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  a.download = `${trained.model.config.name}-tab.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/**
 * For the browser tests: one training step of `model` initialized from `seed` on the given
 * (normalized, NCHW) batch, returning the loss and every parameter after the update.
 */
async function oneStep(o: { model: string; seed: number; images: number[]; labels: number[]; lr: number }): Promise<{ loss: number; correct: number; params: Record<string, number[]> }> {
  const model = DenseNetModel.create(gpu!, { ...preset(o.model), classes: 10 }, o.seed);
  const session = await TrainingSession.create(model, { batch: o.labels.length, memory: 'fused', optimizer: sgd(o.lr), seed: o.seed });
  try {
    const r = await session.step(Float32Array.from(o.images), Uint32Array.from(o.labels), o.lr);
    const params: Record<string, number[]> = {};
    for (const [name, v] of await model.readParameters()) params[name] = Array.from(v);
    return { ...r, params };
  } finally {
    session.destroy();
    model.close();
  }
}

async function main(): Promise<void> {
  gpu = await startPage();
  if (!gpu) { stats.textContent = 'WebGPU is not available: nothing can train here.'; return; }
  digits = await loadDigits();
  stats.innerHTML = `<span class="muted">${digits.train.labels.length} training and ${digits.test.labels.length} test digits loaded; press Train.</span>`;
  $('start').addEventListener('click', () => void train());
  $('stop').addEventListener('click', () => { stopAsked = true; });
  $('download').addEventListener('click', () => void download());
  setRunning(false);
}

const ready = main().catch((e) => showProblem(`The page failed: ${(e as Error).message}`));
(globalThis as Record<string, unknown>).trainPage = { ready, oneStep };
