// Seeded random numbers for the data pipeline: mulberry32 (one 32-bit number of state, so it
// serializes as plain JSON) and a 32-bit mixing hash that derives independent streams from
// (seed, purpose, epoch, batch, ...). Every MNIST split, epoch order and augmentation draw depends
// on both: changing either changes them all, so treat them as frozen.

/** Mulberry32: small, fast, seeded; its whole state is `state` (a u32). */
export class Rng {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform u32. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1), a multiple of 2⁻³². */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform integer in [0, n) as ⌊next()·n⌋ (bias below n/2³², negligible for dataset sizes). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** MurmurHash3's 32-bit finalizer: a bijection on u32 with full avalanche. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hashes a sequence of u32 words (order matters) into one u32 seed. */
export function mix32(...words: number[]): number {
  let h = 0x811c9dc5;
  for (const w of words) {
    const k = fmix32(((w >>> 0) ^ 0x9e3779b9) >>> 0);
    h = fmix32((((h << 13) | (h >>> 19)) ^ k) >>> 0);
  }
  return h;
}

/** Purposes mixed into derived seeds, so that streams with the same seed and counters differ. */
export const STREAM = { mnistSplit: 1, mnistOrder: 2, epochOrder: 3, augment: 4, folderSplit: 5 } as const;

/** A uniformly random permutation of 0..n−1 (Fisher–Yates, drawing from `rng`). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  shuffleInPlace(p, rng);
  return p;
}

/** Fisher–Yates shuffle of `a` in place. */
export function shuffleInPlace(a: Uint32Array, rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
