// Static memory planning. The graph never changes, so every storage's lifetime is known before
// the first step: from the first op that touches it to the last (persistent storages live for the
// whole step). Storages whose lifetimes do not overlap may share bytes. Each memory category gets
// one buffer, and each storage an offset in it, by first-fit placement in decreasing size order.
// The plan's bytes per category are exactly what the arena allocates when the graph runs.

import { MEMORY_CATEGORIES, type MemoryCategory } from '../gpu/arena.js';
import type { Graph, Storage } from './graph.js';

/** Offsets are multiples of this, so each tensor can be bound as its own range (minStorageBufferOffsetAlignment). */
export const PLAN_ALIGNMENT = 256;

export interface Lifetime { first: number; last: number }

export interface MemoryPlan {
  /** Byte offset of each storage inside its category's buffer. */
  offsets: Map<Storage, number>;
  lifetimes: Map<Storage, Lifetime>;
  /** Bytes of each category's buffer (0 where the category has no storage). */
  poolBytes: Record<MemoryCategory, number>;
  /** The largest sum of live bytes at any op, per category: the bound any placement must meet. */
  liveBoundBytes: Record<MemoryCategory, number>;
  /** Total bytes allocated for the graph's storages. */
  totalBytes: number;
}

function alignUp(n: number, a: number): number { return Math.ceil(n / a) * a; }

export function storageBytes(s: Storage): number { return alignUp(s.elements * 4, PLAN_ALIGNMENT); }

export function lifetimes(graph: Graph): Map<Storage, Lifetime> {
  const result = new Map<Storage, Lifetime>();
  const end = graph.ops.length;
  graph.ops.forEach((op, i) => {
    for (const v of [...op.reads, ...op.writes]) {
      const l = result.get(v.storage);
      if (l) l.last = i; else result.set(v.storage, { first: i, last: i });
    }
  });
  for (const s of graph.storages) {
    if (s.persistent) result.set(s, { first: -1, last: end });
  }
  return result;
}

export function planMemory(graph: Graph): MemoryPlan {
  const lives = lifetimes(graph);
  const offsets = new Map<Storage, number>();
  const poolBytes = Object.fromEntries(MEMORY_CATEGORIES.map((c) => [c, 0])) as Record<MemoryCategory, number>;
  const liveBoundBytes = { ...poolBytes };
  for (const category of MEMORY_CATEGORIES) {
    const storages = graph.storages.filter((s) => s.category === category && lives.has(s) && !s.external);
    storages.sort((a, b) => storageBytes(b) - storageBytes(a) || lives.get(a)!.first - lives.get(b)!.first);
    const placed: { start: number; end: number; life: Lifetime }[] = [];
    for (const s of storages) {
      const life = lives.get(s)!;
      const size = storageBytes(s);
      const conflicts = placed
        .filter((p) => p.life.first <= life.last && life.first <= p.life.last)
        .sort((a, b) => a.start - b.start);
      let offset = 0;
      for (const c of conflicts) {
        if (offset + size <= c.start) break;
        offset = Math.max(offset, c.end);
      }
      placed.push({ start: offset, end: offset + size, life });
      offsets.set(s, offset);
      poolBytes[category] = Math.max(poolBytes[category], offset + size);
    }
    liveBoundBytes[category] = maxLiveBytes(storages, lives, graph.ops.length);
  }
  const totalBytes = Object.values(poolBytes).reduce((a, b) => a + b, 0);
  return { offsets, lifetimes: lives, poolBytes, liveBoundBytes, totalBytes };
}

function maxLiveBytes(storages: Storage[], lives: Map<Storage, Lifetime>, opCount: number): number {
  const delta = new Map<number, number>();
  for (const s of storages) {
    const l = lives.get(s)!;
    delta.set(l.first, (delta.get(l.first) ?? 0) + storageBytes(s));
    delta.set(l.last + 1, (delta.get(l.last + 1) ?? 0) - storageBytes(s));
  }
  let live = 0;
  let peak = 0;
  for (const t of [...delta.keys()].sort((a, b) => a - b)) {
    live += delta.get(t)!;
    if (t <= opCount) peak = Math.max(peak, live);
  }
  return peak;
}
