import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { countParameters, describeDenseNet, flattenLayers, multiplyAdds, type ConvSpec, type LayerSpec } from '../src/models/architecture.js';
import { denseNetConfig, DenseNetConfigError, stemOutputHW } from '../src/models/densenet_config.js';
import { formatLayerTable } from '../src/models/layer_table.js';
import { preset } from '../src/models/presets.js';

const test = suite('architecture');

test('densenet-bc-tiny: channel bookkeeping of every layer, transition and the head', () => {
  const c = preset('densenet-bc-tiny'); // blocks [2, 2, 2], k = 4, init 8, θ = 0.5, [3, 16, 16]
  const spec = describeDenseNet(c);
  const k = 4;
  let blockIn = 8;
  let side = 16;
  assert.equal(spec.stem.map((l) => l.name), ['features.conv0']);
  assert.equal(spec.stem[0], { kind: 'conv', name: 'features.conv0', inChannels: 3, outChannels: 8, kernel: 3, stride: 1, padding: 1, inputHW: [16, 16], outputHW: [16, 16] });
  spec.blocks.forEach((block, b) => {
    assert.equal([block.name, block.index, block.inChannels, block.outChannels, block.hw], [`features.denseblock${b + 1}`, b + 1, blockIn, blockIn + 2 * k, [side, side]]);
    block.layers.forEach((layer, l) => {
      const cl = blockIn + l * k; // init + l·k within the block
      assert.equal([layer.inChannels, layer.outChannels, layer.block, layer.index], [cl, k, b + 1, l + 1]);
      assert.equal([layer.bn1.channels, layer.conv1.inChannels, layer.conv1.outChannels, layer.conv1.kernel, layer.conv1.padding], [cl, cl, 16, 1, 0]);
      assert.equal([layer.bn2?.channels, layer.conv2?.inChannels, layer.conv2?.outChannels, layer.conv2?.kernel, layer.conv2?.padding], [16, 16, k, 3, 1]);
      assert.equal(layer.ops.map((op) => op.name.slice(layer.name.length + 1)), ['norm1', 'conv1', 'norm2', 'conv2']);
      assert.equal(layer.conv2?.outputHW, [side, side]);
      assert.not.ok('dropout1' in layer || 'dropout2' in layer, 'no dropout ops at dropRate 0');
    });
    const t = block.transition;
    if (b < 2) {
      assert.ok(t);
      const out = Math.floor(0.5 * (blockIn + 2 * k));
      assert.equal([t.name, t.inChannels, t.outChannels, t.inputHW, t.outputHW], [`features.transition${b + 1}`, blockIn + 2 * k, out, [side, side], [side / 2, side / 2]]);
      assert.equal(t.ops.map((op) => op.kind), ['bn', 'conv', 'avgpool']);
      assert.equal([t.conv.inChannels, t.conv.outChannels, t.conv.kernel, t.pool.kernel, t.pool.stride, t.pool.channels], [blockIn + 2 * k, out, 1, 2, 2, out]);
      blockIn = out;
      side /= 2;
    } else {
      assert.is(t, undefined, 'no transition after the last block');
    }
  });
  assert.is(spec.features, 16);
  assert.equal(spec.head, [
    { kind: 'bn', name: 'features.norm5', channels: 16, hw: [4, 4], relu: true },
    { kind: 'globalpool', name: 'globalpool', channels: 16, inputHW: [4, 4] },
    { kind: 'linear', name: 'classifier', inFeatures: 16, outFeatures: 10 },
  ]);
  assert.equal(spec.outputShape, [10]);
});

test('densenet-bc-tiny: parameters and multiply-adds, counted by hand', () => {
  const c = preset('densenet-bc-tiny');
  // conv0 3·8·9; per block: layer(c=8) 2·8 + 8·16 + 2·16 + 16·4·9, layer(c=12) 2·12 + 12·16 + 2·16 + 16·4·9;
  // per transition 2·16 + 16·8; norm5 2·16; classifier 16·10 + 10.
  const block = (16 + 128 + 32 + 576) + (24 + 192 + 32 + 576);
  assert.is(countParameters(c), 216 + 3 * block + 2 * (32 + 128) + 32 + 170);
  assert.is(countParameters(c), 5466);
  // Multiply-adds = Cout·Cin·K²·Hout·Wout per conv, in·out for the classifier; blocks at 16², 8², 4².
  const perPixel = (8 * 16 + 16 * 4 * 9) + (12 * 16 + 16 * 4 * 9); // one block's two layers
  const expected = 8 * 3 * 9 * 256 + perPixel * (256 + 64 + 16) + 16 * 8 * (256 + 64) + 16 * 10;
  assert.is(multiplyAdds(c), expected);
  assert.is(multiplyAdds(c), 591_008);
});

test('densenet121: multiply-adds per image at 224² lie in [2.8e9, 2.9e9]', () => {
  const macs = multiplyAdds(preset('densenet121'));
  assert.ok(macs >= 2.8e9 && macs <= 2.9e9, `${macs}`);
});

test('densenet121: torchvision parameter names, shapes and order', () => {
  const spec = describeDenseNet(preset('densenet121'));
  const byName = new Map(spec.parameters.map((p) => [p.name, p]));
  assert.is(byName.size, spec.parameters.length, 'names are unique');
  const shape = (name: string) => byName.get(name)?.shape;
  assert.equal(shape('features.conv0.weight'), [64, 3, 7, 7]);
  assert.equal(shape('features.norm0.running_var'), [64]);
  assert.equal(shape('features.denseblock1.denselayer1.norm1.weight'), [64]);
  assert.equal(shape('features.denseblock1.denselayer1.conv1.weight'), [128, 64, 1, 1]);
  assert.equal(shape('features.denseblock2.denselayer12.conv2.weight'), [32, 128, 3, 3]);
  assert.equal(shape('features.denseblock2.denselayer12.conv1.weight'), [128, 128 + 11 * 32, 1, 1]);
  assert.equal(shape('features.transition3.conv.weight'), [512, 1024, 1, 1]);
  assert.equal(shape('features.transition1.norm.bias'), [256]);
  assert.equal(shape('features.denseblock4.denselayer16.norm2.running_mean'), [128]);
  assert.equal(shape('features.norm5.weight'), [1024]);
  assert.equal(shape('classifier.weight'), [1000, 1024]);
  assert.equal(shape('classifier.bias'), [1000]);
  assert.is(byName.get('features.denseblock2.denselayer13.conv2.weight'), undefined, 'block 2 has 12 layers');
  assert.is(byName.get('features.transition4.conv.weight'), undefined, 'no transition after the last block');
  const pattern = /^(features\.(conv0|norm0|norm5|denseblock[1-4]\.denselayer\d+\.(norm1|conv1|norm2|conv2)|transition[1-3]\.(norm|conv))|classifier)\.(weight|bias|running_mean|running_var)$/;
  for (const p of spec.parameters) assert.ok(pattern.test(p.name), p.name);
  assert.equal(spec.parameters.slice(0, 6).map((p) => p.name), ['features.conv0.weight', 'features.norm0.weight', 'features.norm0.bias',
    'features.norm0.running_mean', 'features.norm0.running_var', 'features.denseblock1.denselayer1.norm1.weight']);
  assert.equal(spec.parameters.slice(-2).map((p) => p.name), ['classifier.weight', 'classifier.bias']);
  // 120 convs, 121 BNs (4 tensors each), the classifier's 2: torchvision's state_dict without num_batches_tracked.
  assert.is(spec.parameters.length, 120 + 4 * 121 + 2);
  for (const p of spec.parameters) {
    assert.is(p.trainable, !p.name.includes('running_'), p.name);
    const expectedKind = p.name.startsWith('classifier') ? `linear-${p.name.endsWith('weight') ? 'weight' : 'bias'}`
      : p.name.includes('conv') ? 'conv' : { weight: 'bn-weight', bias: 'bn-bias', running_mean: 'bn-running-mean', running_var: 'bn-running-var' }[p.name.split('.').pop()!];
    assert.is(p.kind, expectedKind, p.name);
  }
  assert.equal(byName.get('features.conv0.weight')?.init, { kind: 'normal', std: Math.sqrt(2 / (3 * 49)) });
  assert.equal(byName.get('features.norm0.running_var')?.init, { kind: 'constant', value: 1 });
  assert.equal(byName.get('classifier.weight')?.init, { kind: 'uniform', bound: 1 / 32 });
});

test('imagenet stem: conv0 7×7/2, norm0 + ReLU, pool0 3×3/2, then 56 → 28 → 14 → 7', () => {
  const spec = describeDenseNet(preset('densenet121'));
  assert.equal(spec.stem, [
    { kind: 'conv', name: 'features.conv0', inChannels: 3, outChannels: 64, kernel: 7, stride: 2, padding: 3, inputHW: [224, 224], outputHW: [112, 112] },
    { kind: 'bn', name: 'features.norm0', channels: 64, hw: [112, 112], relu: true },
    { kind: 'maxpool', name: 'features.pool0', channels: 64, kernel: 3, stride: 2, padding: 1, inputHW: [112, 112], outputHW: [56, 56] },
  ]);
  assert.equal(spec.blocks.map((b) => [b.inChannels, b.outChannels, b.hw[0]]), [[64, 256, 56], [128, 512, 28], [256, 1024, 14], [512, 1024, 7]]);
  // Odd sizes floor like PyTorch: 225 → 113 → 57, then 28, 14, 7.
  const odd = describeDenseNet({ ...preset('densenet121'), inputShape: [3, 225, 225] });
  assert.equal(odd.blocks.map((b) => b.hw[0]), [57, 28, 14, 7]);
});

test('non-BC layers are norm1 → conv1 (3×3 → k) and θ = 1 keeps the channels', () => {
  const spec = describeDenseNet(preset('densenet-40-12'));
  const layer = spec.blocks[1].layers[3];
  assert.equal([layer.name, layer.inChannels, layer.conv1.kernel, layer.conv1.padding, layer.conv1.outChannels], ['features.denseblock2.denselayer4', 160 + 36, 3, 1, 12]);
  assert.not.ok('bn2' in layer || 'conv2' in layer);
  assert.equal(layer.ops.map((op) => op.kind), ['bn', 'conv']);
  assert.equal(spec.blocks.map((b) => [b.inChannels, b.outChannels, b.transition?.outChannels]), [[16, 160, 160], [160, 304, 304], [304, 448, undefined]]);
});

test('dropout follows the paper: after every conv but conv0, in dense layers and transitions', () => {
  const c = denseNetConfig({ blocks: [1, 1], growthRate: 4, bottleneck: true, dropRate: 0.2, inputShape: [3, 8, 8] });
  const names = flattenLayers(describeDenseNet(c)).map((op) => `${op.kind}:${op.name}`);
  assert.equal(names, [
    'conv:features.conv0',
    'bn:features.denseblock1.denselayer1.norm1', 'conv:features.denseblock1.denselayer1.conv1', 'dropout:features.denseblock1.denselayer1.dropout1',
    'bn:features.denseblock1.denselayer1.norm2', 'conv:features.denseblock1.denselayer1.conv2', 'dropout:features.denseblock1.denselayer1.dropout2',
    'bn:features.transition1.norm', 'conv:features.transition1.conv', 'dropout:features.transition1.dropout', 'avgpool:features.transition1.pool',
    'bn:features.denseblock2.denselayer1.norm1', 'conv:features.denseblock2.denselayer1.conv1', 'dropout:features.denseblock2.denselayer1.dropout1',
    'bn:features.denseblock2.denselayer1.norm2', 'conv:features.denseblock2.denselayer1.conv2', 'dropout:features.denseblock2.denselayer1.dropout2',
    'bn:features.norm5', 'globalpool:globalpool', 'linear:classifier',
  ]);
  const drop = describeDenseNet(c).blocks[0].layers[0].dropout1;
  assert.equal(drop, { kind: 'dropout', name: 'features.denseblock1.denselayer1.dropout1', channels: 16, hw: [8, 8], rate: 0.2 });
  assert.is(countParameters(c), countParameters({ ...c, dropRate: 0 }), 'dropout owns no parameters');
});

test('a feature extractor ends with norm5-ReLU and the global pool', () => {
  const c = { ...preset('densenet-bc-tiny'), classes: null };
  const spec = describeDenseNet(c);
  assert.equal(spec.head.map((l: LayerSpec) => l.kind), ['bn', 'globalpool']);
  assert.equal(spec.outputShape, [16]);
  assert.ok(spec.parameters.every((p) => !p.name.startsWith('classifier')));
  assert.is(countParameters(c), 5466 - 170);
});

test('describeDenseNet validates first', () => {
  assert.throws(() => describeDenseNet({ ...preset('densenet-bc-tiny'), growthRate: 0 }), (e: Error) => e instanceof DenseNetConfigError && /growthRate/.test(e.message));
});

test('formatLayerTable: shapes with the batch, per-layer parameters and the totals line', () => {
  const table = formatLayerTable(preset('densenet-bc-tiny'), 16);
  const lines = table.split('\n');
  assert.is(lines[0], 'densenet-bc-tiny: input [16, 3, 16, 16]');
  assert.match(table, /features\.conv0 \(conv 3×3\)\s+\[16, 8, 16, 16\]\s+216\s+55,296\n/);
  assert.match(table, /features\.denseblock1\.denselayer2 \(BN-ReLU-1×1-BN-ReLU-3×3\)\s+\[16, 16, 16, 16\]\s+824\s+196,608\n/);
  assert.match(table, /features\.transition2 \(BN-ReLU-1×1-avgpool\)\s+\[16, 8, 4, 4\]\s+160\s+8,192\n/);
  assert.match(table, /classifier \(linear\)\s+\[16, 10\]\s+170\s+160\n/);
  assert.is(lines.at(-1), 'total: 5,466 trainable parameters (+ 408 BN running statistics); 591,008 multiply-adds per image, 9.46 M per batch of 16');
  const ops = formatLayerTable(preset('densenet-bc-tiny'), 2, { detail: 'ops' }).split('\n');
  assert.is(ops.length, 5 + flattenLayers(describeDenseNet(preset('densenet-bc-tiny'))).length);
  assert.throws(() => formatLayerTable(preset('densenet-bc-tiny'), 0), /batch must be a positive integer, got 0/);
});

test('the strided stem halves the input with one 3×3/2 conv and no BN-ReLU (digits-fast)', () => {
  const spec = describeDenseNet(preset('digits-fast'));
  assert.is(spec.stem.length, 1);
  const conv0 = spec.stem[0] as ConvSpec;
  assert.equal([conv0.kernel, conv0.stride, conv0.padding, conv0.inputHW, conv0.outputHW], [3, 2, 1, [28, 28], [14, 14]]);
  assert.equal(spec.blocks.map((b) => b.hw), [[14, 14], [7, 7], [3, 3]]);
  assert.equal(stemOutputHW('strided', 29, 27), [15, 14]);
});

test.run();
