// Reverse-mode autograd over the static graph. One pass over the forward ops in reverse order
// (never one walk per path: DenseNet's fan-out would make that exponential); each op's backward
// rule emits its backward ops through a GradientBuilder.
//
// Gradients live in gradient storages that mirror forward storages, so the gradient of a view is
// the same view of the gradient storage: every later layer's contribution to a dense block's
// shared input lands in the one block-gradient buffer. Summing: the first contribution to a
// gradient storage (in backward order) writes if it covers the whole storage; otherwise the
// storage is zero-filled first. Every later contribution adds (kernels' `accumulate` flag).

import { fillLaunch } from '../kernels/fill.js';
import { coversStorage, Graph, GraphError, type Storage, type Value } from './graph.js';

export class GradientBuilder {
  private readonly gradStorage = new Map<Storage, Storage>();
  private readonly contributed = new Set<Storage>();
  private readonly parameterViews = new Set<string>();

  constructor(readonly graph: Graph) {}

  private gradStorageOf(s: Storage): Storage {
    let g = this.gradStorage.get(s);
    if (!g) {
      // Parameter gradients are persistent (the optimizer reads them after backward); activation
      // gradients are planned like any other temporary.
      const persistent = s.category === 'parameters';
      g = this.graph.storage(`${s.name}.grad`, s.elements, 'gradients', persistent);
      this.gradStorage.set(s, g);
    }
    return g;
  }

  private gradView(v: Value): Value {
    return this.graph.view(this.gradStorageOf(v.storage), `${v.name}.grad`, v.shape, v.offset);
  }

  /** The gradient of `v`, if anything has contributed to it; otherwise undefined (the gradient is zero). */
  grad(v: Value): Value | undefined {
    const g = this.gradStorage.get(v.storage);
    return g && this.contributed.has(g) ? this.gradView(v) : undefined;
  }

  /** Registers `gradient` (already computed, e.g. by the loss) as the gradient of `v`. */
  seed(v: Value, gradient: Value): void {
    if (this.gradStorage.has(v.storage)) throw new GraphError(`autograd: "${v.name}" already has a gradient`);
    if (!coversStorage(v) || !coversStorage(gradient)) throw new GraphError(`autograd: seed "${v.name}" must cover its storage`);
    this.gradStorage.set(v.storage, gradient.storage);
    this.contributed.add(gradient.storage);
  }

  /**
   * Where a backward op writes its contribution to the gradient of `v`, and whether it must add.
   * Undefined when `v` needs no gradient (e.g. the input images): the op skips that output.
   */
  contribute(v: Value): { grad: Value; accumulate: boolean } | undefined {
    if (!v.requiresGrad) return undefined;
    const g = this.gradStorageOf(v.storage);
    if (v.storage.category === 'parameters') {
      // Parameter-gradient kernels write (=): each parameter is used once per step, and each
      // parameter's range of the flat gradient storage is written exactly once.
      const key = `${v.storage.id}:${v.offset}`;
      if (this.parameterViews.has(key)) throw new GraphError(`autograd: parameter "${v.name}" is used twice; parameter gradients are written, not summed`);
      this.parameterViews.add(key);
      this.contributed.add(g);
      return { grad: this.gradView(v), accumulate: false };
    }
    const first = !this.contributed.has(g);
    this.contributed.add(g);
    if (first && !coversStorage(v)) {
      const whole = this.graph.view(g, g.name, [g.elements]);
      this.graph.add({ name: `${g.name}.zero`, reads: [], writes: [whole], build: (ctx) => fillLaunch(ctx.gpu, ctx.ref(whole), 0) });
    }
    return { grad: this.gradView(v), accumulate: !first || !coversStorage(v) };
  }
}

/**
 * Appends the backward ops of every forward op to the graph. `seeds` pairs values with their
 * already-computed gradients (the loss op writes d(loss)/d(logits) in the forward pass).
 */
export function buildBackward(graph: Graph, seeds: [Value, Value][]): GradientBuilder {
  const g = new GradientBuilder(graph);
  for (const [v, grad] of seeds) g.seed(v, grad);
  const forward = graph.ops.filter((op) => op.phase === 'forward');
  graph.setPhase('backward');
  for (let i = forward.length - 1; i >= 0; i--) {
    const op = forward[i];
    if (op.backward && op.writes.some((w) => g.grad(w) !== undefined)) op.backward(g);
  }
  graph.setPhase('update');
  return g;
}
