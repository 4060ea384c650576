import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { countParameters, describeDenseNet, multiplyAdds } from '../src/models/architecture.js';
import { DenseNetConfigError, type DenseNetConfig } from '../src/models/densenet_config.js';
import { DEFAULT_DIGITS_PRESET, preset, PRESETS } from '../src/models/presets.js';

const test = suite('presets');

// Published trainable parameter counts: the DenseNet paper's CIFAR models and torchvision's ImageNet models.
const PUBLISHED: Record<string, number> = {
  'densenet-40-12': 1_019_722,
  'densenet-100-12': 6_979_642,
  'densenet-100-24': 27_249_082,
  'densenet-bc-100-12': 769_162,
  'densenet-bc-250-24': 15_324_406,
  'densenet-bc-190-40': 25_624_430,
  densenet121: 7_978_856,
  densenet169: 14_149_480,
  densenet201: 20_013_928,
  densenet161: 28_681_000,
};

for (const [name, expected] of Object.entries(PUBLISHED)) {
  test(`${name} has exactly ${expected.toLocaleString('en-US')} trainable parameters`, () => {
    assert.is(countParameters(preset(name)), expected);
  });
}

/**
 * An independent count from the closed form, not from the layer list: per dense layer with c input
 * channels 2c + (BC ? c·4k + 2·4k + 4k·9·k : 9·c·k); per transition 2C + C·⌊θC⌋; stem; norm5; classifier.
 */
function closedFormCount(c: DenseNetConfig): number {
  const k = c.growthRate;
  const w = c.bottleneckWidth * k;
  let total = c.inputShape[0] * c.initialFeatures * (c.stem === 'imagenet' ? 49 : 9) + (c.stem === 'imagenet' ? 2 * c.initialFeatures : 0);
  let ch = c.initialFeatures;
  c.blocks.forEach((n, b) => {
    for (let l = 0; l < n; l++, ch += k) total += 2 * ch + (c.bottleneck ? ch * w + 2 * w + w * 9 * k : 9 * ch * k);
    if (b < c.blocks.length - 1) {
      const out = Math.floor(c.compression * ch);
      total += 2 * ch + ch * out;
      ch = out;
    }
  });
  return total + 2 * ch + (c.classes === null ? 0 : ch * c.classes + c.classes);
}

test('every preset validates, and its count equals the closed form', () => {
  for (const [name, config] of Object.entries(PRESETS)) {
    assert.is(config.name, name);
    assert.is(countParameters(config), closedFormCount(config), name);
  }
});

test('the unpublished presets have the expected structure', () => {
  const d264 = preset('densenet264');
  assert.equal([d264.blocks, d264.growthRate, d264.initialFeatures, d264.stem, d264.classes], [[6, 12, 64, 48], 32, 64, 'imagenet', 1000]);
  const bc40 = preset('densenet-bc-40-12');
  assert.equal([bc40.blocks, bc40.initialFeatures, bc40.compression, bc40.bottleneck], [[6, 6, 6], 24, 0.5, true]);
  const tiny = preset('densenet-bc-tiny');
  assert.equal([tiny.blocks, tiny.growthRate, tiny.initialFeatures, tiny.inputShape], [[2, 2, 2], 4, 8, [3, 16, 16]]);
  for (const name of ['densenet-40-12', 'densenet-100-12', 'densenet-100-24']) {
    const c = preset(name);
    assert.equal([c.bottleneck, c.compression, c.initialFeatures, c.stem, c.inputShape, c.classes], [false, 1, 16, 'cifar', [3, 32, 32], 10], name);
  }
  for (const name of ['densenet-bc-100-12', 'densenet-bc-250-24', 'densenet-bc-190-40']) {
    const c = preset(name);
    assert.equal([c.bottleneck, c.compression, c.initialFeatures, c.stem, c.classes], [true, 0.5, 2 * c.growthRate, 'cifar', 10], name);
  }
});

test('the default digits preset is a small, fast BC model for [1, 28, 28] MNIST with a strided stem', () => {
  assert.ok(Object.hasOwn(PRESETS, DEFAULT_DIGITS_PRESET));
  const c = preset(DEFAULT_DIGITS_PRESET);
  assert.equal([c.inputShape, c.classes, c.bottleneck, c.stem], [[1, 28, 28], 10, true, 'strided']);
  const params = countParameters(c);
  // Sized to reach >= 98% on the 2,000 held-out digits within 10 minutes on a 2-core CPU (README).
  assert.ok(params >= 20_000 && params <= 150_000, `${params} parameters`);
  assert.ok(multiplyAdds(c) < 10e6, `${multiplyAdds(c)} multiply-adds per image`);
  assert.equal(describeDenseNet(c).blocks.map((b) => b.hw), [[14, 14], [7, 7], [3, 3]]);
});

test('preset() returns a copy, and an unknown name lists the presets', () => {
  const a = preset('densenet121');
  a.blocks[0] = 99;
  a.inputShape[1] = 1;
  assert.equal(preset('densenet121').blocks, [6, 12, 24, 16]);
  assert.equal(PRESETS.densenet121.inputShape, [3, 224, 224]);
  assert.throws(() => { PRESETS.densenet121.blocks[0] = 1; }, TypeError);
  assert.throws(() => preset('densenet-121'), (e: Error) => e instanceof DenseNetConfigError &&
    e.message.startsWith('unknown DenseNet preset "densenet-121": choose one of densenet-40-12, ') && e.message.includes('densenet121') &&
    e.message.includes(DEFAULT_DIGITS_PRESET));
  assert.throws(() => preset('toString'), (e: Error) => e instanceof DenseNetConfigError);
});

test.run();
