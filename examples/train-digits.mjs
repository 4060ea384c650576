// Example: train a small DenseNet on the built-in MNIST digits with progress callbacks, save the
// weights (torchvision's format, with class names and normalization) and load them back.
// Ctrl-C stops after the current step and still saves.
//
//   node examples/train-digits.mjs --out digits.safetensors
//   node examples/train-digits.mjs --model digits-small --limit 10000 --epochs 4 --out digits.safetensors --overwrite
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createModel, evaluate, loadDigits, loadModel, openDevice, saveWeights, train } from 'densenet-wgsl';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'digits-tiny' },
    limit: { type: 'string', default: '2000' },
    epochs: { type: 'string', default: '2' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.1' },
    out: { type: 'string', default: 'digits.safetensors' },
    overwrite: { type: 'boolean', default: false },
  },
});

// Refused before any work: a finished training is not lost to a file that cannot be written.
if (existsSync(values.out) && !values.overwrite) {
  console.error(`${values.out} already exists; give --overwrite to replace it, or another --out`);
  process.exit(1);
}

const { train: trainSet, test } = loadDigits({ limit: Number(values.limit) });
// The first run on a machine compiles the GPU programs (minutes on a software adapter): show it.
const device = await openDevice({
  onCompile: (done, total) => { if (process.stderr.isTTY || done === total) process.stderr.write(`\rcompiled ${done}/${total} GPU programs${done === total ? '\n' : ''}`); },
});
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
try {
  const model = createModel(device, values.model);
  console.log(`${model.name}: ${model.parameterCount.toLocaleString('en-US')} parameters; ${trainSet.size} training and ${test.size} test digits`);
  const result = await train(model, trainSet, {
    test, epochs: Number(values.epochs), batch: Number(values.batch), lr: Number(values.lr), signal: stop.signal,
    onStep: (s) => {
      if (s.batch % 10 === 0 || s.batch === s.batches) console.log(`epoch ${s.epoch} step ${s.batch}/${s.batches}: loss ${s.loss.toFixed(4)}, ${s.imagesPerSec.toFixed(1)} images/s`);
    },
    onEpoch: (e) => console.log(`epoch ${e.epoch}/${e.epochs}: train loss ${e.trainLoss.toFixed(4)}, test accuracy ${(100 * e.test.accuracy).toFixed(2)}%`),
  });
  console.log(`${result.status}: ${result.steps} steps in ${result.seconds.toFixed(1)} s, peak GPU memory ${(result.peakGpuBytes / 2 ** 20).toFixed(1)} MiB`);
  await saveWeights(model, values.out, { overwrite: values.overwrite });
  const accuracy = (await evaluate(model, test)).accuracy;
  console.log(`saved ${values.out}; test accuracy ${(100 * accuracy).toFixed(2)}%`);

  // Loaded back, the model knows its classes and its normalization.
  const loaded = await loadModel(device, values.out);
  const again = await evaluate(loaded, test);
  console.log(`reloaded ${values.out}: classes ${loaded.classNames.join(' ')}, test accuracy ${(100 * again.accuracy).toFixed(2)}%`);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  device.close();
}
