// Plain TypeScript references for conv2d (forward, gradient w.r.t. the input, gradient w.r.t.
// the weights), accumulating in float64. Same layouts as the kernels: x [Cin, N, H, W]
// channel-major, w [Cout, Cin, KH, KW] (PyTorch OIHW), y [Cout, N, Ho, Wo]; no bias.

export interface Conv2dParams {
  /** Stride (rows, columns); default 1. */
  stride?: number | [number, number];
  /** Zero padding on each side (rows, columns); default 0. */
  padding?: number | [number, number];
}

/** Stride and padding as [rows, columns] pairs. */
export function normalizeConvParams(params: Conv2dParams): { stride: [number, number]; padding: [number, number] } {
  const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
    v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  return { stride: pair(params.stride, 1), padding: pair(params.padding, 0) };
}

/** Ho, Wo = floor((H + 2·pad − K) / stride) + 1 (may be ≤ 0 when the kernel does not fit). */
export function conv2dOutputSize(h: number, w: number, kh: number, kw: number, params: Conv2dParams): [number, number] {
  const { stride, padding } = normalizeConvParams(params);
  return [Math.floor((h + 2 * padding[0] - kh) / stride[0]) + 1, Math.floor((w + 2 * padding[1] - kw) / stride[1]) + 1];
}

type Shape4 = readonly number[];

/**
 * Visits every (output pixel, weight tap) pair whose input position lies inside the image:
 * padded positions contribute zero and are skipped. `visit(co-independent indices)`.
 */
function forEachTap(
  xShape: Shape4, wShape: Shape4, params: Conv2dParams,
  visit: (ci: number, n: number, oh: number, ow: number, kh: number, kw: number, xIndex: number, outPixel: number) => void,
): void {
  const [Cin, N, H, W] = xShape;
  const [, , KH, KW] = wShape;
  const { stride: [sh, sw], padding: [ph, pw] } = normalizeConvParams(params);
  const [Ho, Wo] = conv2dOutputSize(H, W, KH, KW, params);
  for (let ci = 0; ci < Cin; ci++) {
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const outPixel = (n * Ho + oh) * Wo + ow;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - ph + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - pw + kw;
              if (iw < 0 || iw >= W) continue;
              visit(ci, n, oh, ow, kh, kw, ((ci * N + n) * H + ih) * W + iw, outPixel);
            }
          }
        }
      }
    }
  }
}

function outputPixels(xShape: Shape4, wShape: Shape4, params: Conv2dParams): number {
  const [Ho, Wo] = conv2dOutputSize(xShape[2], xShape[3], wShape[2], wShape[3], params);
  return xShape[1] * Ho * Wo;
}

/** y[co, n, oh, ow] = Σ_{ci,kh,kw} w[co, ci, kh, kw] · x[ci, n, oh·s − p + kh, ow·s − p + kw]. */
export function conv2dReference(x: ArrayLike<number>, xShape: Shape4, w: ArrayLike<number>, wShape: Shape4, params: Conv2dParams = {}): Float64Array {
  const [Cout, Cin, KH, KW] = wShape;
  const P = outputPixels(xShape, wShape, params);
  const y = new Float64Array(Cout * P);
  forEachTap(xShape, wShape, params, (ci, _n, _oh, _ow, kh, kw, xi, p) => {
    const xv = x[xi];
    for (let co = 0; co < Cout; co++) y[co * P + p] += w[((co * Cin + ci) * KH + kh) * KW + kw] * xv;
  });
  return y;
}

/** dx = ∂(Σ y·dy)/∂x, shape xShape: the transposed convolution of dy with w. */
export function conv2dBackwardInputReference(
  dy: ArrayLike<number>, w: ArrayLike<number>, wShape: Shape4, xShape: Shape4, params: Conv2dParams = {},
): Float64Array {
  const [Cout, Cin, KH, KW] = wShape;
  const P = outputPixels(xShape, wShape, params);
  const dx = new Float64Array(xShape[0] * xShape[1] * xShape[2] * xShape[3]);
  forEachTap(xShape, wShape, params, (ci, _n, _oh, _ow, kh, kw, xi, p) => {
    let s = 0;
    for (let co = 0; co < Cout; co++) s += w[((co * Cin + ci) * KH + kh) * KW + kw] * dy[co * P + p];
    dx[xi] += s;
  });
  return dx;
}

/** dw = ∂(Σ y·dy)/∂w, shape wShape: dw[co, ci, kh, kw] = Σ_{n,oh,ow} dy[co, n, oh, ow] · x[ci, n, ih, iw]. */
export function conv2dBackwardFilterReference(
  x: ArrayLike<number>, xShape: Shape4, dy: ArrayLike<number>, wShape: Shape4, params: Conv2dParams = {},
): Float64Array {
  const [Cout, Cin, KH, KW] = wShape;
  const P = outputPixels(xShape, wShape, params);
  const dw = new Float64Array(Cout * Cin * KH * KW);
  forEachTap(xShape, wShape, params, (ci, _n, _oh, _ow, kh, kw, xi, p) => {
    const xv = x[xi];
    for (let co = 0; co < Cout; co++) dw[((co * Cin + ci) * KH + kh) * KW + kw] += dy[co * P + p] * xv;
  });
  return dw;
}

/** The fused input transform x' = max(x·scale[c] + shift[c], 0) over a channel-major [C, ...] tensor. */
export function affineReluReference(x: ArrayLike<number>, xShape: Shape4, scale: ArrayLike<number>, shift: ArrayLike<number>): Float64Array {
  const plane = xShape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / plane);
    out[i] = Math.max(x[i] * scale[c] + shift[c], 0);
  }
  return out;
}
