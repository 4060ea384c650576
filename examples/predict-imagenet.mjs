// Example: the top ImageNet classes of image files with torchvision's pretrained DenseNet weights.
//
//   node examples/predict-imagenet.mjs --weights densenet121.safetensors cat.jpg dog.png
//
// densenet121.safetensors is torchvision's model converted once (README, "ImageNet weights").
// --model names the architecture when the file does not record it and matches no preset: a preset
// name or a JSON file of DenseNet settings. Images get torchvision's evaluation transform.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModel, openDevice, predict } from 'densenet-wgsl';

const { values, positionals: images } = parseArgs({
  options: { weights: { type: 'string' }, model: { type: 'string' }, top: { type: 'string', default: '5' } },
  allowPositionals: true,
});
if (!values.weights || images.length === 0) {
  console.error('usage: node examples/predict-imagenet.mjs --weights FILE.safetensors [--model NAME|CONFIG.json] [--top N] IMAGE...');
  process.exit(2);
}
const model = values.model?.endsWith('.json') ? JSON.parse(readFileSync(values.model, 'utf8')) : values.model;

const device = await openDevice();
try {
  const network = await loadModel(device, values.weights, model === undefined ? {} : { model });
  console.log(`${network.name}: ${network.parameterCount.toLocaleString('en-US')} parameters, on ${device.adapter.name}`);
  const started = performance.now();
  for (const p of await predict(network, images, { top: Number(values.top) })) {
    console.log(`${p.input}: ${p.top.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`);
  }
  console.log(`${images.length} images in ${((performance.now() - started) / 1000).toFixed(1)} s; peak GPU memory ${(device.memory().peakBytes / 2 ** 20).toFixed(1)} MiB`);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  device.close();
}
