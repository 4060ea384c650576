// What `bench ops` measures: four DenseNet ops at the shapes of a DenseNet-BC (k=12) layer at batch
// 16 on 32×32 images, and the work each pass does (FLOPs for convolutions, nominal bytes moved for
// the memory-bound batch norm and pooling), so that a time becomes GFLOP/s or GB/s.

export type OpName = 'conv3x3' | 'conv1x1' | 'batchnorm' | 'avgpool';
export type PassName = 'forward' | 'backward';
export const OP_NAMES: readonly OpName[] = ['conv3x3', 'conv1x1', 'batchnorm', 'avgpool'];
export const PASS_NAMES: readonly PassName[] = ['forward', 'backward'];

export interface ConvCase { kind: 'conv'; N: number; H: number; W: number; cin: number; cout: number; k: number; pad: number }
export interface BatchNormCase { kind: 'batchnorm'; N: number; H: number; W: number; C: number; eps: number }
export interface PoolCase { kind: 'avgpool'; N: number; H: number; W: number; C: number }
export type OpCase = ConvCase | BatchNormCase | PoolCase;

export type Scale = 'full' | 'tiny';

/**
 * The measured configuration (`full`): the 3×3 conv of a dense layer (4k=48 → k=12), the
 * bottleneck 1×1 conv (120 → 48), BN over 120 channels, a transition's 2×2 average pool over 48.
 * `tiny` has the same structure at sizes small enough for a test on a software adapter.
 */
export function opCases(scale: Scale): Record<OpName, OpCase> {
  if (scale === 'tiny') {
    return {
      conv3x3: { kind: 'conv', N: 2, H: 6, W: 5, cin: 6, cout: 3, k: 3, pad: 1 },
      conv1x1: { kind: 'conv', N: 2, H: 6, W: 5, cin: 10, cout: 4, k: 1, pad: 0 },
      batchnorm: { kind: 'batchnorm', N: 2, H: 6, W: 5, C: 7, eps: 1e-5 },
      avgpool: { kind: 'avgpool', N: 2, H: 6, W: 6, C: 5 },
    };
  }
  return {
    conv3x3: { kind: 'conv', N: 16, H: 32, W: 32, cin: 48, cout: 12, k: 3, pad: 1 },
    conv1x1: { kind: 'conv', N: 16, H: 32, W: 32, cin: 120, cout: 48, k: 1, pad: 0 },
    batchnorm: { kind: 'batchnorm', N: 16, H: 32, W: 32, C: 120, eps: 1e-5 },
    avgpool: { kind: 'avgpool', N: 16, H: 32, W: 32, C: 48 },
  };
}

export function describeCase(c: OpCase): string {
  switch (c.kind) {
    case 'conv': return `N=${c.N}, ${c.H}×${c.W}, ${c.cin}→${c.cout}, ${c.k}×${c.k}, pad ${c.pad}, stride 1`;
    case 'batchnorm': return `N=${c.N}, ${c.H}×${c.W}, C=${c.C}, training mode (batch statistics), eps ${c.eps}`;
    case 'avgpool': return `N=${c.N}, ${c.H}×${c.W}, C=${c.C}, 2×2 stride 2`;
  }
}

export function convOutputSize(c: ConvCase): { Ho: number; Wo: number } {
  return { Ho: c.H + 2 * c.pad - c.k + 1, Wo: c.W + 2 * c.pad - c.k + 1 };
}

/**
 * The work of one pass: `flops` for a convolution (2 per multiply-add; the backward pass is forward
 * + input gradient + filter gradient, 3× the forward), `bytes` for BN and pooling. Bytes count each
 * activation-sized tensor read or written once per kernel of the plain design, 4 bytes an element:
 * BN forward = statistics (read x) + normalize (read x, write y) = 3 tensors; BN backward pass =
 * forward 3 + reductions (read x, dy) 2 + input gradient (read x, dy, write dx) 3 = 8. Pool forward
 * reads x and writes y (¼ of x); the backward pass adds reading dy (¼) and writing dx (1).
 */
export function workOf(c: OpCase, pass: PassName): { flops?: number; bytes?: number } {
  switch (c.kind) {
    case 'conv': {
      const { Ho, Wo } = convOutputSize(c);
      const forward = 2 * c.N * Ho * Wo * c.cout * c.cin * c.k * c.k;
      return { flops: pass === 'forward' ? forward : 3 * forward };
    }
    case 'batchnorm': {
      const elements = c.N * c.H * c.W * c.C;
      return { bytes: 4 * elements * (pass === 'forward' ? 3 : 8) };
    }
    case 'avgpool': {
      const x = c.N * c.H * c.W * c.C;
      const y = c.N * Math.floor(c.H / 2) * Math.floor(c.W / 2) * c.C;
      return { bytes: 4 * (pass === 'forward' ? x + y : 2 * (x + y)) };
    }
  }
}

/** Mulberry32: seeded, reproducible inputs, identical for both implementations. */
export function seededUniform(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** [C, N, H, W] (ours) → [N, H, W, C] (tfjs). */
export function cnhwToNhwc(x: ArrayLike<number>, C: number, N: number, H: number, W: number): Float32Array {
  const out = new Float32Array(C * N * H * W);
  const plane = N * H * W;
  for (let c = 0; c < C; c++) for (let p = 0; p < plane; p++) out[p * C + c] = x[c * plane + p];
  return out;
}

/** [N, H, W, C] (tfjs) → [C, N, H, W] (ours). */
export function nhwcToCnhw(x: ArrayLike<number>, C: number, N: number, H: number, W: number): Float32Array {
  const out = new Float32Array(C * N * H * W);
  const plane = N * H * W;
  for (let c = 0; c < C; c++) for (let p = 0; p < plane; p++) out[c * plane + p] = x[p * C + c];
  return out;
}

/** [Cout, Cin, KH, KW] (ours) ↔ [KH, KW, Cin, Cout] (tfjs HWIO). */
export function oihwToHwio(w: ArrayLike<number>, cout: number, cin: number, k: number): Float32Array {
  const out = new Float32Array(cout * cin * k * k);
  for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) for (let s = 0; s < k * k; s++) {
    out[(s * cin + i) * cout + o] = w[(o * cin + i) * k * k + s];
  }
  return out;
}

export function hwioToOihw(w: ArrayLike<number>, cout: number, cin: number, k: number): Float32Array {
  const out = new Float32Array(cout * cin * k * k);
  for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) for (let s = 0; s < k * k; s++) {
    out[(o * cin + i) * k * k + s] = w[(s * cin + i) * cout + o];
  }
  return out;
}
