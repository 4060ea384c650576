// `densenet-wgsl info`: prints the adapter profile (class, subgroups, limits after any --max-binding
// cap) and proves the GPU computes correctly with a small smoke check (ReLU forward and backward
// compared with the CPU reference).

import { openDevice, type OpenDeviceOptions } from '../gpu/device.js';
import { formatProfile } from '../gpu/profile.js';
import { reluBackward, reluBackwardReference, reluForward, reluReference } from '../kernels/relu.js';
import { tensor } from '../kernels/tensor.js';

export async function runInfo(options: OpenDeviceOptions): Promise<void> {
  const gpu = await openDevice(options);
  try {
    console.log(formatProfile(gpu.profile));
    const n = 4096;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
    const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11));
    const xb = gpu.upload('smoke.x', 'io', x);
    const dyb = gpu.upload('smoke.dy', 'io', dy);
    const yb = gpu.zeros('smoke.y', 'io', n);
    const dxb = gpu.zeros('smoke.dx', 'io', n);
    const launches = [
      await reluForward(gpu, { x: tensor(xb, [n]), y: tensor(yb, [n]) }),
      await reluBackward(gpu, { x: tensor(xb, [n]), dy: tensor(dyb, [n]), dx: tensor(dxb, [n]) }),
    ];
    const t0 = performance.now();
    await gpu.run(launches);
    const [y, dx] = [await gpu.read(yb), await gpu.read(dxb)];
    const ms = performance.now() - t0;
    const yRef = reluReference(x);
    const dxRef = reluBackwardReference(x, dy);
    const bad = y.findIndex((v, i) => Math.abs(v - yRef[i]) > 0 || Math.abs(dx[i] - dxRef[i]) > 1e-7);
    launches.forEach((l) => l.destroy());
    if (bad >= 0) throw new Error(`smoke check: element ${bad} differs from the CPU reference; the adapter computes wrong results`);
    console.log(`smoke check: ReLU forward+backward on ${n} elements matches the CPU reference (${ms.toFixed(1)} ms incl. readback)`);
  } finally {
    gpu.close();
  }
}
