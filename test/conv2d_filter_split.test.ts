// The GPU class's default backward-filter tile (split-K over N·Ho output rows where the reduction
// is long): the choice at DenseNet sizes, and the kernel with the chosen split against the float64
// reference at awkward sizes (odd channels, 1×1 and 7×7 planes, the 7×7 stem, batch 1 and 3, the
// fused BN→ReLU input), dw and the workspace poisoned with NaN before every run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  affineReluReference, conv2dBackwardFilter, conv2dBackwardFilterReference, conv2dBackwardFilterWorkspaceElements,
} from '../src/kernels/conv2d.js';
import {
  chooseGpuFilterTile, FILTER_SPLIT_TARGET_WORKGROUPS, filterWorkgroupsPerSplit, MAX_SPLIT_WORKSPACE_ELEMENTS,
} from '../src/kernels/conv2d_filter_split.js';
import { candidatesFor } from '../src/cli/tuner.js';
import type { Gpu } from '../src/gpu/device.js';
import { convSite } from '../src/gpu/tuning.js';
import { tensor } from '../src/kernels/tensor.js';
import { CONV_TOLERANCE, convShapes, elementCount, type ConvCase } from './conv2d_cases.js';
import { assertClose, closeTestGpu, randomArray, testGpu } from './helpers.js';

const test = suite('conv2d backward-filter split (GPU class)');
test.after(closeTestGpu);

test('long reductions are split to fill a large GPU, short ones are not, and the workspace stays bounded', () => {
  // A dense layer's 3×3 conv, 12 ← 48 channels, batch 64 at 32×32: 65,536 pixels per thread unsplit.
  const dense = chooseGpuFilterTile([48, 64, 32, 32], [12, 48, 3, 3], { padding: 1 });
  const per = filterWorkgroupsPerSplit([12, 48, 3, 3], dense);
  assert.ok((dense.splits ?? 1) * per >= FILTER_SPLIT_TARGET_WORKGROUPS, `${dense.splits} splits × ${per} workgroups`);
  assert.ok((64 * 32 * 32) / (dense.splits ?? 1) >= 256, 'each part keeps at least 256 pixels');
  // DenseNet-121's widest 1×1 (128 ← 1024 at 7×7, batch 32): the workspace is capped.
  const wide = chooseGpuFilterTile([1024, 32, 7, 7], [128, 1024, 1, 1]);
  assert.ok(conv2dBackwardFilterWorkspaceElements([128, 1024, 1, 1], wide) <= MAX_SPLIT_WORKSPACE_ELEMENTS);
  // Short reductions (batch 1 at 4×4) stay unsplit: no workspace.
  assert.is(chooseGpuFilterTile([48, 1, 4, 4], [12, 48, 3, 3], { padding: 1 }).splits ?? 1, 1);
  // Never more parts than output rows.
  assert.ok((chooseGpuFilterTile([5, 3, 1, 1], [3, 5, 1, 1], {}, { minPixelsPerSplit: 1 }).splits ?? 1) <= 3);
});

test('the tuner\'s default for the filter gradient is the class\'s default: the split tile on GPUs, unsplit (a candidate) beside it', () => {
  const site = convSite('conv2d.backwardFilter', [48, 64, 32, 32], [12, 48, 3, 3], 1, 1, false);
  const saved = process.env.DENSENET_WGSL_KERNELS;
  try {
    process.env.DENSENET_WGSL_KERNELS = 'gpu';
    const gpuCandidates = candidatesFor({ profile: { class: 'discrete' } } as Gpu, site);
    assert.equal(gpuCandidates[0].choice?.tile, chooseGpuFilterTile(site.x, site.w!, { padding: 1 }));
    assert.ok(gpuCandidates.some((c) => c.name.startsWith('unsplit') && (c.choice?.tile?.splits ?? 1) === 1), 'the unsplit tile is a candidate');
    process.env.DENSENET_WGSL_KERNELS = 'software';
    assert.is(candidatesFor({ profile: { class: 'software' } } as Gpu, site)[0].choice, undefined, 'software: the kernel\'s own default');
  } finally {
    if (saved === undefined) delete process.env.DENSENET_WGSL_KERNELS;
    else process.env.DENSENET_WGSL_KERNELS = saved;
  }
});

/** Odd channel counts, batch 1 and 3, 1×1 and 7×7 planes, the stem; the split forced by a low pixel floor. */
const CASES: (ConvCase & { transform?: boolean })[] = [
  { name: '3×3 pad 1, 5 ← 13, N 3, 7×7', Cin: 13, Cout: 5, N: 3, H: 7, W: 7, KH: 3, KW: 3, params: { padding: 1 }, transform: true },
  { name: '1×1, 7 ← 13, N 3, 7×7', Cin: 13, Cout: 7, N: 3, H: 7, W: 7, KH: 1, KW: 1, params: {} },
  { name: '1×1 planes, 3 ← 5, N 3', Cin: 5, Cout: 3, N: 3, H: 1, W: 1, KH: 1, KW: 1, params: {} },
  { name: '3×3 pad 1, 12 ← 7, N 1, 9×9', Cin: 7, Cout: 12, N: 1, H: 9, W: 9, KH: 3, KW: 3, params: { padding: 1 } },
  { name: '7×7 stride 2 pad 3 (stem), 5 ← 3, N 3, 11×13', Cin: 3, Cout: 5, N: 3, H: 11, W: 13, KH: 7, KW: 7, params: { stride: 2, padding: 3 } },
];

test('the chosen split matches the reference (dw and workspace poisoned)', async () => {
  const gpu = await testGpu();
  for (const [i, c] of CASES.entries()) {
    const s = convShapes(c);
    const tile = chooseGpuFilterTile(s.x, s.w, c.params, { minPixelsPerSplit: 1 });
    const rows = c.N * s.y[2];
    assert.ok((tile.splits ?? 1) > 1 && (tile.splits ?? 1) <= rows, `${c.name}: split into ${tile.splits} parts (${rows} rows)`);
    const x = randomArray(elementCount(s.x), 200 + i);
    const dy = randomArray(elementCount(s.y), 300 + i);
    const scale = randomArray(c.Cin, 400 + i, 1.5);
    const shift = randomArray(c.Cin, 500 + i, 0.5);
    const xUsed = c.transform ? affineReluReference(x, s.x as [number, number, number, number], scale, shift) : x;
    const want = conv2dBackwardFilterReference(xUsed, s.x as [number, number, number, number], dy, s.w as [number, number, number, number], c.params);
    const xb = gpu.upload('x', 'activations', x);
    const dyb = gpu.upload('dy', 'gradients', dy);
    const params = gpu.upload('affine', 'workspace', Float32Array.from([...scale, ...shift]));
    const dwCount = elementCount(s.w);
    const dwb = gpu.upload('dw', 'gradients', new Float32Array(dwCount + 6).fill(NaN));
    const elements = conv2dBackwardFilterWorkspaceElements(s.w, tile);
    const wsb = gpu.upload('workspace', 'workspace', new Float32Array(elements + 5).fill(NaN));
    const launches = await conv2dBackwardFilter(gpu, {
      x: tensor(xb, s.x), dy: tensor(dyb, s.y), dw: tensor(dwb, s.w, 2), workspace: tensor(wsb, [elements], 3), tile, ...c.params,
      inputTransform: c.transform ? { scale: tensor(params, [c.Cin]), shift: tensor(params, [c.Cin], c.Cin) } : undefined,
    });
    assert.is(launches.length, 2, `${c.name}: partial sums, then their sum`);
    await gpu.run(launches);
    launches.forEach((l) => l.destroy());
    const got = await gpu.read(dwb);
    assertClose(got.slice(2, 2 + dwCount), want, CONV_TOLERANCE, `${c.name} split ${tile.splits}`);
    assert.ok([...got.slice(0, 2), ...got.slice(2 + dwCount)].every(Number.isNaN), `${c.name}: nothing outside dw was written`);
    for (const b of [xb, dyb, params, dwb, wsb]) gpu.arena.free(b);
  }
});

test.run();
