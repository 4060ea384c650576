import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openDevice, formatAdapter } from '../src/gpu/device.js';
import { foldWorkgroups } from '../src/gpu/dispatch.js';
import { KernelError } from '../src/gpu/program.js';
import { closeTestGpu, testGpu } from './helpers.js';

const test = suite('device');
test.after(closeTestGpu);

test('foldWorkgroups keeps every dimension within the limit and covers the count', () => {
  for (const count of [0, 1, 65535, 65536, 70000, 65535 * 65535 + 3, 4_000_000_000]) {
    const [x, y, z] = foldWorkgroups(count);
    assert.ok(x <= 65535 && y <= 65535 && z <= 65535, `${count} → ${x}×${y}×${z}`);
    assert.ok(x * y * z >= count, `${count} covered`);
    if (count > 0) assert.ok(x * y * z - count < x * y, `${count}: at most one partial z-layer of waste`);
  }
  assert.equal(foldWorkgroups(10, 4), [4, 3, 1]);
  assert.throws(() => foldWorkgroups(-1), /whole number/);
});

test('a folded dispatch past 65,535 workgroups reaches every element exactly once', async () => {
  const gpu = await testGpu();
  const count = 70000 * 64;
  const out = gpu.zeros('hits', 'workspace', count);
  const program = await gpu.compile({
    name: 'test.fill', key: '', workgroupSize: [64],
    bindings: [{ name: 'hits', access: 'read_write' }], uniforms: [{ name: 'count', type: 'u32' }],
    body: '', main: `
  if (index >= u.count) { return; }
  hits[index] += 1.0;`,
  });
  const launch = gpu.launch(program, { hits: out }, { count }, count / 64);
  assert.ok(launch.grid[1] > 1, 'the grid was folded into 2-D');
  await gpu.run([launch]);
  const hits = await gpu.read(out);
  assert.ok(hits.every((h) => h === 1), 'each element written once');
  launch.destroy();
  gpu.arena.free(out);
});

test('a WGSL compile error names the kernel and the line', async () => {
  const gpu = await testGpu();
  try {
    await gpu.compile({ name: 'test.broken', key: 'k', workgroupSize: [1], bindings: [], uniforms: [],
      body: '', main: 'let a: f32 = nope;' });
    assert.unreachable('should not compile');
  } catch (e) {
    assert.instance(e, KernelError);
    assert.match((e as Error).message, /kernel "test\.broken" \(k\) failed to compile/);
    assert.match((e as Error).message, /nope/);
  }
});

test('uniforms are checked: unknown names, missing values and bad types are refused', async () => {
  const gpu = await testGpu();
  const program = await gpu.compile({
    name: 'test.uniforms', key: '', workgroupSize: [1], bindings: [{ name: 'o', access: 'read_write' }],
    uniforms: [{ name: 'n', type: 'u32' }, { name: 'scale', type: 'f32' }],
    body: '', main: 'o[0] = f32(u.n) * u.scale;',
  });
  const o = gpu.zeros('o', 'workspace', 1);
  assert.throws(() => gpu.launch(program, { o }, { n: 1 }, 1), /uniforms not set: scale/);
  assert.throws(() => gpu.launch(program, { o }, { n: -1, scale: 1 }, 1), /"n" = -1 is not a u32/);
  assert.throws(() => gpu.launch(program, {}, { n: 1, scale: 1 }, 1), /no buffer given for binding "o"/);
  const launch = gpu.launch(program, { o }, { n: 3, scale: 0.5 }, 1);
  await gpu.run([launch]);
  assert.equal([...(await gpu.read(o))], [1.5]);
  launch.setUniforms(gpu.queue, { n: 4 });
  await gpu.run([launch]);
  assert.equal([...(await gpu.read(o))], [2]);
  assert.throws(() => launch.setUniforms(gpu.queue, { bogus: 1 }), /unknown uniform "bogus"/);
  const uniformBytes = gpu.arena.report().byCategory.uniforms.liveBytes;
  launch.destroy();
  assert.is(gpu.arena.report().byCategory.uniforms.liveBytes, uniformBytes - 16, 'destroy() frees the uniform buffer');
  gpu.arena.free(o);
});

/** The limits the engine raises to the adapter's maximum (deep models need big buffers), with WebGPU's defaults. */
const RAISED_LIMITS = {
  maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27, maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupsPerDimension: 65535,
} as const;

test('the device gets the adapter\'s own limits for every limit the engine raises, and the report shows them', async () => {
  const gpu = await testGpu();
  const adapter = await gpu.instance.requestAdapter();
  assert.ok(adapter, 'the instance gives its adapter again');
  const device = gpu.limits as unknown as Record<string, number>;
  const offered = adapter.limits as unknown as Record<string, number>;
  for (const name of Object.keys(RAISED_LIMITS)) {
    assert.is(device[name], offered[name], `${name}: the device has ${device[name]}, the adapter offers ${offered[name]}`);
  }
  // Only a limit the adapter offers above WebGPU's default tells a raised device from a default one.
  const telling = Object.entries(RAISED_LIMITS).filter(([name, d]) => offered[name] > d).map(([name]) => name);
  assert.ok(telling.length > 0, 'this adapter offers more than the default somewhere (else the check above could not fail)');
  const text = formatAdapter(gpu.adapter);
  assert.match(text, /adapter: /);
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  assert.ok(text.includes(`maxBufferSize ${mib(offered.maxBufferSize)}`), `the report shows the device's maxBufferSize: ${text}`);
  assert.ok(text.includes(`maxStorageBufferBindingSize ${mib(offered.maxStorageBufferBindingSize)}`), 'and its maxStorageBufferBindingSize');
});

test('asking for more than the adapter offers is refused with the limit named', async () => {
  try {
    await openDevice({ requiredLimits: { maxStorageBufferBindingSize: 2 ** 52 } });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.match((e as Error).message, /needs maxStorageBufferBindingSize = \d+ but adapter .* offers \d+/);
  }
});

test('an adapter that does not exist gives one clear error', async () => {
  try {
    const gpu = await openDevice({ adapter: 'no-such-adapter-xyz' });
    gpu.close();
    assert.unreachable('should fail');
  } catch (e) {
    assert.match((e as Error).message, /no-such-adapter-xyz/);
  }
});

test('reading past the end of a buffer is refused', async () => {
  const gpu = await testGpu();
  const b = gpu.zeros('small', 'workspace', 4);
  await gpu.read(b, 2, 2).then((v) => assert.is(v.length, 2));
  await gpu.read(b, 2, 3).then(() => assert.unreachable('should refuse'), (e: Error) => assert.match(e.message, /outside "small"/));
  gpu.arena.free(b);
});

test.run();
