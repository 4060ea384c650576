// Seeded parameter initialization (torchvision's scheme, from each ParameterSpec's `init`):
// the same seed gives the same weights on every machine.

import type { ParameterInit } from './architecture.js';

/** Mulberry32: small, fast, seeded; 32-bit state that a checkpoint can store. */
export class SeededRandom {
  constructor(private state: number) { this.state >>>= 0; }
  get seed(): number { return this.state; }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal by Box–Muller. */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

export function initialValues(init: ParameterInit, count: number, rng: SeededRandom): Float32Array {
  const out = new Float32Array(count);
  switch (init.kind) {
    case 'normal': for (let i = 0; i < count; i++) out[i] = rng.normal() * init.std; break;
    case 'uniform': for (let i = 0; i < count; i++) out[i] = (rng.next() * 2 - 1) * init.bound; break;
    case 'constant': out.fill(init.value); break;
  }
  return out;
}
