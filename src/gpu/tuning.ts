// The tuning table: launch choices (a conv's register tile and split-K, or in the GPU kernel class
// its workgroup tile or the register tile as a rival; average pool's blocks per invocation) by
// kernel and shape (and the GPU class's global-pool lanes per plane, batch-norm split chunk), which the graph ops consult when they declare their launches.
// No entry means the kernel's own default, so an empty table (or none) changes nothing. The table
// is attached to a device (setTuning) by the CLI from the per-adapter cache (tuning_cache.ts).

import type { Gpu } from './device.js';

/** A conv tile as the conv2d kernels take it (ConvTile in kernels/conv2d_tiles.ts, restated here below the kernels). */
export interface TileChoice { rows: number; cols: number; workgroupSize: number; unroll?: number; splits?: number }

/** A workgroup-memory conv tile (WorkgroupTile in kernels/conv2d_workgroup_wgsl.ts, restated here below the kernels). */
export interface WorkgroupTileChoice { m: number; n: number; k: number; rows: number; cols: number }

/**
 * What a table entry sets; absent fields keep the kernel's default. At a GPU-class conv GEMM site
 * (forward, backward-input), `workgroupTile` picks the workgroup variant's tile and `tile` the
 * register variant instead (gemmChoice); elsewhere `tile` is the register tile.
 */
export interface TuningChoice { tile?: TileChoice; workgroupTile?: WorkgroupTileChoice; blocksPerInvocation?: number; lanesPerPlane?: number; splitChunk?: number }

export const TUNED_KERNELS = ['conv2d.forward', 'conv2d.backwardInput', 'conv2d.backwardFilter', 'avgPool2x2.forward', 'avgPool2x2.backward',
  // The GPU class's parallel global pool (lanes per plane) and batch norm's split reduction (values per
  // chunk, one choice for the statistics and the backward of an x shape); asked only there.
  'globalAvgPool.forward', 'batchNorm.split'] as const;
export type TunedKernel = typeof TUNED_KERNELS[number];

/**
 * A place in a graph that asks for a choice, with what is needed to rebuild its launch on its own
 * (the tuner times candidates on standalone buffers of these shapes). Shapes as the kernel takes
 * them: conv x [Cin, N, H, W] (the forward input; backward-input's dx), w [Cout, Cin, KH, KW];
 * average pool x [C, N, H, W] (backward: dx).
 */
export interface TuningSite {
  kernel: TunedKernel;
  key: string;
  x: number[];
  w?: number[];
  stride?: number;
  padding?: number;
  /** The conv applies the fused BN→ReLU while loading x (a different program, maybe a different winner). */
  transform?: boolean;
  /** A GPU-class conv GEMM site (forward, backward-input): the workgroup variant by default (gemmChoice). */
  gpuGemm?: boolean;
}

/**
 * A conv site. `gpuGemm`: a forward or backward-input conv of the GPU kernel class, keyed with a
 * trailing " gpu" so a software-class entry (a register tile for the register default) never
 * applies there, and the entries cached before these sites existed keep their meaning.
 */
export function convSite(
  kernel: TunedKernel, x: readonly number[], w: readonly number[], stride: number, padding: number, transform: boolean, gpuGemm = false,
): TuningSite {
  const key = `x${x.join('x')} w${w.join('x')} s${stride} p${padding}${transform ? ' bnrelu' : ''}${gpuGemm ? ' gpu' : ''}`;
  return { kernel, key, x: [...x], w: [...w], stride, padding, transform, ...(gpuGemm ? { gpuGemm } : {}) };
}

/** The conv GEMM options of a GPU-class site's choice: its workgroup tile, the register variant with its tile, or the workgroup default. */
export function gemmChoice(choice: TuningChoice | undefined):
  { variant: 'workgroup'; workgroupTile?: WorkgroupTileChoice } | { variant: 'register'; tile: TileChoice } {
  if (choice?.workgroupTile) return { variant: 'workgroup', workgroupTile: choice.workgroupTile };
  if (choice?.tile) return { variant: 'register', tile: choice.tile };
  return { variant: 'workgroup' };
}

/** A site keyed by its input's shape alone (pools, batch norm's split reduction). */
export function poolSite(kernel: TunedKernel, x: readonly number[]): TuningSite {
  return { kernel, key: `x${x.join('x')}`, x: [...x] };
}

const entryKey = (kernel: string, key: string) => `${kernel} ${key}`;

export class TuningTable {
  private readonly entries = new Map<string, TuningChoice>();
  /** Every distinct site asked about, first asked first: what the tuner tunes for a graph. */
  readonly sites = new Map<string, TuningSite>();

  constructor(entries: Iterable<[kernel: string, key: string, choice: TuningChoice]> = []) {
    for (const [kernel, key, choice] of entries) this.set(kernel, key, choice);
  }

  set(kernel: string, key: string, choice: TuningChoice): void { this.entries.set(entryKey(kernel, key), choice); }
  get(kernel: string, key: string): TuningChoice | undefined { return this.entries.get(entryKey(kernel, key)); }
  get size(): number { return this.entries.size; }

  /** The choice for a site (recording that it was asked); undefined: the kernel's default. */
  choose(site: TuningSite): TuningChoice | undefined {
    const k = entryKey(site.kernel, site.key);
    if (!this.sites.has(k)) this.sites.set(k, site);
    return this.entries.get(k);
  }
}

const attached = new WeakMap<Gpu, TuningTable>();

/** Attaches the table every graph built later on this device consults (undefined: none, the defaults). */
export function setTuning(gpu: Gpu, table: TuningTable | undefined): void {
  if (table) attached.set(gpu, table); else attached.delete(gpu);
}

export function tuningOf(gpu: Gpu): TuningTable | undefined { return attached.get(gpu); }
