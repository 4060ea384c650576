// The static graph: storages (planned memory), values (a shape at an offset of a storage, so a
// dense block's layers are views of one buffer), and ops in execution order. Each op carries its
// GPU launch builder and its backward rule; autograd.ts walks them in reverse.

import type { MemoryCategory } from '../gpu/arena.js';
import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import type { TuningTable } from '../gpu/tuning.js';
import { fmt, sizeOf, type TensorRef } from '../kernels/tensor.js';
import type { GradientBuilder } from './autograd.js';
import type { KernelClass } from '../gpu/profile.js';

export interface Storage {
  readonly id: number;
  readonly name: string;
  readonly elements: number;
  readonly category: MemoryCategory;
  /** Lives for the whole step: parameters, their gradients, optimizer state, running statistics, inputs and read-back outputs. */
  readonly persistent: boolean;
  /** Memory owned outside the graph (a model's parameters, shared by its training and inference graphs); not planned. */
  readonly external?: TensorRef;
  /** A gradient flows back to it: it holds parameters or is written by a differentiable op from such values. */
  requiresGrad: boolean;
}

export interface Value {
  readonly id: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly storage: Storage;
  /** Element offset inside the storage. */
  readonly offset: number;
  /** Whether a gradient flows back to this value (its storage's flag: it depends on a trainable parameter). */
  readonly requiresGrad: boolean;
}

export interface BuildContext {
  gpu: Gpu;
  ref(v: Value): TensorRef;
}

/** What changes between steps: an op rewrites its uniforms from it (dropout seed, learning rate, Adam's step). */
export interface StepContext {
  queue: GPUQueue;
  /** 1-based step number of the training step being recorded. */
  step: number;
  lr: number;
  /** A per-step seed; ops mix in their own index. */
  seed: number;
}

export type Phase = 'forward' | 'backward' | 'update';

export interface Op {
  readonly name: string;
  readonly reads: readonly Value[];
  readonly writes: readonly Value[];
  phase: Phase;
  /** Floating-point operations the op does (a multiply-add counts 2), where it is a GEMM (conv, linear): bench profile's GFLOP/s. */
  readonly flops?: number;
  build(ctx: BuildContext): Promise<Launch[]>;
  /** Emits this op's backward ops (absent: nothing to differentiate). Called only if an output has a gradient. */
  backward?(g: GradientBuilder): void;
  /** Rewrites per-step uniforms before a step is submitted. */
  onStep?(launches: Launch[], step: StepContext): void;
}

export class GraphError extends Error {}

export class Graph {
  /**
   * Which kernel variants the ops build: the software-adapter defaults, or the GPU-class ones
   * (workgroup-memory conv GEMM, split batch-norm reductions). Fixed when the graph is built,
   * because a variant can need its own planned workspace.
   */
  constructor(readonly kernels: KernelClass = 'software') {}

  readonly storages: Storage[] = [];
  readonly values: Value[] = [];
  readonly ops: Op[] = [];
  /** Launch choices by kernel and shape the ops consult as they are added (none: every kernel's default). */
  tuning: TuningTable | undefined;
  private phase: Phase = 'forward';

  storage(name: string, elements: number, category: MemoryCategory, persistent = false): Storage {
    if (!Number.isInteger(elements) || elements <= 0) throw new GraphError(`graph: storage "${name}" needs a positive size, got ${elements}`);
    const s: Storage = { id: this.storages.length, name, elements, category, persistent, requiresGrad: false };
    this.storages.push(s);
    return s;
  }

  /** A storage bound to memory the graph does not own (e.g. a model's parameters). */
  externalStorage(name: string, ref: TensorRef, category: MemoryCategory): Storage {
    const s: Storage = { id: this.storages.length, name, elements: sizeOf(ref.shape), category, persistent: true, external: ref, requiresGrad: false };
    this.storages.push(s);
    return s;
  }

  /** A value over `storage` at an element offset (a view: several values may share a storage). */
  view(storage: Storage, name: string, shape: readonly number[], offset = 0, requiresGrad = false): Value {
    if (offset < 0 || offset + sizeOf(shape) > storage.elements) {
      throw new GraphError(`graph: value "${name}" ${fmt(shape)} at ${offset} does not fit storage "${storage.name}" (${storage.elements} elements)`);
    }
    if (requiresGrad) storage.requiresGrad = true;
    const v: Value = {
      id: this.values.length, name, shape: [...shape], storage, offset,
      get requiresGrad() { return storage.requiresGrad; },
    };
    this.values.push(v);
    return v;
  }

  /** A value with a storage of its own. */
  tensor(name: string, shape: readonly number[], category: MemoryCategory, options: { persistent?: boolean; requiresGrad?: boolean } = {}): Value {
    const s = this.storage(name, sizeOf(shape), category, options.persistent ?? false);
    return this.view(s, name, shape, 0, options.requiresGrad ?? false);
  }

  /** Channels [c0, c0 + channels) of a channel-major [C, N, H, W] value. */
  channelSlice(v: Value, c0: number, channels: number, name = `${v.name}[${c0}:${c0 + channels}]`): Value {
    const [C, ...rest] = v.shape;
    if (v.shape.length !== 4 || c0 < 0 || channels <= 0 || c0 + channels > C) {
      throw new GraphError(`graph: channels [${c0}, ${c0 + channels}) are outside ${fmt(v.shape)} of "${v.name}"`);
    }
    return this.view(v.storage, name, [channels, ...rest], v.offset + c0 * sizeOf(rest));
  }

  /** Marks later ops as belonging to a phase (set by autograd and the optimizer). */
  setPhase(phase: Phase): void { this.phase = phase; }

  /**
   * Appends an op. A differentiable op (one with a backward rule) that reads a value needing a
   * gradient makes everything it writes need one too: this is how requiresGrad propagates.
   */
  add(op: Omit<Op, 'phase'> & { phase?: Phase }): Op {
    const full = op as Op;
    full.phase = op.phase ?? this.phase;
    if (op.backward && op.reads.some((v) => v.requiresGrad)) for (const w of op.writes) w.storage.requiresGrad = true;
    this.ops.push(full);
    return full;
  }
}

/** True when `v` covers its whole storage. */
export function coversStorage(v: Value): boolean {
  return v.offset === 0 && sizeOf(v.shape) === v.storage.elements;
}
