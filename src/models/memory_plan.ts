// Planned GPU memory of a DenseNet, computed without a GPU: the same graph the executor runs,
// planned the same way, so `summary` and the memory benchmark can report models that do not fit.

import type { MemoryCategory } from '../gpu/arena.js';
import type { ArenaBuffer } from '../gpu/arena.js';
import type { OptimizerConfig } from '../graph/ops/optimizer.js';
import { planMemory, type MemoryPlan } from '../graph/planner.js';
import { describeDenseNet } from './architecture.js';
import type { DenseNetConfig } from './densenet_config.js';
import { buildDenseNetGraph, type FreezePart, type MemoryStrategy, type ParameterLayout } from './densenet_graph.js';
import { parameterOffsets } from './model.js';
import type { KernelClass } from '../gpu/profile.js';

export interface DenseNetMemoryPlan {
  plan: MemoryPlan;
  /** Bytes per category including the model's own parameter buffers (which the graph does not plan). */
  byCategory: Record<MemoryCategory, number>;
  totalBytes: number;
  /** The largest single storage (kernels bind one larger than maxStorageBufferBindingSize in channel chunks). */
  largestTensorBytes: number;
  /**
   * The largest channel (N·H·W values of an activation): what must fit one binding
   * (maxStorageBufferBindingSize), since channel chunks cannot split it (kernels/chunks.ts).
   */
  largestChannelBytes: number;
}

/** A stand-in buffer: planning needs the layout's sizes, never its memory. */
function placeholder(label: string, bytes: number): ArenaBuffer {
  return { buffer: undefined as unknown as GPUBuffer, bytes, label, category: 'parameters' };
}

export function planDenseNetMemory(config: DenseNetConfig, o: { batch: number; strategy: MemoryStrategy; training: boolean; optimizer?: OptimizerConfig; kernels?: KernelClass; freeze?: FreezePart }): DenseNetMemoryPlan {
  const arch = describeDenseNet(config);
  const { offsets, trainableElements, runningElements } = parameterOffsets(arch);
  const layout: ParameterLayout = {
    trainable: { buffer: placeholder('parameters', trainableElements * 4), offset: 0, shape: [trainableElements] },
    running: { buffer: placeholder('running', runningElements * 4), offset: 0, shape: [runningElements] },
    offsets,
  };
  const built = buildDenseNetGraph(arch, layout, o);
  const plan = planMemory(built.graph);
  const byCategory = { ...plan.poolBytes };
  byCategory.parameters += (trainableElements + runningElements) * 4;
  const totalBytes = Object.values(byCategory).reduce((a, b) => a + b, 0);
  const largestTensorBytes = Math.max(...built.graph.storages.filter((s) => !s.external).map((s) => s.elements * 4));
  const largestChannelBytes = Math.max(...built.graph.values.filter((v) => v.shape.length === 4).map((v) => v.shape.slice(1).reduce((a, b) => a * b, 1) * 4));
  return { plan, byCategory, totalBytes, largestTensorBytes, largestChannelBytes };
}
