// How far one implementation's output is from another's, as the benchmarks and the ONNX tests
// report it: max |actual − expected| / max |expected|, the error relative to the outputs' scale
// (an elementwise relative error would blow up on outputs near zero). NaN anywhere → Infinity.

export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
  }
  return scale > 0 ? diff / scale : diff;
}
