// Named DenseNet configurations: the paper's CIFAR models, torchvision's ImageNet models, and small
// ones for tests and for the built-in MNIST digits run. Parameter counts are checked in test/presets.test.ts.

import { denseNetConfig, DenseNetConfigError, type DenseNetConfig } from './densenet_config.js';

/** The paper's CIFAR-10 models: cifar stem, [3, 32, 32], 10 classes, no dropout (the augmented setting). */
function cifar(name: string, depth: number, growthRate: number, bottleneck: boolean): DenseNetConfig {
  return denseNetConfig({ name, depth, growthRate, bottleneck });
}

/** torchvision's ImageNet models: imagenet stem, BC with bn_size 4, θ = 0.5, [3, 224, 224], 1000 classes. */
function imagenet(name: string, blocks: number[], growthRate: number, initialFeatures: number): DenseNetConfig {
  return denseNetConfig({
    name, blocks, growthRate, initialFeatures, bottleneck: true, bottleneckWidth: 4, compression: 0.5,
    stem: 'imagenet', inputShape: [3, 224, 224], classes: 1000,
  });
}

const ALL: DenseNetConfig[] = [
  cifar('densenet-40-12', 40, 12, false),
  cifar('densenet-100-12', 100, 12, false),
  cifar('densenet-100-24', 100, 24, false),
  cifar('densenet-bc-40-12', 40, 12, true), // the benchmark model: blocks [6, 6, 6]
  cifar('densenet-bc-100-12', 100, 12, true),
  cifar('densenet-bc-250-24', 250, 24, true),
  cifar('densenet-bc-190-40', 190, 40, true),
  imagenet('densenet121', [6, 12, 24, 16], 32, 64),
  imagenet('densenet169', [6, 12, 32, 32], 32, 64),
  imagenet('densenet201', [6, 12, 48, 32], 32, 64),
  imagenet('densenet161', [6, 12, 36, 24], 48, 96),
  imagenet('densenet264', [6, 12, 64, 48], 32, 64),
  // For tests: every feature of BC (bottleneck, compression, 3 blocks, 2 transitions) at toy size.
  denseNetConfig({ name: 'densenet-bc-tiny', blocks: [2, 2, 2], growthRate: 4, initialFeatures: 8, bottleneck: true, inputShape: [3, 16, 16], classes: 10 }),
  // MNIST digits [1, 28, 28]: 28 → 14 → 7 through the two transitions.
  denseNetConfig({ name: 'digits-tiny', blocks: [2, 2, 2], growthRate: 8, initialFeatures: 16, bottleneck: true, inputShape: [1, 28, 28], classes: 10 }),
  denseNetConfig({ name: 'digits-small', blocks: [4, 4, 4], growthRate: 12, initialFeatures: 24, bottleneck: true, inputShape: [1, 28, 28], classes: 10 }),
  // The strided stem (3×3/2 conv) runs the first block at 14×14: a quarter of the work per layer.
  denseNetConfig({ name: 'digits-fast', stem: 'strided', blocks: [3, 3, 3], growthRate: 8, initialFeatures: 16, bottleneck: true, inputShape: [1, 28, 28], classes: 10 }),
  denseNetConfig({ name: 'digits-wide', stem: 'strided', blocks: [4, 4, 4], growthRate: 12, initialFeatures: 24, bottleneck: true, inputShape: [1, 28, 28], classes: 10 }),
];

/** Every preset by name, validated and frozen (mutating one throws): use preset(name) for a mutable copy. */
export const PRESETS: Record<string, DenseNetConfig> = Object.freeze(Object.fromEntries(ALL.map((c) => {
  Object.freeze(c.blocks);
  Object.freeze(c.inputShape);
  return [c.name, Object.freeze(c)];
})));

/** The default model of the built-in MNIST run. */
export const DEFAULT_DIGITS_PRESET = 'digits-fast';

/** A copy of the named preset (so callers may change it); an unknown name lists the presets. */
export function preset(name: string): DenseNetConfig {
  const found = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!found) {
    throw new DenseNetConfigError(`unknown DenseNet preset "${name}": choose one of ${Object.keys(PRESETS).join(', ')}`);
  }
  return { ...found, blocks: [...found.blocks], inputShape: [...found.inputShape] };
}
