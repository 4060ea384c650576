import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  blocksFromDepth, denseNetConfig, DenseNetConfigError, minimumInputSide, validateConfig, type DenseNetConfig,
} from '../src/models/densenet_config.js';

const test = suite('densenet_config');

/** Asserts `fn` throws a DenseNetConfigError whose message contains `expected` (a string, checked literally). */
function refuses(fn: () => unknown, expected: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DenseNetConfigError, `expected a DenseNetConfigError, got ${String(e)}`);
    assert.ok((e as Error).message.includes(expected), `message "${(e as Error).message}" should contain "${expected}"`);
    return;
  }
  assert.unreachable(`should have refused with "${expected}"`);
}

test('depth → blocks the paper way: (depth − 4)/3 for DenseNet, (depth − 4)/6 for BC', () => {
  assert.equal(blocksFromDepth(40, false), [12, 12, 12]);
  assert.equal(blocksFromDepth(100, false), [32, 32, 32]);
  assert.equal(blocksFromDepth(40, true), [6, 6, 6]);
  assert.equal(blocksFromDepth(100, true), [16, 16, 16]);
  assert.equal(blocksFromDepth(190, true), [31, 31, 31]);
  assert.equal(blocksFromDepth(250, true), [41, 41, 41]);
  // 4 blocks: conv0 + 3 transitions + classifier = 5 fixed layers, 8 convs per BC "row".
  assert.equal(blocksFromDepth(61, true, 4), [7, 7, 7, 7]);
  assert.equal(denseNetConfig({ depth: 61, blocksCount: 4, bottleneck: true, inputShape: [3, 32, 32] }).blocks, [7, 7, 7, 7]);
});

test('depths that do not fit are refused with the depths that do', () => {
  refuses(() => blocksFromDepth(101, true), 'depth 101 does not fit 3 blocks of BC layers: use depth = 6n + 4, e.g. 100 or 106');
  refuses(() => blocksFromDepth(41, false), 'depth 41 does not fit 3 blocks of DenseNet layers (no bottleneck): use depth = 3n + 4, e.g. 40 or 43');
  refuses(() => blocksFromDepth(5, true), 'use depth = 6n + 4, e.g. 10 or 16');
  refuses(() => blocksFromDepth(4, false), 'use depth = 3n + 4, e.g. 7 or 10');
  refuses(() => blocksFromDepth(100.5, true), 'e.g. 100 or 106');
  refuses(() => blocksFromDepth(121, true, 4), 'depth 121 does not fit 4 blocks of BC layers: use depth = 8n + 5, e.g. 117 or 125');
  refuses(() => denseNetConfig({ depth: 101, bottleneck: true }), 'e.g. 100 or 106');
  refuses(() => blocksFromDepth(40, true, 0), 'blocksCount must be a positive integer, got 0');
});

test('defaults follow the paper: 16 initial features and θ = 1 without bottleneck, 2k and θ = 0.5 with it', () => {
  const plain = denseNetConfig({ depth: 40 });
  assert.equal([plain.name, plain.initialFeatures, plain.compression, plain.growthRate, plain.bottleneck], ['densenet-40-12', 16, 1, 12, false]);
  const bc = denseNetConfig({ depth: 100, bottleneck: true, growthRate: 24 });
  assert.equal([bc.name, bc.initialFeatures, bc.compression, bc.bottleneckWidth], ['densenet-bc-100-24', 48, 0.5, 4]);
  assert.equal([bc.stem, bc.inputShape, bc.classes, bc.dropRate, bc.weightDecay, bc.bnEps, bc.bnMomentum], ['cifar', [3, 32, 32], 10, 0, 1e-4, 1e-5, 0.1]);
  const custom = denseNetConfig({ blocks: [6, 12, 24, 16], growthRate: 32, bottleneck: true, stem: 'imagenet', inputShape: [3, 224, 224], classes: null });
  assert.equal([custom.name, custom.classes, custom.initialFeatures], ['densenet-bc-6x12x24x16-32', null, 64]);
});

test('option conflicts and missing sizes are refused', () => {
  refuses(() => denseNetConfig({}), 'give depth (e.g. 40, or 100 with bottleneck) or blocks (e.g. [12, 12, 12])');
  refuses(() => denseNetConfig({ depth: 40, blocks: [6, 6, 6] }), 'depth 40 means blocks [12, 12, 12] but blocks [6, 6, 6] were also given: give one of depth or blocks');
  refuses(() => denseNetConfig({ blocksCount: 4 }), 'blocksCount 4 needs a depth');
  refuses(() => denseNetConfig({ depth: 40, growthrate: 12 } as never), 'unknown DenseNet option "growthrate": known options are name, blocks, growthRate');
  assert.equal(denseNetConfig({ depth: 40, blocks: [12, 12, 12] }).blocks, [12, 12, 12]);
});

const base: DenseNetConfig = denseNetConfig({ blocks: [2, 2, 2], growthRate: 4, bottleneck: true, inputShape: [3, 16, 16] });
const cases: [string, Partial<DenseNetConfig> & Record<string, unknown>, string][] = [
  ['empty name', { name: '' }, 'name must be a non-empty string'],
  ['empty blocks', { blocks: [] }, 'blocks is empty: give the number of layers per dense block, e.g. [16, 16, 16]'],
  ['zero layers', { blocks: [2, 0, 2] }, 'blocks[1] is 0: every block needs a positive integer number of layers'],
  ['fractional layers', { blocks: [2, 2.5, 2] }, 'blocks[1] is 2.5: every block needs a positive integer number of layers'],
  ['growth 0', { growthRate: 0 }, 'growthRate must be a positive integer, got 0'],
  ['growth negative', { growthRate: -12 }, 'growthRate must be a positive integer, got -12'],
  ['growth fractional', { growthRate: 12.5 }, 'growthRate must be a positive integer, got 12.5'],
  ['initial features', { initialFeatures: 0 }, 'initialFeatures must be a positive integer, got 0'],
  ['bottleneck not boolean', { bottleneck: 1 as unknown as boolean }, 'bottleneck must be true or false, got 1'],
  ['bottleneck width', { bottleneckWidth: 3.5 }, 'bottleneckWidth must be a positive integer, got 3.5'],
  ['compression 0', { compression: 0 }, 'compression must be in (0, 1], got 0'],
  ['compression above 1', { compression: 1.5 }, 'compression must be in (0, 1], got 1.5'],
  ['compression NaN', { compression: NaN }, 'compression must be in (0, 1], got NaN'],
  ['dropRate 1', { dropRate: 1 }, 'dropRate must be in [0, 1), got 1'],
  ['dropRate negative', { dropRate: -0.1 }, 'dropRate must be in [0, 1), got -0.1'],
  ['weight decay', { weightDecay: -1e-4 }, 'weightDecay must be a finite number ≥ 0, got -0.0001'],
  ['stem', { stem: 'resnet' as never }, `stem must be 'cifar' or 'strided' or 'imagenet', got "resnet"`],
  ['input rank', { inputShape: [32, 32] as never }, 'inputShape must be [C, H, W] of positive integers, got [32,32]'],
  ['input fractional', { inputShape: [3, 16.5, 16] }, 'inputShape must be [C, H, W] of positive integers, got [3,16.5,16]'],
  ['classes 1', { classes: 1 }, 'classes must be an integer ≥ 2, or null for a feature extractor, got 1'],
  ['classes fractional', { classes: 2.5 }, 'classes must be an integer ≥ 2, or null for a feature extractor, got 2.5'],
  ['bnEps', { bnEps: 0 }, 'bnEps must be a finite number > 0, got 0'],
  ['bnMomentum', { bnMomentum: 0 }, 'bnMomentum must be in (0, 1], got 0'],
  ['unknown field', { growth: 12 }, 'unknown field "growth": known fields are name, blocks'],
  ['cifar input too small', { inputShape: [3, 3, 16] },
    'input 3×16 is too small for 3 blocks: each of the 2 transitions halves H and W; use H and W ≥ 4, or fewer blocks'],
  ['imagenet input too small', { stem: 'imagenet', inputShape: [3, 12, 40] },
    'input 12×40 is too small for 3 blocks: the imagenet stem divides H and W by 4 and each of the 2 transitions halves H and W; use H and W ≥ 13, or fewer blocks'],
  ['compression to zero channels', { compression: 0.05 }, 'transition 1 compresses 16 channels to 0: raise compression to ≥ 0.0625'],
];

test('the base config of the validation cases is valid', () => {
  validateConfig(base);
});

for (const [what, change, message] of cases) {
  test(`validateConfig refuses: ${what}`, () => {
    refuses(() => validateConfig({ ...base, ...change } as DenseNetConfig), `DenseNet config "${change.name ?? base.name}": ${message}`);
  });
}

test('the minimum input side is exact at the boundary', () => {
  assert.is(minimumInputSide('cifar', 2), 4);
  assert.is(minimumInputSide('cifar', 0), 1);
  // imagenet stem maps H → ⌈⌈H/2⌉/2⌉; 3 transitions need 8 after it: 29 → 15 → 8, while 28 → 14 → 7.
  assert.is(minimumInputSide('imagenet', 3), 29);
  const four = { ...base, blocks: [1, 1, 1, 1], stem: 'imagenet' as const };
  validateConfig({ ...four, inputShape: [3, 29, 29] });
  refuses(() => validateConfig({ ...four, inputShape: [3, 28, 29] }), 'use H and W ≥ 29');
  validateConfig({ ...base, inputShape: [1, 4, 4] });
  refuses(() => validateConfig({ ...base, inputShape: [1, 4, 3] }), 'use H and W ≥ 4');
});

test('a config with a value of the wrong JSON type names the field and the type it takes (a JSON file may quote a number)', () => {
  const loose = (o: Record<string, unknown>) => () => denseNetConfig(o as Parameters<typeof denseNetConfig>[0]);
  refuses(loose({ depth: '40' }), '"depth" must be a number, got string "40" (write 40 without quotes)');
  refuses(loose({ depth: 40, growthRate: '12' }), '"growthRate" must be a number, got string "12"');
  refuses(loose({ blocks: [6, '6', 6] }), '"blocks" must be a list of numbers, got an array [6,"6",6]');
  refuses(loose({ depth: 40, bottleneck: 'yes' }), '"bottleneck" must be a boolean, got string "yes"');
  refuses(loose({ depth: 40, classes: '10' }), '"classes" must be a number or null, got string "10"');
  refuses(loose({ depth: 40, name: 7 }), '"name" must be a string, got number 7');
  assert.is(denseNetConfig({ depth: 40, classes: null }).classes, null, 'null classes (a feature extractor) is still accepted');
});

test.run();
