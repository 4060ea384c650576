// Tensor references: a range of an arena buffer with a shape, and the checks every kernel runs
// before it records anything. Activations are channel-major, shape [C, N, H, W], so a channel
// slice [c0, c0 + c) of a dense block's buffer is one contiguous range (DESIGN.md §3).

import type { ArenaBuffer } from '../gpu/arena.js';

export interface TensorRef {
  readonly buffer: ArenaBuffer;
  /** Offset of the first element, in 4-byte elements. */
  readonly offset: number;
  readonly shape: readonly number[];
}

export class ShapeError extends Error {}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function tensor(buffer: ArenaBuffer, shape: readonly number[], offset = 0): TensorRef {
  const ref = { buffer, offset, shape: [...shape] };
  checkInBuffer('tensor', buffer.label, ref);
  return ref;
}

/** Channels [c0, c0 + channels) of a channel-major [C, N, H, W] activation. */
export function channelSlice(ref: TensorRef, c0: number, channels: number): TensorRef {
  const [C, ...rest] = ref.shape;
  if (ref.shape.length !== 4 || c0 < 0 || channels < 0 || c0 + channels > C) {
    throw new ShapeError(`channelSlice: channels [${c0}, ${c0 + channels}) are outside ${fmt(ref.shape)} of "${ref.buffer.label}"`);
  }
  return { buffer: ref.buffer, offset: ref.offset + c0 * sizeOf(rest), shape: [channels, ...rest] };
}

function checkInBuffer(op: string, name: string, ref: TensorRef): void {
  const elements = ref.buffer.bytes / 4;
  if (!ref.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${op}: "${name}" has an invalid shape ${fmt(ref.shape)}`);
  }
  if (!Number.isInteger(ref.offset) || ref.offset < 0 || ref.offset + sizeOf(ref.shape) > elements) {
    throw new ShapeError(`${op}: "${name}" ${fmt(ref.shape)} at element ${ref.offset} is outside its buffer ` +
      `"${ref.buffer.label}" of ${elements} elements`);
  }
}

/**
 * Checks a tensor's shape against what the op expects (`-1` matches any size) and that it lies
 * inside its buffer. Throws a ShapeError naming the op, the operand and both shapes.
 */
export function expectShape(op: string, name: string, ref: TensorRef, expected: readonly number[]): void {
  const ok = ref.shape.length === expected.length && expected.every((d, i) => d === -1 || d === ref.shape[i]);
  if (!ok) throw new ShapeError(`${op}: "${name}" has shape ${fmt(ref.shape)}, expected ${fmt(expected.map((d) => (d === -1 ? '?' : d)) as unknown as number[])}`);
  checkInBuffer(op, name, ref);
}
