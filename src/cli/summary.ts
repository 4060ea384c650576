// `densenet-wgsl summary`: the layer table of a preset, its parameters and multiply-adds, and the
// planned peak GPU memory of a training step under each memory strategy (planned on the CPU,
// exactly as the executor would allocate it; no GPU needed).

import { MEMORY_CATEGORIES } from '../gpu/arena.js';
import { countParameters, formatLayerTable, multiplyAdds, preset } from '../models/index.js';
import { checkFreeze, checkStrategy, MEMORY_STRATEGIES, type FreezePart, type MemoryStrategy } from '../models/densenet_graph.js';
import { planDenseNetMemory } from '../models/memory_plan.js';
import { UsageError } from './args.js';

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function memoryTable(name: string, batch: number, strategies: readonly MemoryStrategy[], freeze: FreezePart = 'none'): string {
  const config = preset(name);
  const categories = MEMORY_CATEGORIES.filter((c) => c !== 'uniforms');
  const rows = strategies.map((strategy) => ({ strategy, ...planDenseNetMemory(config, { batch, strategy, training: true, freeze }) }));
  const head = ['strategy', ...categories, 'total'];
  const body = rows.map((r) => [r.strategy, ...categories.map((c) => formatBytes(r.byCategory[c])), formatBytes(r.totalBytes)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const what = freeze === 'features' ? ' with frozen features (only the classifier trains)' : '';
  return [`planned peak GPU memory of one training step${what}, batch ${batch} (SGD with momentum):`, line(head), ...body.map(line)].join('\n');
}

export function runSummary(flags: Record<string, unknown>): void {
  const name = flags.model as string | undefined;
  if (!name) throw new UsageError('summary: --model NAME is required (e.g. densenet-bc-100-12; an unknown name lists the presets)');
  const batch = flags.batch as number;
  if (!Number.isInteger(batch) || batch < 2) throw new UsageError(`summary: --batch must be a whole number >= 2, got ${batch}`);
  const strategies = flags.memory ? [checkStrategy(flags.memory as string)] : MEMORY_STRATEGIES;
  let freeze: FreezePart;
  try {
    freeze = checkFreeze((flags.freeze as string | undefined) ?? 'none');
  } catch (e) {
    throw new UsageError(`summary: ${(e as Error).message}`);
  }
  const config = preset(name);
  console.log(formatLayerTable(config, batch));
  console.log(`\nparameters: ${countParameters(config).toLocaleString('en-US')}; multiply-adds per image: ${(multiplyAdds(config) / 1e6).toFixed(1)} M`);
  console.log(memoryTable(name, batch, strategies, freeze));
}
