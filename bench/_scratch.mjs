import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const instance = create([]);
const adapter = await instance.requestAdapter();
const requiredLimits = {};
for (const n of ['maxBufferSize','maxStorageBufferBindingSize','maxComputeWorkgroupStorageSize','maxComputeInvocationsPerWorkgroup','maxComputeWorkgroupSizeX','maxComputeWorkgroupsPerDimension']) requiredLimits[n]=adapter.limits[n];
const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: ['timestamp-query'] });
globalThis.navigator = { gpu: instance };
const tf = await import('@tensorflow/tfjs-core');
const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
console.log(tf.version_core, typeof WebGPUBackend, Object.keys(tf.getBackend ? {} : {}));
if (tf.findBackendFactory('webgpu')) { console.log('removing'); tf.removeBackend('webgpu'); }
tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info));
await tf.setBackend('webgpu');
tf.env().set('WEBGPU_CPU_FORWARD', false);
const x = tf.randomUniform([16,32,32,48]); const w = tf.randomUniform([3,3,48,12]);
for (let i=0;i<3;i++){
  const t0=performance.now();
  const r = await tf.time(() => { tf.tidy(() => tf.conv2d(x, w, 1, 'same')); });
  console.log('conv fwd kernelMs', r.kernelMs, 'wall', r.wallMs, performance.now()-t0, r.getExtraProfileInfo?.());
}
const dy = tf.randomUniform([16,32,32,12]);
const g = tf.grads((a,b)=>tf.conv2d(a,b,1,'same'));
for (let i=0;i<3;i++){
  const r = await tf.time(() => { tf.tidy(() => g([x,w],dy)); });
  console.log('conv bwd kernelMs', r.kernelMs, r.getExtraProfileInfo?.());
}
console.log(tf.memory());
device.destroy();
