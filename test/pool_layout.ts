// Test support for the pool, linear and softmax kernels: places tensors inside larger buffers
// full of random sentinels, either each in its own buffer at a channel offset or all packed into
// ONE buffer at unaligned offsets (as the memory planner may pack them), and checks afterwards
// that nothing outside the tensors was written.

import type { ArenaBuffer } from '../src/gpu/arena.js';
import type { Gpu } from '../src/gpu/device.js';
import { sizeOf, type TensorRef } from '../src/kernels/tensor.js';
import * as assert from 'uvu/assert';
import { randomArray } from './helpers.js';

export class Layout {
  readonly refs: TensorRef[] = [];
  private readonly buffers: { buf: ArenaBuffer; init: Float32Array }[] = [];
  private readonly owner: number[] = [];

  /**
   * `packed`: all tensors in one buffer, 3 elements from its start and 5 apart (so no offset is
   * 256-byte aligned). Otherwise tensor i is rows [2 + i % 3, 2 + i % 3 + shape[0]) of a buffer
   * with shape[0] + 5 rows (a channel slice when the shape is [C, …]).
   */
  constructor(private readonly gpu: Gpu, packed: boolean, shapes: readonly (readonly number[])[], seed: number) {
    if (packed) {
      let at = 3;
      const offsets = shapes.map((s) => { const o = at; at += sizeOf(s) + 5; return o; });
      const init = randomArray(at + 4, seed);
      const buf = gpu.upload('packed', 'activations', init);
      this.buffers.push({ buf, init });
      shapes.forEach((s, i) => { this.refs.push({ buffer: buf, offset: offsets[i], shape: [...s] }); this.owner.push(0); });
    } else {
      shapes.forEach((s, i) => {
        const row = sizeOf(s) / s[0];
        const init = randomArray((s[0] + 5) * row, seed + i);
        const buf = gpu.upload(`slab${i}`, 'activations', init);
        this.buffers.push({ buf, init });
        this.refs.push({ buffer: buf, offset: (2 + (i % 3)) * row, shape: [...s] });
        this.owner.push(i);
      });
    }
  }

  /** The initial (sentinel or input) contents of tensor i. */
  initial(i: number): Float32Array {
    const r = this.refs[i];
    return this.buffers[this.owner[i]].init.slice(r.offset, r.offset + sizeOf(r.shape));
  }

  /** Restores tensor i to its initial contents. */
  reset(i: number): void {
    this.gpu.write(this.refs[i].buffer, this.initial(i), this.refs[i].offset);
  }

  async read(i: number): Promise<Float32Array> {
    return this.gpu.read(this.refs[i].buffer, this.refs[i].offset, sizeOf(this.refs[i].shape));
  }

  /** Every element outside the tensors still holds its sentinel, bit for bit. */
  async expectRestUntouched(what: string): Promise<void> {
    for (const [b, { buf, init }] of this.buffers.entries()) {
      const got = await this.gpu.read(buf);
      const inside = new Uint8Array(got.length);
      for (const [i, r] of this.refs.entries()) if (this.owner[i] === b) inside.fill(1, r.offset, r.offset + sizeOf(r.shape));
      const [gotBits, initBits] = [new Uint32Array(got.buffer, got.byteOffset, got.length), new Uint32Array(init.buffer, init.byteOffset, init.length)];
      const bad = gotBits.findIndex((v, j) => !inside[j] && v !== initBits[j]);
      assert.ok(bad < 0, `${what}: element ${bad} of buffer "${buf.label}", outside the tensors, is ${got[bad]}, was ${init[bad]}`);
    }
  }

  free(): void {
    for (const { buf } of this.buffers) this.gpu.arena.free(buf);
  }
}
