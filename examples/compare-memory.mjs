// Example: a model's GPU memory for one training step under each memory strategy: planned on the
// CPU (any model, no GPU needed) and, with --measure, what the engine really allocates for one
// training step on random data (small models only: every strategy compiles and runs a step).
//
//   node examples/compare-memory.mjs --model densenet-bc-100-12 --batch 64
//   node examples/compare-memory.mjs --model digits-tiny --batch 16 --measure
import { parseArgs } from 'node:util';
import { createModel, describeModel, openDevice, planMemory, train } from 'densenet-wgsl';

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'densenet-bc-100-12' }, batch: { type: 'string', default: '64' }, measure: { type: 'boolean', default: false } },
});
const batch = Number(values.batch);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`.padStart(11);

const about = describeModel(values.model);
console.log(`${values.model}: ${about.parameters.toLocaleString('en-US')} parameters, ${(about.multiplyAdds / 1e6).toFixed(1)} M multiply-adds per image; one training step at batch ${batch}:`);
const plans = planMemory(values.model, { batch });

const measured = new Map();
if (values.measure) {
  const device = await openDevice();
  try {
    const [c, h, w] = about.config.inputShape;
    // Random images and labels: memory does not depend on the values.
    const images = Float32Array.from({ length: batch * c * h * w }, () => Math.random());
    const labels = Array.from({ length: batch }, (_, i) => i % about.config.classes);
    for (const { strategy } of plans) {
      const model = createModel(device, values.model, { memory: strategy });
      const result = await train(model, { images, labels, shape: [c, h, w] }, { batch, epochs: 1 });
      measured.set(strategy, result.peakGpuBytes);
      model.close();
    }
  } finally {
    device.close();
  }
}

console.log(`strategy   ${'planned'.padStart(11)}${values.measure ? `${'measured'.padStart(11)}  measured/planned` : ''}`);
for (const p of plans) {
  const m = measured.get(p.strategy);
  console.log(`${p.strategy.padEnd(10)} ${mib(p.totalBytes)}${m === undefined ? '' : `${mib(m)}  ${(m / p.totalBytes).toFixed(3)}`}`);
}
