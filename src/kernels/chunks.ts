// Operands larger than one storage binding (maxStorageBufferBindingSize, or the --max-binding cap),
// read and written in channel chunks. Activations are channel-major [C, N, H, W], so a channel range
// is one contiguous byte range: each chunk is bound on its own (at its 256-byte-aligned start, by the
// binding rule of binding.ts) and the kernel runs once per chunk. Where every operand fits, the op
// runs exactly as before: one call, the same launches and pipelines.

import type { Launch } from '../gpu/program.js';
import { bindingLimitText, type CappedLimits } from '../gpu/profile.js';
import { oversizedBindings, type Operand } from './binding.js';
import { fmt, ShapeError, sizeOf, type TensorRef } from './tensor.js';

export interface ChannelRange { start: number; count: number }

/** [0, total) as `parts` consecutive ranges whose sizes differ by at most one. */
export function channelRanges(total: number, parts: number): ChannelRange[] {
  const out: ChannelRange[] = [];
  for (let i = 0, start = 0; i < parts; i++) {
    const count = Math.floor(total / parts) + (i < total % parts ? 1 : 0);
    out.push({ start, count });
    start += count;
  }
  return out;
}

/** Channels [start, start + count) of a tensor whose first axis is channels (an activation [C, N, H, W], a per-channel vector [C], pooled [C, N], a weight's output rows). */
export function channelsOf(ref: TensorRef, range: ChannelRange): TensorRef {
  const perChannel = sizeOf(ref.shape.slice(1));
  return { buffer: ref.buffer, offset: ref.offset + range.start * perChannel, shape: [range.count, ...ref.shape.slice(1)] };
}

/**
 * Runs every call (each builds one chunk's launches) and returns their launches in order; when one
 * fails, the launches the others built are destroyed (no uniform buffer outlives a failed op) and
 * the first error is thrown.
 */
export async function buildEach(calls: (() => Promise<Launch[]>)[]): Promise<Launch[]> {
  const settled = await Promise.allSettled(calls.map((c) => c()));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const r of settled) if (r.status === 'fulfilled') r.value.forEach((l) => l.destroy());
    throw failed.reason;
  }
  return settled.flatMap((r) => (r as PromiseFulfilledResult<Launch[]>).value);
}

/**
 * The refusal when chunking along channels cannot make an op's bindings fit: one channel of
 * `name` (N·H·W values) is already more than one binding holds.
 */
export function oneChannelTooLarge(limits: CappedLimits, op: string, name: string, ref: TensorRef): ShapeError {
  const { allows } = bindingLimitText(limits);
  const bytes = sizeOf(ref.shape.slice(1)) * 4;
  return new ShapeError(`${op}: one channel of "${name}" ${fmt(ref.shape)} is ${bytes} bytes of buffer "${ref.buffer.label}", ` +
    `and channel chunks cannot split it, but ${allows}; use a smaller batch or a larger binding size`);
}

/** Fewest equal parts of `total` channels worth trying first: the largest operand over the binding size, rounded up. */
export function firstGuess(limits: CappedLimits, total: number, refs: TensorRef[]): number {
  const room = Math.max(1, limits.maxStorageBufferBindingSize - 2 * limits.minStorageBufferOffsetAlignment);
  const largest = Math.max(0, ...refs.map((r) => sizeOf(r.shape) * 4));
  return Math.max(1, Math.min(total, Math.ceil(largest / room)));
}

/**
 * An op over operands that all have channels as their first axis (activations, per-channel
 * vectors) and treats each channel on its own (batch-norm statistics, forward and backward, pools):
 * calls `launch` once with the operands whole when every binding fits (today's path), else once per
 * channel range, with the fewest equal ranges in which every binding fits. Refuses by name where a
 * single channel does not fit.
 */
export async function perChannelChunks<K extends string>(
  limits: CappedLimits, op: string, operands: Record<K, Operand>, launch: (part: Record<K, TensorRef>, range: ChannelRange) => Promise<Launch[]>,
): Promise<Launch[]> {
  const names = Object.keys(operands) as K[];
  const channels = operands[names[0]].ref.shape[0];
  const whole = Object.fromEntries(names.map((n) => [n, operands[n].ref])) as Record<K, TensorRef>;
  if (oversizedBindings(limits, operands).length === 0) return launch(whole, { start: 0, count: channels });
  for (const n of names) {
    if (operands[n].ref.shape[0] !== channels) throw new ShapeError(`${op}: "${n}" has shape ${fmt(operands[n].ref.shape)}, expected ${channels} channels first like "${names[0]}"`);
  }
  const partOf = (range: ChannelRange) => Object.fromEntries(names.map((n) => [n, { ...operands[n], ref: channelsOf(operands[n].ref, range) }])) as Record<K, Operand>;
  for (let parts = firstGuess(limits, channels, names.map((n) => operands[n].ref)); ; parts++) {
    const ranges = channelRanges(channels, parts);
    const over = ranges.map((r) => oversizedBindings(limits, partOf(r))).find((o) => o.length > 0);
    if (!over) {
      return buildEach(ranges.map((r) => () => launch(Object.fromEntries(names.map((n) => [n, channelsOf(operands[n].ref, r)])) as Record<K, TensorRef>, r)));
    }
    if (parts >= channels) {
      const name = over[0][0] as K;
      throw oneChannelTooLarge(limits, op, name, operands[name].ref);
    }
  }
}
