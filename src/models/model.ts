// A DenseNet's parameters on the GPU, owned explicitly: trainable parameters in one flat buffer
// (the optimizer updates them in one op), BN running statistics in another. Training and
// inference sessions are graphs planned over these buffers; closing the model frees them.

import type { ArenaBuffer } from '../gpu/arena.js';
import type { Gpu } from '../gpu/device.js';
import { tensor } from '../kernels/tensor.js';
import { describeDenseNet, size, type ArchitectureSpec } from './architecture.js';
import type { DenseNetConfig } from './densenet_config.js';
import type { ParameterLayout } from './densenet_graph.js';
import { initialValues, SeededRandom } from './init.js';

/** Parameter offsets are multiples of this many elements (256 bytes, minStorageBufferOffsetAlignment). */
export const PARAMETER_ALIGNMENT = 64;

/**
 * Where each parameter lives in the two flat buffers (trainable, running statistics). 256-byte
 * alignment lets one dispatch write two neighbouring tensors (a BN's dγ and dβ, its running mean
 * and variance): WebGPU refuses overlapping writable binding ranges. Padding stays zero.
 */
export function parameterOffsets(arch: ArchitectureSpec): { offsets: ParameterLayout['offsets']; trainableElements: number; runningElements: number } {
  const offsets: ParameterLayout['offsets'] = new Map();
  const counts = { trainable: 0, running: 0 };
  for (const p of arch.parameters) {
    const store = p.trainable ? 'trainable' : 'running';
    offsets.set(p.name, { store, offset: counts[store], shape: [...p.shape] });
    counts[store] += Math.ceil(size(p.shape) / PARAMETER_ALIGNMENT) * PARAMETER_ALIGNMENT;
  }
  return { offsets, trainableElements: Math.max(PARAMETER_ALIGNMENT, counts.trainable), runningElements: Math.max(PARAMETER_ALIGNMENT, counts.running) };
}

export class DenseNetModel {
  private closed = false;

  private constructor(
    readonly gpu: Gpu,
    readonly arch: ArchitectureSpec,
    readonly layout: ParameterLayout,
    private readonly buffers: { trainable: ArenaBuffer; running: ArenaBuffer },
  ) {}

  get config(): DenseNetConfig { return this.arch.config; }
  /** Trainable parameters (the flat buffer also holds alignment padding, which stays zero). */
  get trainableCount(): number {
    return this.arch.parameters.reduce((sum, p) => sum + (p.trainable ? size(p.shape) : 0), 0);
  }

  /** Allocates the parameters and initializes them from `seed` (torchvision's initialization). */
  static create(gpu: Gpu, config: DenseNetConfig, seed = 0): DenseNetModel {
    const arch = describeDenseNet(config);
    const { offsets, trainableElements, runningElements } = parameterOffsets(arch);
    const trainable = gpu.arena.allocate(`${config.name}.parameters`, 'parameters', trainableElements * 4);
    const running = gpu.arena.allocate(`${config.name}.running-statistics`, 'parameters', runningElements * 4);
    const layout: ParameterLayout = { trainable: tensor(trainable, [trainableElements]), running: tensor(running, [runningElements]), offsets };
    const model = new DenseNetModel(gpu, arch, layout, { trainable, running });
    model.initialize(seed);
    return model;
  }

  initialize(seed: number): void {
    const rng = new SeededRandom(seed);
    const host = { trainable: new Float32Array(this.layout.trainable.shape[0]), running: new Float32Array(this.layout.running.shape[0]) };
    for (const p of this.arch.parameters) {
      const where = this.layout.offsets.get(p.name)!;
      host[where.store].set(initialValues(p.init, size(p.shape), rng), where.offset);
    }
    this.gpu.write(this.buffers.trainable, host.trainable);
    this.gpu.write(this.buffers.running, host.running);
  }

  /** Every parameter and running statistic by its torchvision name. */
  async readParameters(): Promise<Map<string, Float32Array>> {
    const all = { trainable: await this.gpu.read(this.buffers.trainable), running: await this.gpu.read(this.buffers.running) };
    const out = new Map<string, Float32Array>();
    for (const [name, p] of this.layout.offsets) out.set(name, all[p.store].slice(p.offset, p.offset + size(p.shape)));
    return out;
  }

  /** Overwrites parameters by name; every name must exist and every size match (checked before anything is written). */
  writeParameters(values: Map<string, Float32Array>): void {
    for (const [name, data] of values) {
      const p = this.layout.offsets.get(name);
      if (!p) throw new Error(`model "${this.config.name}" has no parameter "${name}"`);
      if (data.length !== size(p.shape)) throw new Error(`parameter "${name}": ${data.length} values given, shape [${p.shape.join(', ')}] needs ${size(p.shape)}`);
    }
    for (const [name, data] of values) {
      const p = this.layout.offsets.get(name)!;
      this.gpu.write(this.buffers[p.store], data, p.offset);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.gpu.arena.free(this.buffers.trainable);
    this.gpu.arena.free(this.buffers.running);
  }
}
