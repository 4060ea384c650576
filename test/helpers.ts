// Shared test helpers: seeded random data, the `atol + rtol·|ref|` comparison, central finite
// differences, and one GPU device per test file.

import * as assert from 'uvu/assert';
import { openDevice, type Gpu } from '../src/gpu/device.js';

/** Mulberry32: small, seeded, reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * scale;
  return out;
}

export interface Tolerance { atol: number; rtol: number }

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst element. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(a))) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    assert.unreachable(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
      `(atol ${tol.atol}, rtol ${tol.rtol}; ${expected.length} elements)`);
  }
}

/** Central finite-difference gradient of a scalar function, in float64. */
export function finiteDifference(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-5): Float64Array {
  const xs = Float64Array.from(x);
  const grad = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const keep = xs[i];
    xs[i] = keep + eps;
    const up = f(xs);
    xs[i] = keep - eps;
    const down = f(xs);
    xs[i] = keep;
    grad[i] = (up - down) / (2 * eps);
  }
  return grad;
}

/** Σ w·y, a random linear functional that turns an op's output into a scalar loss for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

let shared: Promise<Gpu> | undefined;
/** One device per test process; closed by `closeTestGpu()` in the suite's `after` hook. */
export function testGpu(): Promise<Gpu> {
  shared ??= openDevice();
  return shared;
}
export async function closeTestGpu(): Promise<void> {
  if (shared) (await shared).close();
  shared = undefined;
}
