// A printable summary of a DenseNet: each layer's output shape [N, C, H, W], its trainable
// parameters and multiply-adds, and a totals line. Used by the CLI and in reports.

import { describeDenseNet, layerKind, layerMultiplyAdds, parametersOf, size, type DenseLayerSpec, type LayerSpec } from './architecture.js';
import type { DenseNetConfig } from './densenet_config.js';

interface Row { layer: string; shape: string; parameters: number; multiplyAdds: number }

export interface LayerTableOptions {
  /** 'layers' (default): one row per stem op, dense layer, transition and head op.
   * 'ops': one row per conv / BN-ReLU / pool / dropout / linear. */
  detail?: 'layers' | 'ops';
}

/**
 * The table for a batch of `batch` images. Dense-layer rows show the block's features after the
 * layer (the concatenation [N, c_l + k, H, W]); multiply-adds are per image, the totals line gives
 * both per image and per batch.
 */
export function formatLayerTable(c: DenseNetConfig, batch: number, options: LayerTableOptions = {}): string {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`formatLayerTable: batch must be a positive integer, got ${batch}`);
  const detail = options.detail ?? 'layers';
  const spec = describeDenseNet(c);
  const rows: Row[] = [];
  const opRow = (op: LayerSpec): Row => ({ layer: layerKind(op).label(op), shape: shapeText(batch, layerKind(op).outputShape(op)), parameters: trainableOf(op), multiplyAdds: layerMultiplyAdds(op) });
  const groupRow = (label: string, ops: LayerSpec[], shape: number[]): Row => ({
    layer: label, shape: shapeText(batch, shape),
    parameters: ops.reduce((s, op) => s + trainableOf(op), 0), multiplyAdds: ops.reduce((s, op) => s + layerMultiplyAdds(op), 0),
  });

  rows.push(...spec.stem.map(opRow));
  for (const block of spec.blocks) {
    for (const layer of block.layers) {
      if (detail === 'ops') rows.push(...layer.ops.map(opRow));
      else rows.push(groupRow(`${layer.name} (${denseLayerKind(layer)})`, layer.ops, [layer.inChannels + layer.outChannels, ...layer.hw]));
    }
    const t = block.transition;
    if (t) {
      if (detail === 'ops') rows.push(...t.ops.map(opRow));
      else rows.push(groupRow(`${t.name} (BN-ReLU-1×1-${t.dropout ? 'dropout-' : ''}avgpool)`, t.ops, [t.outChannels, ...t.outputHW]));
    }
  }
  rows.push(...spec.head.map(opRow));

  const totalParameters = rows.reduce((s, r) => s + r.parameters, 0);
  const totalMultiplyAdds = rows.reduce((s, r) => s + r.multiplyAdds, 0);
  const buffers = spec.parameters.filter((p) => !p.trainable).reduce((s, p) => s + size(p.shape), 0);
  const header: Row = { layer: 'layer', shape: 'output shape', parameters: NaN, multiplyAdds: NaN };
  const cells = [header, ...rows].map((r) => [r.layer, r.shape, Number.isNaN(r.parameters) ? 'parameters' : group(r.parameters),
    Number.isNaN(r.multiplyAdds) ? 'mult-adds/image' : group(r.multiplyAdds)]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row: string[]) => `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2].padStart(widths[2])}  ${row[3].padStart(widths[3])}`;
  const rule = '-'.repeat(line(cells[0]).length);
  return [
    `${c.name}: input [${batch}, ${c.inputShape.join(', ')}]`,
    line(cells[0]), rule, ...cells.slice(1).map(line), rule,
    `total: ${group(totalParameters)} trainable parameters (+ ${group(buffers)} BN running statistics); ` +
      `${giga(totalMultiplyAdds)} multiply-adds per image, ${giga(totalMultiplyAdds * batch)} per batch of ${batch}`,
  ].join('\n');
}

function denseLayerKind(layer: DenseLayerSpec): string {
  const drop = (present: unknown) => (present ? '-dropout' : '');
  return layer.conv2 ? `BN-ReLU-1×1${drop(layer.dropout1)}-BN-ReLU-3×3${drop(layer.dropout2)}` : `BN-ReLU-3×3${drop(layer.dropout1)}`;
}

function trainableOf(op: LayerSpec): number {
  return parametersOf(op).reduce((s, p) => s + (p.trainable ? size(p.shape) : 0), 0);
}

function shapeText(batch: number, shape: number[]): string {
  return `[${[batch, ...shape].join(', ')}]`;
}

function group(n: number): string {
  return n.toLocaleString('en-US');
}

function giga(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : group(n);
}
