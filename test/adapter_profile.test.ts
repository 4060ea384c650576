// The adapter profile: the class each adapter gets (software / integrated / discrete / unknown), the
// kernel class variant choices read, the features the opened device really has, and average pool's
// adapter-dependent choice reading the profile.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boundsChecksFromEnv, classifyAdapter, formatProfile, kernelClass, type AdapterProfile } from '../src/gpu/profile.js';
import { spawnSync } from 'node:child_process';
import { defaultBlocksPerInvocation } from '../src/kernels/pool_average.js';
import type { Gpu } from '../src/gpu/device.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('adapter profile');
// This file checks the choice by adapter itself: a forced class (kernel_class.test.ts) must not apply.
delete process.env.DENSENET_WGSL_KERNELS;
test.after(closeTestGpu);

test('classifyAdapter: software drivers by name or fallback flag, Dawn\'s adapter type, then the vendor', () => {
  const cases: [Parameters<typeof classifyAdapter>[0], string][] = [
    [{ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)', isFallbackAdapter: false }, 'software'],
    [{ vendor: 'mesa', description: 'lavapipe', isFallbackAdapter: false }, 'software'],
    [{ vendor: 'google', description: 'SwiftShader Device (Subzero)' }, 'software'],
    [{ vendor: 'nvidia', description: 'anything', isFallbackAdapter: true }, 'software'],
    [{ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' }, 'discrete'],
    [{ vendor: 'intel', architecture: 'gen-12lp', description: 'Intel(R) UHD Graphics 770' }, 'integrated'],
    [{ vendor: 'intel', description: 'Intel(R) Arc(TM) A770 Graphics' }, 'discrete'],
    [{ vendor: 'amd', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' }, 'discrete'],
    [{ vendor: 'amd', description: 'AMD Radeon Graphics (RADV RENOIR)' }, 'integrated'],
    [{ vendor: 'apple', architecture: 'metal-3', description: 'Apple M2' }, 'integrated'],
    [{ vendor: 'nvidia', adapterType: 'integrated GPU', description: 'NVIDIA Tegra Orin' }, 'integrated'],
    [{ vendor: 'someone', description: 'a new card' }, 'unknown'],
  ];
  for (const [info, expected] of cases) {
    const got = classifyAdapter(info);
    assert.is(got.class, expected, `${info.description}: ${got.class} (${got.reason})`);
    assert.ok(got.reason.length > 0, 'every class says why');
  }
});

const fakeProfile = (c: AdapterProfile['class']) => ({ profile: { class: c, isSoftware: c === 'software' } as AdapterProfile });

test('kernelClass: software adapters get the software variants, every other class (unknown too) the GPU ones', () => {
  assert.is(kernelClass(fakeProfile('software')), 'software');
  for (const c of ['integrated', 'discrete', 'unknown'] as const) assert.is(kernelClass(fakeProfile(c)), 'gpu', c);
});

test('average pool chooses its blocks per invocation by the profile (8 on software, 1 on a GPU)', () => {
  // Only `profile` is given: a choice still reading gpu.adapter would see undefined and fail here.
  assert.is(defaultBlocksPerInvocation(fakeProfile('software') as unknown as Gpu), 8);
  assert.is(defaultBlocksPerInvocation(fakeProfile('discrete') as unknown as Gpu), 1);
});

test('the opened device has subgroups and shader-f16 where the adapter offers them, and the profile says so', async () => {
  const gpu = await testGpu();
  const adapter = await gpu.instance.requestAdapter();
  assert.ok(adapter, 'the instance gives its adapter again');
  const p = gpu.profile;
  assert.is(gpu.adapter, p, 'gpu.adapter is the profile under its earlier name');
  for (const feature of ['subgroups', 'shader-f16', 'timestamp-query'] as const) {
    assert.is(gpu.device.features.has(feature), adapter.features.has(feature), `${feature}: the device has it exactly where the adapter offers it`);
    assert.is(p.features.includes(feature), gpu.device.features.has(feature), `${feature}: the profile lists what the device has`);
  }
  assert.is(p.hasSubgroups, gpu.device.features.has('subgroups'));
  assert.is(p.hasShaderF16, gpu.device.features.has('shader-f16'));
  if (p.hasSubgroups && adapter.info.subgroupMinSize) {
    assert.is(p.subgroupMinSize, adapter.info.subgroupMinSize);
    assert.is(p.subgroupMaxSize, adapter.info.subgroupMaxSize);
    assert.ok(p.subgroupMinSize! >= 1 && p.subgroupMinSize! <= p.subgroupMaxSize!, `sizes ${p.subgroupMinSize}–${p.subgroupMaxSize}`);
  }
  assert.is(p.class, classifyAdapter(adapter.info).class);
  assert.is(p.isSoftware, p.class === 'software');
  assert.is(p.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize, 'no cap given: the adapter\'s binding size');
  assert.is(p.limits.bindingCapBytes, null);
  if (/llvmpipe|lavapipe/i.test(p.name)) {
    // Here (Mesa lavapipe) the adapter offers both: the features are really requested, not only filtered.
    assert.ok(p.hasSubgroups && p.hasShaderF16, `lavapipe's device has subgroups and shader-f16: ${p.features.join(', ')}`);
    assert.is(p.class, 'software');
    assert.is(kernelClass(gpu), 'software');
  }
});

test('DENSENET_WGSL_DISABLE_ROBUSTNESS: 1 drops the bounds clamps, unset/empty/0 keep them, anything else is named', async () => {
  assert.is(boundsChecksFromEnv({}), true);
  assert.is(boundsChecksFromEnv({ DENSENET_WGSL_DISABLE_ROBUSTNESS: '' }), true);
  assert.is(boundsChecksFromEnv({ DENSENET_WGSL_DISABLE_ROBUSTNESS: '0' }), true);
  assert.is(boundsChecksFromEnv({ DENSENET_WGSL_DISABLE_ROBUSTNESS: '1' }), false);
  assert.throws(() => boundsChecksFromEnv({ DENSENET_WGSL_DISABLE_ROBUSTNESS: 'yes' }), /must be 1 \(no bounds clamps\) or 0, got "yes"/);
  const profile = (await testGpu()).profile;
  assert.is(profile.boundsChecks, true, 'the default device keeps them');
  assert.not.match(formatProfile(profile), 'bounds checks');
  // A device opened with it: info says so, and the smoke check (ReLU against the CPU reference) still passes.
  const r = spawnSync(process.execPath, ['dist/cli.js', 'info'], { encoding: 'utf8', env: { ...process.env, DENSENET_WGSL_DISABLE_ROBUSTNESS: '1' } });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, "bounds checks: off (DENSENET_WGSL_DISABLE_ROBUSTNESS=1, Dawn's disable_robustness");
  assert.match(r.stdout, 'matches the CPU reference');
});

test.run();
