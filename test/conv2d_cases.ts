// What the conv2d kernel tests share: the tolerance and why, the sentinel, the case shape and the
// tensor shapes a case implies. Each test file lists its own cases.
import { conv2dOutputSize, type Conv2dParams } from '../src/kernels/conv2d.js';
import type { Tolerance } from './helpers.js';

/**
 * Inputs are uniform in [−1, 1), so an output is a sum of K ≤ 13·49 = 637 (forward, backward-input)
 * or N·Ho·Wo ≤ 3·9·9 = 243 (backward-filter) products of size ≤ 1, |sum| ≲ 20. Float32 summation
 * in any order is then within about √K·2⁻²⁴·Σ|terms| ≈ 25·6e-8·160 ≈ 2.4e-4 in the very worst case
 * and ~1e-5 typically; a wrong tap, offset or bound is off by O(0.1–1). atol 1e-4 + rtol 1e-4.
 */
export const CONV_TOLERANCE: Tolerance = { atol: 1e-4, rtol: 1e-4 };
/** Written around an output slice: a kernel that writes outside its slice changes it. */
export const SENTINEL = -777;

export interface ConvCase { name: string; Cin: number; Cout: number; N: number; H: number; W: number; KH: number; KW: number; params: Conv2dParams }

/** The x, w and y shapes of a case (channel-major activations [C, N, H, W]). */
export function convShapes(c: ConvCase) {
  const [Ho, Wo] = conv2dOutputSize(c.H, c.W, c.KH, c.KW, c.params);
  return { x: [c.Cin, c.N, c.H, c.W], w: [c.Cout, c.Cin, c.KH, c.KW], y: [c.Cout, c.N, Ho, Wo] };
}

export const elementCount = (s: number[]) => s.reduce((a, b) => a * b, 1);
export const tileName = (t: object | undefined) => (t ? JSON.stringify(t) : 'default');
