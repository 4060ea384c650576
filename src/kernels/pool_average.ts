// Average pooling 2×2, stride 2, no padding (DenseNet transition layers), channel-major
// [C, N, H, W] → [C, N, ⌊H/2⌋, ⌊W/2⌋]. An odd last row/column is dropped, as tf.avgPool 'valid'
// and torch.nn.AvgPool2d(2) do; its gradient is 0 (or left untouched when accumulating).

import type { Gpu } from '../gpu/device.js';
import type { Launch } from '../gpu/program.js';
import { activationDims, bindOperands, ELEMENTWISE_WORKGROUP as WG, offsetUniforms, uniformsU32, type Shape4 } from './pool_common.js';
import { expectShape, fmt, ShapeError, type TensorRef } from './tensor.js';

/** Output shape of avgPool2x2 for an input [C, N, H, W]. */
export function avgPool2x2OutputShape(shape: Shape4): Shape4 {
  const [C, N, H, W] = shape;
  return [C, N, Math.floor(H / 2), Math.floor(W / 2)];
}

export function avgPool2x2Reference(x: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = avgPool2x2OutputShape(shape);
  const y = new Float64Array(C * N * Ho * Wo);
  for (let p = 0; p < C * N; p++) {
    for (let ho = 0; ho < Ho; ho++) {
      for (let wo = 0; wo < Wo; wo++) {
        const b = (p * H + 2 * ho) * W + 2 * wo;
        y[(p * Ho + ho) * Wo + wo] = 0.25 * (x[b] + x[b + 1] + x[b + W] + x[b + W + 1]);
      }
    }
  }
  return y;
}

/** dx for an input of `shape` (the dropped odd row/column gets 0). */
export function avgPool2x2BackwardReference(dy: ArrayLike<number>, shape: Shape4): Float64Array {
  const [C, N, H, W] = shape;
  const [, , Ho, Wo] = avgPool2x2OutputShape(shape);
  const dx = new Float64Array(C * N * H * W);
  for (let p = 0; p < C * N; p++) {
    for (let h = 0; h < 2 * Ho; h++) {
      for (let w = 0; w < 2 * Wo; w++) dx[(p * H + h) * W + w] = 0.25 * dy[(p * Ho + (h >> 1)) * Wo + (w >> 1)];
    }
  }
  return dx;
}

const MAIN = '@compute @workgroup_size(WG_X)\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32)';

// One invocation per output element; x is [planes, H, W], y [planes, Ho, Wo].
const forwardBody = /* wgsl */ `
${MAIN} {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i >= u.count) { return; }
  let wo = i % u.wo;
  let t = i / u.wo;
  let ho = t % u.ho;
  let plane = t / u.ho;
  let b = u.xOffset + (plane * u.h + 2u * ho) * u.w + 2u * wo;
  y[u.yOffset + i] = 0.25 * (x[b] + x[b + 1u] + x[b + u.w] + x[b + u.w + 1u]);
}`;

// One invocation per input element, so every dx element is written exactly once (no races).
const backwardBody = /* wgsl */ `
${MAIN} {
  let i = workgroupIndex(wid, nwg) * WG_X + lid;
  if (i >= u.count) { return; }
  let w = i % u.w;
  let t = i / u.w;
  let h = t % u.h;
  let plane = t / u.h;
  let inside = h < 2u * u.ho && w < 2u * u.wo;
  var g = 0.0;
  if (inside) { g = 0.25 * dy[u.dyOffset + (plane * u.ho + h / 2u) * u.wo + w / 2u]; }
  if (ACCUMULATE) {
    if (!inside) { return; }
    g += dx[u.dxOffset + i];
  }
  dx[u.dxOffset + i] = g;
}`;

function inputDims(op: string, name: string, ref: TensorRef): Shape4 {
  const dims = activationDims(op, name, ref);
  if (dims[2] < 2 || dims[3] < 2) throw new ShapeError(`${op}: "${name}" ${fmt(dims)} is smaller than the 2×2 window`);
  return dims;
}

export async function avgPool2x2Forward(gpu: Gpu, t: { x: TensorRef; y: TensorRef }): Promise<Launch[]> {
  const op = 'avgPool2x2';
  const [C, N, H, W] = inputDims(op, 'x', t.x);
  const [, , Ho, Wo] = avgPool2x2OutputShape([C, N, H, W]);
  expectShape(op, 'y', t.y, [C, N, Ho, Wo]);
  const b = bindOperands(gpu.limits, op, { x: { ref: t.x }, y: { ref: t.y, written: true } });
  const program = await gpu.compile({
    name: 'avgPool2x2.forward', key: b.key, workgroupSize: [WG], body: b.wgsl(forwardBody), bindings: b.bindings,
    uniforms: [...uniformsU32('count', 'h', 'w', 'ho', 'wo'), ...offsetUniforms(['x', 'y'])],
  });
  const count = C * N * Ho * Wo;
  return [gpu.launch(program, b.buffers, { count, h: H, w: W, ho: Ho, wo: Wo, ...b.offsets }, Math.ceil(count / WG))];
}

export async function avgPool2x2Backward(gpu: Gpu, t: { dy: TensorRef; dx: TensorRef; accumulate?: boolean }): Promise<Launch[]> {
  const op = 'avgPool2x2.backward';
  const [C, N, H, W] = inputDims(op, 'dx', t.dx);
  const [, , Ho, Wo] = avgPool2x2OutputShape([C, N, H, W]);
  expectShape(op, 'dy', t.dy, [C, N, Ho, Wo]);
  const b = bindOperands(gpu.limits, op, { dy: { ref: t.dy }, dx: { ref: t.dx, written: true } });
  const accumulate = t.accumulate ?? false;
  const program = await gpu.compile({
    name: 'avgPool2x2.backward', key: `acc=${accumulate};${b.key}`, workgroupSize: [WG],
    body: `const ACCUMULATE = ${accumulate};\n${b.wgsl(backwardBody)}`, bindings: b.bindings,
    uniforms: [...uniformsU32('count', 'h', 'w', 'ho', 'wo'), ...offsetUniforms(['dy', 'dx'])],
  });
  const count = C * N * H * W;
  return [gpu.launch(program, b.buffers, { count, h: H, w: W, ho: Ho, wo: Wo, ...b.offsets }, Math.ceil(count / WG))];
}
