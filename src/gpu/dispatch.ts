// Folds a 1-D workgroup count into a 2-D/3-D grid that stays under the per-dimension limit
// (65,535 by default; a 1-D dispatch past it is invalid, cf. tfjs #8373). Kernels recover the
// linear workgroup index with the prelude's `workgroupIndex(wid, nwg)` and skip indices past the count.

export type WorkgroupGrid = [number, number, number];

export function foldWorkgroups(count: number, maxPerDimension = 65535): WorkgroupGrid {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`dispatch: workgroup count must be a whole number >= 0, got ${count}`);
  if (count <= maxPerDimension) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDimension);
  if (y <= maxPerDimension) return [Math.ceil(count / y), y, 1];
  const z = Math.ceil(count / (maxPerDimension * maxPerDimension));
  if (z > maxPerDimension) throw new RangeError(`dispatch: ${count} workgroups exceed ${maxPerDimension}³`);
  const perZ = Math.ceil(count / z);
  const y2 = Math.ceil(perZ / maxPerDimension);
  return [Math.ceil(perZ / y2), y2, z];
}

/** Workgroups needed to cover `items` with `perWorkgroup` items each. */
export function groupsFor(items: number, perWorkgroup: number): number {
  return Math.ceil(items / perWorkgroup);
}
