// Example: fine-tune a DenseNet on a folder of your own images: the folder's classes become a new
// classifier, the features come from pretrained weights (torchvision's ImageNet ones, or a
// `densenet-wgsl export` of a model trained here), optionally frozen; then evaluate and predict.
//
//   node examples/finetune-folder.mjs --data DIR --model densenet121 --weights densenet121.safetensors --freeze IMAGE...
//   node examples/finetune-folder.mjs --data DIR --val-split 0.2 --model densenet-bc-tiny --epochs 5 --out tuned.safetensors
//
// DIR holds DIR/train/<class>/ and DIR/val/<class>/ (or DIR/<class>/ with --val-split). The IMAGEs,
// if any, are classified by name at the end.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createModel, evaluate, loadImageFolder, loadWeights, openDevice, predict, saveWeights, train } from 'densenet-wgsl';

const { values, positionals: images } = parseArgs({
  options: {
    data: { type: 'string' },
    'val-split': { type: 'string' },
    model: { type: 'string', default: 'densenet-bc-tiny' },
    weights: { type: 'string' },
    freeze: { type: 'boolean', default: false },
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string' },
    out: { type: 'string' },
    overwrite: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
if (!values.data) {
  console.error('usage: node examples/finetune-folder.mjs --data DIR [--val-split F] [--model NAME] [--weights W.safetensors] [--freeze] [--epochs N] [--out F.safetensors] [IMAGE...]');
  process.exit(2);
}
// Refused before any work: a finished training is not lost to a file that cannot be written.
if (values.out && existsSync(values.out) && !values.overwrite) {
  console.error(`${values.out} already exists; give --overwrite to replace it, or another --out`);
  process.exit(1);
}

const device = await openDevice();
try {
  // Image size and transforms follow the model (224 with torchvision's transforms for densenet121).
  const data = await loadImageFolder(values.data, {
    model: values.model, valSplit: values['val-split'] === undefined ? undefined : Number(values['val-split']), onLog: (line) => console.log(line),
  });
  const model = createModel(device, values.model, { classNames: data.classNames });
  if (values.weights) {
    // Every layer but the classifier: the file's head is for its own classes.
    const report = await loadWeights(model, values.weights, { skipClassifier: true });
    console.log(`loaded ${report.loaded} tensors from ${values.weights}; a new classifier for ${data.classNames.length} classes (${data.classNames.join(', ')})`);
  }
  const freeze = values.freeze ? 'features' : 'none';
  // Fine-tuning takes a smaller step than training from scratch.
  const lr = Number(values.lr ?? (values.weights ? 0.01 : 0.1));
  const result = await train(model, data.train, {
    test: data.test, epochs: Number(values.epochs), batch: Number(values.batch), lr, schedule: 'cosine', freeze,
    onEpoch: (e) => console.log(`epoch ${e.epoch}/${e.epochs}: train loss ${e.trainLoss.toFixed(4)}, validation top-1 ${(100 * e.test.accuracy).toFixed(2)}%`),
  });
  console.log(`${result.steps} steps (features ${freeze === 'features' ? 'frozen' : 'trained'}), ${result.imagesPerSec.toFixed(1)} images/s`);
  const e = await evaluate(model, data.test);
  console.log(`validation: ${e.count} images, top-1 ${(100 * e.accuracy).toFixed(2)}%, top-5 ${(100 * e.top5Accuracy).toFixed(2)}%`);
  data.classNames.forEach((name, i) => console.log(`  ${name}: ${(100 * e.perClassAccuracy[i]).toFixed(2)}%`));
  if (images.length > 0) {
    for (const p of await predict(model, images, { top: Math.min(3, data.classNames.length) })) {
      console.log(`${p.input}: ${p.top.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`);
    }
  }
  if (values.out) {
    await saveWeights(model, values.out, { overwrite: values.overwrite });
    console.log(`saved ${values.out} (class names and preprocessing recorded)`);
  }
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  device.close();
}
