// Our side of `bench ops`: each op and pass as the engine's kernels run it in a training step,
// channel-major [C, N, H, W], recorded as one list of launches (timed as one compute pass).

import type { Gpu } from '../src/gpu/device.js';
import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Launch } from '../src/gpu/program.js';
import { batchNormBackward, batchNormForward, batchNormStatistics } from '../src/kernels/batchnorm.js';
import { conv2dBackwardFilter, conv2dBackwardInput, conv2dForward } from '../src/kernels/conv2d.js';
import { avgPool2x2Backward, avgPool2x2Forward } from '../src/kernels/pool_average.js';
import { tensor, type TensorRef } from '../src/kernels/tensor.js';
import { convOutputSize, seededUniform, type OpCase, type PassName } from './ops_spec.js';

export interface OursPass {
  launches: Launch[];
  /** The same launches by kernel (e.g. forward, backwardInput, backwardFilter), for the per-kernel breakdown. */
  groups: { name: string; launches: Launch[] }[];
  /** Output names in the order `read` returns them (the same names as the tfjs side). */
  names: string[];
  read(): Promise<Record<string, Float32Array>>;
  destroy(): void;
}

/** Inputs in our layout: conv x [Cin,N,H,W], w [Cout,Cin,K,K], dy [Cout,N,Ho,Wo]; BN x, dy, gamma, beta; pool x, dy. */
export function makeInputs(c: OpCase, seed = 1): Record<string, Float32Array> {
  const rand = (n: number, s: number, scale = 1) => seededUniform(n, seed * 16 + s, scale);
  if (c.kind === 'conv') {
    const { Ho, Wo } = convOutputSize(c);
    return {
      x: rand(c.cin * c.N * c.H * c.W, 1),
      w: rand(c.cout * c.cin * c.k * c.k, 2, 1 / Math.sqrt(c.cin * c.k * c.k)),
      dy: rand(c.cout * c.N * Ho * Wo, 3),
    };
  }
  if (c.kind === 'batchnorm') {
    const size = c.C * c.N * c.H * c.W;
    const gamma = rand(c.C, 3, 0.5).map((v) => v + 1);
    return { x: rand(size, 1, 2), dy: rand(size, 2), gamma, beta: rand(c.C, 4, 0.5) };
  }
  return { x: rand(c.C * c.N * c.H * c.W, 1), dy: rand(c.C * c.N * Math.floor(c.H / 2) * Math.floor(c.W / 2), 2) };
}

export async function prepareOurs(gpu: Gpu, c: OpCase, inputs: Record<string, Float32Array>, pass: PassName): Promise<OursPass> {
  const buffers: ArenaBuffer[] = [];
  const groups: { name: string; launches: Launch[] }[] = [];
  const add = (name: string, launches: Launch[]) => groups.push({ name, launches });
  const upload = (name: string, shape: number[], category: 'activations' | 'parameters' | 'gradients' = 'activations'): TensorRef => {
    const b = gpu.upload(`bench.${name}`, category, inputs[name]);
    buffers.push(b);
    return tensor(b, shape);
  };
  const zeros = (name: string, shape: number[], category: 'activations' | 'parameters' | 'gradients' = 'activations'): TensorRef => {
    const b = gpu.zeros(`bench.${name}`, category, shape.reduce((a, d) => a * d, 1));
    buffers.push(b);
    return tensor(b, shape);
  };
  const outputs: Record<string, TensorRef> = {};
  try {
    if (c.kind === 'conv') {
      const { Ho, Wo } = convOutputSize(c);
      const x = upload('x', [c.cin, c.N, c.H, c.W]);
      const w = upload('w', [c.cout, c.cin, c.k, c.k], 'parameters');
      const y = outputs.y = zeros('y', [c.cout, c.N, Ho, Wo]);
      add('forward', await conv2dForward(gpu, { x, w, y, stride: 1, padding: c.pad }));
      if (pass === 'backward') {
        const dy = upload('dy', [c.cout, c.N, Ho, Wo], 'gradients');
        const dx = outputs.dx = zeros('dx', [c.cin, c.N, c.H, c.W], 'gradients');
        const dw = outputs.dw = zeros('dw', [c.cout, c.cin, c.k, c.k], 'gradients');
        add('backwardInput', await conv2dBackwardInput(gpu, { dy, w, dx, stride: 1, padding: c.pad }));
        add('backwardFilter', await conv2dBackwardFilter(gpu, { x, dy, dw, stride: 1, padding: c.pad }));
      }
    } else if (c.kind === 'batchnorm') {
      const shape = [c.C, c.N, c.H, c.W];
      const x = upload('x', shape);
      const gamma = upload('gamma', [c.C], 'parameters');
      const beta = upload('beta', [c.C], 'parameters');
      const mean = zeros('mean', [c.C]);
      const variance = zeros('variance', [c.C]);
      const y = outputs.y = zeros('y', shape);
      add('statistics', await batchNormStatistics(gpu, { x, mean, variance }));
      add('forward', await batchNormForward(gpu, { x, mean, variance, gamma, beta, y, eps: c.eps }));
      if (pass === 'backward') {
        const dy = upload('dy', shape, 'gradients');
        const dx = outputs.dx = zeros('dx', shape, 'gradients');
        const dgamma = outputs.dgamma = zeros('dgamma', [c.C], 'gradients');
        const dbeta = outputs.dbeta = zeros('dbeta', [c.C], 'gradients');
        add('backward', await batchNormBackward(gpu, { x, dy, mean, variance, gamma, beta, eps: c.eps, dx, dgamma, dbeta }));
      }
    } else {
      const Ho = Math.floor(c.H / 2);
      const Wo = Math.floor(c.W / 2);
      const x = upload('x', [c.C, c.N, c.H, c.W]);
      const y = outputs.y = zeros('y', [c.C, c.N, Ho, Wo]);
      add('forward', await avgPool2x2Forward(gpu, { x, y }));
      if (pass === 'backward') {
        const dy = upload('dy', [c.C, c.N, Ho, Wo], 'gradients');
        const dx = outputs.dx = zeros('dx', [c.C, c.N, c.H, c.W], 'gradients');
        add('backward', await avgPool2x2Backward(gpu, { dy, dx }));
      }
    }
  } catch (e) {
    groups.forEach((g) => g.launches.forEach((l) => l.destroy()));
    buffers.forEach((b) => gpu.arena.free(b));
    throw e;
  }
  const launches = groups.flatMap((g) => g.launches);
  return {
    launches,
    groups,
    names: Object.keys(outputs),
    async read() {
      const out: Record<string, Float32Array> = {};
      for (const [name, ref] of Object.entries(outputs)) out[name] = await gpu.read(ref.buffer, ref.offset, ref.shape.reduce((a, d) => a * d, 1));
      return out;
    },
    destroy() {
      launches.forEach((l) => l.destroy());
      buffers.forEach((b) => gpu.arena.free(b));
    },
  };
}
