// GPU buffer allocation with exact byte accounting, overall and per category and label.
// The memory research (strategy against strategy, to the byte) reads these numbers, so every
// GPU buffer the engine creates goes through here, and freeing is explicit (never the GC).

export const MEMORY_CATEGORIES = [
  'parameters', 'gradients', 'optimizer', 'activations', 'workspace', 'io', 'uniforms',
] as const;
export type MemoryCategory = typeof MEMORY_CATEGORIES[number];

export interface ArenaBuffer {
  readonly buffer: GPUBuffer;
  /** Size in bytes as requested (the GPU buffer is rounded up to 4 bytes; accounting uses that size). */
  readonly bytes: number;
  readonly label: string;
  readonly category: MemoryCategory;
}

export interface MemoryReport {
  liveBytes: number;
  peakBytes: number;
  byCategory: Record<MemoryCategory, { liveBytes: number; peakBytes: number }>;
  byLabel: Map<string, number>;
}

/** Anything that can create a buffer: a GPUDevice in real use, a counting fake in unit tests. */
export interface BufferFactory {
  createBuffer(descriptor: GPUBufferDescriptor): GPUBuffer;
}

const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST, spelled out so this file runs without WebGPU globals

export class BufferArena {
  private readonly live = new Set<ArenaBuffer>();
  private liveTotal = 0;
  private peakTotal = 0;
  private readonly liveByCategory = new Map<MemoryCategory, number>();
  private readonly peakByCategory = new Map<MemoryCategory, number>();
  private readonly liveByLabel = new Map<string, number>();

  constructor(private readonly factory: BufferFactory, private readonly maxBufferSize = Number.MAX_SAFE_INTEGER) {}

  allocate(label: string, category: MemoryCategory, bytes: number, usage: number = STORAGE_USAGE): ArenaBuffer {
    if (!Number.isInteger(bytes) || bytes <= 0) {
      throw new RangeError(`arena: buffer "${label}" needs a positive whole number of bytes, got ${bytes}`);
    }
    const padded = Math.ceil(bytes / 4) * 4;
    if (padded > this.maxBufferSize) {
      throw new RangeError(`arena: buffer "${label}" needs ${bytes} bytes but the adapter allows at most ` +
        `${this.maxBufferSize} per buffer (maxBufferSize); use a smaller batch or model`);
    }
    const buffer = this.factory.createBuffer({ label, size: padded, usage });
    const entry: ArenaBuffer = { buffer, bytes: padded, label, category };
    this.live.add(entry);
    this.liveTotal += padded;
    this.peakTotal = Math.max(this.peakTotal, this.liveTotal);
    const cat = (this.liveByCategory.get(category) ?? 0) + padded;
    this.liveByCategory.set(category, cat);
    this.peakByCategory.set(category, Math.max(this.peakByCategory.get(category) ?? 0, cat));
    this.liveByLabel.set(label, (this.liveByLabel.get(label) ?? 0) + padded);
    return entry;
  }

  free(entry: ArenaBuffer): void {
    if (!this.live.delete(entry)) {
      throw new Error(`arena: buffer "${entry.label}" was freed twice or does not belong to this arena`);
    }
    entry.buffer.destroy();
    this.liveTotal -= entry.bytes;
    this.liveByCategory.set(entry.category, (this.liveByCategory.get(entry.category) ?? 0) - entry.bytes);
    const byLabel = (this.liveByLabel.get(entry.label) ?? 0) - entry.bytes;
    if (byLabel === 0) this.liveByLabel.delete(entry.label); else this.liveByLabel.set(entry.label, byLabel);
  }

  /** Frees every live buffer (closing a device). */
  freeAll(): void {
    for (const entry of [...this.live]) this.free(entry);
  }

  get liveBytes(): number { return this.liveTotal; }
  get peakBytes(): number { return this.peakTotal; }
  get liveBuffers(): number { return this.live.size; }

  /** Starts a new peak measurement from the current live bytes (e.g. after parameters are loaded). */
  resetPeak(): void {
    this.peakTotal = this.liveTotal;
    for (const [c, v] of this.liveByCategory) this.peakByCategory.set(c, v);
  }

  report(): MemoryReport {
    const byCategory = {} as MemoryReport['byCategory'];
    for (const c of MEMORY_CATEGORIES) {
      byCategory[c] = { liveBytes: this.liveByCategory.get(c) ?? 0, peakBytes: this.peakByCategory.get(c) ?? 0 };
    }
    return { liveBytes: this.liveTotal, peakBytes: this.peakTotal, byCategory, byLabel: new Map(this.liveByLabel) };
  }
}
