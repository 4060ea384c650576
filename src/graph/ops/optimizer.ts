// The optimizer as one op over the model's flat trainable-parameter storage (one or a few
// dispatches for the whole model). The learning rate and Adam's step travel as uniforms rewritten
// every step from the StepContext.

import { adamUpdate } from '../../kernels/optimizer_adam.js';
import { sgdUpdate } from '../../kernels/optimizer_sgd.js';
import type { Graph, Value } from '../graph.js';

export type OptimizerConfig =
  | { kind: 'sgd'; lr: number; momentum: number; nesterov: boolean; weightDecay: number }
  | { kind: 'adam'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean };

export function optimizerStep(g: Graph, config: OptimizerConfig, params: Value, grads: Value): void {
  if (config.kind === 'sgd') {
    const velocity = config.momentum > 0 ? g.tensor('optimizer.velocity', params.shape, 'optimizer', { persistent: true }) : undefined;
    g.add({
      name: 'sgd', reads: [grads], writes: [params, ...(velocity ? [velocity] : [])], phase: 'update',
      build: (c) => sgdUpdate(c.gpu, { ...config, params: c.ref(params), grads: c.ref(grads), velocity: velocity && c.ref(velocity) }),
      onStep: (launches, step) => launches.forEach((l) => l.setUniforms(step.queue, { lr: step.lr })),
    });
  } else {
    const m = g.tensor('optimizer.m', params.shape, 'optimizer', { persistent: true });
    const v = g.tensor('optimizer.v', params.shape, 'optimizer', { persistent: true });
    g.add({
      name: config.decoupled ? 'adamw' : 'adam', reads: [grads], writes: [params, m, v], phase: 'update',
      build: (c) => adamUpdate(c.gpu, { ...config, step: 1, params: c.ref(params), grads: c.ref(grads), m: c.ref(m), v: c.ref(v) }),
      onStep: (launches, step) => launches.forEach((l) => l.setUniforms(step.queue, { lr: step.lr, step: step.step })),
    });
  }
}
