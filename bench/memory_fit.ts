// Least-squares fits of peak memory against depth (linear b·d + c and quadratic a·d² + b·d + c)
// and the search for the deepest network that fits a memory budget.

export interface PolynomialFit {
  degree: 1 | 2;
  /** Coefficients from the constant term up: [c, b] or [c, b, a]. */
  coefficients: number[];
  /** 1 − SS_res / SS_tot (1 when every point is on the curve). */
  r2: number;
  /** Root-mean-square residual, in the units of y. */
  rmsResidual: number;
  /** max |y − fit| / |y| over the points. */
  maxRelativeResidual: number;
}

export function evaluateFit(fit: PolynomialFit, x: number): number {
  return fit.coefficients.reduce((sum, c, i) => sum + c * x ** i, 0);
}

/** Solves the small dense system A·x = b by Gaussian elimination with partial pivoting (float64). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (m[pivot][col] === 0) throw new Error('fit: the points do not determine the polynomial (too few distinct x)');
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let k = col; k <= n; k++) m[r][k] -= f * m[col][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * Least-squares polynomial of the given degree through (xs, ys). x is centred and scaled to [−1, 1]
 * before the normal equations are formed (well conditioned for depths in the thousands), and the
 * coefficients are mapped back to powers of the original x.
 */
export function fitPolynomial(xs: number[], ys: number[], degree: 1 | 2): PolynomialFit {
  if (xs.length !== ys.length) throw new Error(`fit: ${xs.length} x values but ${ys.length} y values`);
  if (xs.length < degree + 1) throw new Error(`fit: a degree-${degree} fit needs at least ${degree + 1} points, got ${xs.length}`);
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const mid = (lo + hi) / 2;
  const half = (hi - lo) / 2 || 1;
  const ts = xs.map((x) => (x - mid) / half);
  const k = degree + 1;
  const ata = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => ts.reduce((s, t) => s + t ** (i + j), 0)));
  const aty = Array.from({ length: k }, (_, i) => ts.reduce((s, t, p) => s + t ** i * ys[p], 0));
  const g = solve(ata, aty); // y = Σ g_i · ((x − mid) / half)^i
  // Expand into powers of x.
  const coefficients = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    // ((x − mid)/half)^i = Σ_j C(i, j) x^j (−mid)^(i−j) / half^i
    for (let j = 0; j <= i; j++) coefficients[j] += g[i] * binomial(i, j) * (-mid) ** (i - j) / half ** i;
  }
  const fit: PolynomialFit = { degree, coefficients, r2: 0, rmsResidual: 0, maxRelativeResidual: 0 };
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
  let ssRes = 0;
  let ssTot = 0;
  for (let p = 0; p < xs.length; p++) {
    const r = ys[p] - evaluateFit(fit, xs[p]);
    ssRes += r * r;
    ssTot += (ys[p] - mean) ** 2;
    fit.maxRelativeResidual = Math.max(fit.maxRelativeResidual, Math.abs(r) / Math.max(Math.abs(ys[p]), 1e-300));
  }
  fit.r2 = ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : 0;
  fit.rmsResidual = Math.sqrt(ssRes / xs.length);
  return fit;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Above this largest relative residual a straight line does not explain the points. */
export const LINEAR_TOLERANCE = 0.02;

export interface GrowthFits {
  linear: PolynomialFit;
  quadratic: PolynomialFit;
  /** 'linear' when the line's largest relative residual is at most LINEAR_TOLERANCE, else 'quadratic'. */
  explainedBy: 'linear' | 'quadratic';
  /** a·d² / fit(d) at the deepest point: how much of the peak the quadratic term carries there. */
  quadraticShareAtMax: number;
}

export function fitGrowth(depths: number[], bytes: number[]): GrowthFits {
  const linear = fitPolynomial(depths, bytes, 1);
  const quadratic = fitPolynomial(depths, bytes, 2);
  const dMax = Math.max(...depths);
  return {
    linear,
    quadratic,
    explainedBy: linear.maxRelativeResidual <= LINEAR_TOLERANCE ? 'linear' : 'quadratic',
    quadraticShareAtMax: (quadratic.coefficients[2] * dMax * dMax) / evaluateFit(quadratic, dMax),
  };
}

export interface DeepestResult {
  /** The largest n with bytesAt(n) ≤ budget; null when even nMin does not fit. */
  n: number | null;
  bytes: number | null;
  /** bytesAt(n + 1): the first n that does not fit (null when nMax was reached and still fit). */
  nextBytes: number | null;
  /** How many times bytesAt was called. */
  evaluations: number;
}

/**
 * The largest whole n in [nMin, nMax] with bytesAt(n) ≤ budget, for a bytesAt that grows with n:
 * doubling steps find an n over budget, then bisection between the last fitting and the first
 * failing n. Values are cached, so each n is planned once.
 */
export function deepestWithin(budget: number, bytesAt: (n: number) => number, nMin = 1, nMax = 100_000): DeepestResult {
  const cache = new Map<number, number>();
  const at = (n: number) => {
    let v = cache.get(n);
    if (v === undefined) { v = bytesAt(n); cache.set(n, v); }
    return v;
  };
  if (at(nMin) > budget) return { n: null, bytes: null, nextBytes: at(nMin), evaluations: cache.size };
  let good = nMin;
  let bad: number | null = null;
  let step = 1;
  while (bad === null) {
    const next = Math.min(good + step, nMax);
    if (next === good) break;
    if (at(next) <= budget) good = next; else bad = next;
    step *= 2;
  }
  while (bad !== null && bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (at(mid) <= budget) good = mid; else bad = mid;
  }
  return { n: good, bytes: at(good), nextBytes: bad === null ? null : at(good + 1), evaluations: cache.size };
}
