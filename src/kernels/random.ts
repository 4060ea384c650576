// Counter-based random numbers: a pure function of (seed, index), written once in WGSL and once in
// TypeScript with the same u32 arithmetic, so a CPU reference reproduces a GPU kernel's random bits
// exactly and a backward pass can recompute them instead of storing them (dropout's mask).
//
// The mixing step is the PCG hash of Jarzynski & Olano, "Hash Functions for GPU Rendering" (JCGT
// 2020): one round of an LCG followed by PCG's RXS-M-XS output permutation; a bijection on u32.
// Two inputs are combined so that the seed enters twice, before and after the index is mixed:
//   randomU32(seed, index) = pcg(pcg(index ^ pcg(seed)) ^ seed)
// With only one keyed round, pcg(index ^ k(seed)), the masks of two seeds would be the same bits
// with their indices permuted (i ↦ i ^ k₁ ^ k₂); the second keyed round breaks that relation.

/** PCG hash of one u32 (TypeScript twin of the WGSL `pcgHash`). */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform u32 from (seed, index), bit-identical to the WGSL `randomU32`. */
export function randomU32(seed: number, index: number): number {
  return pcgHash((pcgHash((index ^ pcgHash(seed)) >>> 0) ^ seed) >>> 0);
}

/**
 * Derives an independent seed for one random site (e.g. one dropout layer) from a step's seed, so
 * that two layers given the same step seed do not draw the same mask. Not used by the kernels.
 */
export function deriveSeed(stepSeed: number, site: number): number {
  return pcgHash((pcgHash(site >>> 0) + Math.imul(stepSeed >>> 0, 0x9e3779b9)) >>> 0);
}

/** WGSL text defining `pcgHash(v: u32) -> u32` and `randomU32(seed: u32, index: u32) -> u32`. */
export const RANDOM_WGSL = /* wgsl */ `
fn pcgHash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn randomU32(seed: u32, index: u32) -> u32 {
  return pcgHash(pcgHash(index ^ pcgHash(seed)) ^ seed);
}
`;

/** Checks that `seed` is a u32 (what the kernels' `seed` uniform holds). */
export function checkSeed(op: string, seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`${op}: seed must be an integer in [0, 2^32), got ${seed}`);
  }
}
