// Plain TypeScript references for batch normalization (float64 throughout), the oracle the WGSL
// kernels in batchnorm.ts are tested against. Layout: x is channel-major [C, N, H, W]; per-channel
// vectors have length C; M = N·H·W values per channel.

export interface BatchNormStats { mean: Float64Array; variance: Float64Array }

function channelsAndCount(shape: readonly number[]): [number, number] {
  if (shape.length !== 4) throw new RangeError(`batchNorm reference: x must be [C, N, H, W], got [${shape.join(', ')}]`);
  return [shape[0], shape[1] * shape[2] * shape[3]];
}

/** Per-channel mean and biased variance, two-pass. */
export function batchNormStatisticsReference(x: ArrayLike<number>, shape: readonly number[]): BatchNormStats {
  const [C, M] = channelsAndCount(shape);
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let i = 0; i < M; i++) sum += x[c * M + i];
    const mu = sum / M;
    let squares = 0;
    for (let i = 0; i < M; i++) squares += (x[c * M + i] - mu) ** 2;
    mean[c] = mu;
    variance[c] = squares / M;
  }
  return { mean, variance };
}

export interface BatchNormForwardInputs {
  x: ArrayLike<number>;
  shape: readonly number[];
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  eps: number;
  relu?: boolean;
}

/** y = (x − mean)·(variance + eps)^−½·gamma + beta, then ReLU if asked. */
export function batchNormForwardReference(t: BatchNormForwardInputs): Float64Array {
  const [C, M] = channelsAndCount(t.shape);
  const y = new Float64Array(C * M);
  for (let c = 0; c < C; c++) {
    const scale = t.gamma[c] / Math.sqrt(t.variance[c] + t.eps);
    for (let i = 0; i < M; i++) {
      const v = (t.x[c * M + i] - t.mean[c]) * scale + t.beta[c];
      y[c * M + i] = t.relu && v <= 0 ? 0 : v;
    }
  }
  return y;
}

/** scale = gamma·(variance + eps)^−½, shift = beta − mean·scale. */
export function batchNormAffineReference(t: { mean: ArrayLike<number>; variance: ArrayLike<number>; gamma: ArrayLike<number>; beta: ArrayLike<number>; eps: number }): { scale: Float64Array; shift: Float64Array } {
  const C = t.mean.length;
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = t.gamma[c] / Math.sqrt(t.variance[c] + t.eps);
    shift[c] = t.beta[c] - t.mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Training-mode backward: mean and variance are the batch statistics of x, so the gradient flows
 * through them. With relu, dy is the gradient w.r.t. the ReLU output; it is masked where the
 * recomputed pre-ReLU value is ≤ 0.
 */
export function batchNormBackwardReference(t: BatchNormForwardInputs & { dy: ArrayLike<number> }): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const [C, M] = channelsAndCount(t.shape);
  const dx = new Float64Array(C * M);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const masked = new Float64Array(M);
  for (let c = 0; c < C; c++) {
    const invstd = 1 / Math.sqrt(t.variance[c] + t.eps);
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let i = 0; i < M; i++) {
      const xhat = (t.x[c * M + i] - t.mean[c]) * invstd;
      const pre = xhat * t.gamma[c] + t.beta[c];
      const g = t.relu && pre <= 0 ? 0 : t.dy[c * M + i];
      masked[i] = g;
      sumDy += g;
      sumDyXhat += g * xhat;
    }
    dgamma[c] = sumDyXhat;
    dbeta[c] = sumDy;
    const k = (t.gamma[c] * invstd) / M;
    for (let i = 0; i < M; i++) {
      const xhat = (t.x[c * M + i] - t.mean[c]) * invstd;
      dx[c * M + i] = k * (M * masked[i] - sumDy - xhat * sumDyXhat);
    }
  }
  return { dx, dgamma, dbeta };
}

/**
 * PyTorch's running-statistics update: running = (1 − momentum)·running + momentum·batch, with the
 * batch variance made unbiased (×count/(count − 1)).
 */
export function batchNormUpdateRunningReference(t: { mean: ArrayLike<number>; variance: ArrayLike<number>; runningMean: ArrayLike<number>; runningVariance: ArrayLike<number>; momentum: number; count: number }): { runningMean: Float64Array; runningVariance: Float64Array } {
  const C = t.mean.length;
  const runningMean = new Float64Array(C);
  const runningVariance = new Float64Array(C);
  const unbias = t.count / (t.count - 1);
  for (let c = 0; c < C; c++) {
    runningMean[c] = (1 - t.momentum) * t.runningMean[c] + t.momentum * t.mean[c];
    runningVariance[c] = (1 - t.momentum) * t.runningVariance[c] + t.momentum * t.variance[c] * unbias;
  }
  return { runningMean, runningVariance };
}
