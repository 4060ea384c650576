// The DenseNet / DenseNet-BC hyper-parameters, how to derive them from a paper-style depth, and
// the checks that refuse a configuration before anything is built (each error says what to change).

export type StemKind = 'cifar' | 'strided' | 'imagenet';

/**
 * What a DenseNet is. `describeDenseNet` (architecture.ts) turns it into the exact layer list.
 *
 * stem 'cifar': conv0 3×3 stride 1 pad 1 → initialFeatures, with NO BN-ReLU after it (the paper's
 *   CIFAR code; the first dense layer's norm1 follows directly).
 * stem 'strided': conv0 3×3 stride 2 pad 1, no BN-ReLU after it; H, W ÷ 2. For small grayscale
 *   images (28×28 digits): the first dense block runs at 14×14, a quarter of the work of 'cifar'.
 * stem 'imagenet': conv0 7×7/2 pad 3 → norm0 → relu0 → pool0 (3×3/2 pad 1 max pool); H, W ÷ 4.
 */
export interface DenseNetConfig {
  /** Preset or generated name, e.g. "densenet-bc-100-12", "densenet121". */
  name: string;
  /** Dense layers per dense block, e.g. [16, 16, 16] or [6, 12, 24, 16]. */
  blocks: number[];
  /** k: channels each dense layer adds. */
  growthRate: number;
  /** Channels out of the stem conv (paper: 16 for DenseNet, 2k for BC; torchvision 64, 96 for 161). */
  initialFeatures: number;
  /** BC: BN-ReLU-Conv1×1(bottleneckWidth·k) before BN-ReLU-Conv3×3(k). */
  bottleneck: boolean;
  /** Bottleneck width in units of k (torchvision bn_size = 4). Ignored without bottleneck. */
  bottleneckWidth: number;
  /** θ in (0, 1]: a transition maps C channels to floor(θ·C) (floating-point product, as the paper's code). */
  compression: number;
  /** Dropout rate in [0, 1), 0 = none. Placement follows the paper: after every conv except conv0
   * (each dense-layer conv and each transition conv). The paper uses 0.2 without data augmentation. */
  dropRate: number;
  /** L2 weight decay for the optimizer (paper and torchvision: 1e-4). Not used by the architecture. */
  weightDecay: number;
  stem: StemKind;
  /** [C, H, W] of one input image, e.g. [3, 32, 32], [1, 28, 28], [3, 224, 224]. */
  inputShape: [number, number, number];
  /** Number of classes; null = feature extractor ending in norm5-ReLU-global average pool. */
  classes: number | null;
  /** BatchNorm ε (PyTorch default 1e-5). */
  bnEps: number;
  /** BatchNorm momentum, PyTorch convention: running = (1 − m)·running + m·batch (0.1). */
  bnMomentum: number;
}

export class DenseNetConfigError extends Error {
  override name = 'DenseNetConfigError';
}

export const STEM_KINDS: readonly StemKind[] = ['cifar', 'strided', 'imagenet'];

/** Spatial size after the stem: cifar keeps it; strided's conv 3×3/2 p1, and each of imagenet's conv 7×7/2 p3 and max pool 3×3/2 p1, map H → ⌊(H − 1)/2⌋ + 1. */
export function stemOutputHW(stem: StemKind, h: number, w: number): [number, number] {
  if (stem === 'cifar') return [h, w];
  const half = (x: number) => Math.floor((x - 1) / 2) + 1;
  if (stem === 'strided') return [half(h), half(w)];
  return [half(half(h)), half(half(w))];
}

/** The 2×2 stride-2 average pool of a transition (floor, as PyTorch's default ceil_mode=false). */
export function transitionOutputHW(h: number, w: number): [number, number] {
  return [Math.floor(h / 2), Math.floor(w / 2)];
}

/** Channels out of a transition that receives `channels`: floor(θ·C). */
export function compressedChannels(channels: number, compression: number): number {
  return Math.floor(channels * compression);
}

const DEFAULTS = {
  growthRate: 12,
  bottleneckWidth: 4,
  dropRate: 0,
  weightDecay: 1e-4,
  stem: 'cifar' as StemKind,
  inputShape: [3, 32, 32] as [number, number, number],
  classes: 10,
  bnEps: 1e-5,
  bnMomentum: 0.1,
};

const CONFIG_KEYS: readonly (keyof DenseNetConfig)[] = [
  'name', 'blocks', 'growthRate', 'initialFeatures', 'bottleneck', 'bottleneckWidth', 'compression',
  'dropRate', 'weightDecay', 'stem', 'inputShape', 'classes', 'bnEps', 'bnMomentum',
];
const OPTION_KEYS: readonly string[] = [...CONFIG_KEYS, 'depth', 'blocksCount'];

/**
 * Layers per block from a paper-style depth: depth counts the conv and linear layers, i.e.
 * conv0 + one conv per transition + the classifier (= blocksCount + 1) plus one conv per non-BC
 * dense layer or two per BC layer. With 3 blocks: DenseNet (depth − 4)/3, BC (depth − 4)/6.
 */
export function blocksFromDepth(depth: number, bottleneck: boolean, blocksCount = 3): number[] {
  const convsPerLayer = bottleneck ? 2 : 1;
  const step = blocksCount * convsPerLayer;
  const fixed = blocksCount + 1;
  const kind = bottleneck ? 'BC layers' : 'DenseNet layers (no bottleneck)';
  if (!Number.isInteger(blocksCount) || blocksCount < 1) {
    throw new DenseNetConfigError(`blocksCount must be a positive integer, got ${blocksCount}`);
  }
  const n = (depth - fixed) / step;
  if (!Number.isInteger(depth) || !Number.isInteger(n) || n < 1) {
    const below = Math.floor((depth - fixed) / step);
    const lower = below >= 1 && Number.isFinite(below) ? below * step + fixed : null;
    const upper = (lower === null ? 1 : below + 1) * step + fixed;
    const examples = lower === null ? `${upper} or ${upper + step}` : `${lower} or ${upper}`;
    throw new DenseNetConfigError(
      `depth ${depth} does not fit ${blocksCount} blocks of ${kind}: use depth = ${step}n + ${fixed}, e.g. ${examples}`);
  }
  return new Array<number>(blocksCount).fill(n);
}

/**
 * A complete, validated config from partial options. Give `blocks`, or `depth` (with optional
 * `blocksCount`, default 3) to get equal blocks the paper's way. Defaults follow the paper's CIFAR
 * setup: k = 12, cifar stem, [3, 32, 32], 10 classes; initialFeatures 2k with bottleneck else 16;
 * compression 0.5 with bottleneck else 1; bottleneckWidth 4; no dropout; weight decay 1e-4.
 */
export function denseNetConfig(options: Partial<DenseNetConfig> & { depth?: number; blocksCount?: number }): DenseNetConfig {
  const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.includes(key));
  if (unknown.length > 0) {
    throw new DenseNetConfigError(`unknown DenseNet option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}: ` +
      `known options are ${OPTION_KEYS.join(', ')}`);
  }
  checkOptionTypes(options as Record<string, unknown>);
  const bottleneck = options.bottleneck ?? false;
  let blocks = options.blocks;
  if (options.depth !== undefined) {
    const fromDepth = blocksFromDepth(options.depth, bottleneck, options.blocksCount ?? options.blocks?.length ?? 3);
    if (blocks !== undefined && blocks.join() !== fromDepth.join()) {
      throw new DenseNetConfigError(`depth ${options.depth} means blocks [${fromDepth.join(', ')}] but blocks [${blocks.join(', ')}] ` +
        'were also given: give one of depth or blocks');
    }
    blocks = fromDepth;
  } else if (options.blocksCount !== undefined && blocks === undefined) {
    throw new DenseNetConfigError(`blocksCount ${options.blocksCount} needs a depth: give depth (e.g. 100) or blocks (e.g. [16, 16, 16])`);
  }
  if (blocks === undefined) {
    throw new DenseNetConfigError('a DenseNet needs its size: give depth (e.g. 40, or 100 with bottleneck) or blocks (e.g. [12, 12, 12])');
  }
  const growthRate = options.growthRate ?? DEFAULTS.growthRate;
  const config: DenseNetConfig = {
    name: options.name ?? generatedName(bottleneck, blocks, growthRate),
    blocks: [...blocks],
    growthRate,
    initialFeatures: options.initialFeatures ?? (bottleneck ? 2 * growthRate : 16),
    bottleneck,
    bottleneckWidth: options.bottleneckWidth ?? DEFAULTS.bottleneckWidth,
    compression: options.compression ?? (bottleneck ? 0.5 : 1),
    dropRate: options.dropRate ?? DEFAULTS.dropRate,
    weightDecay: options.weightDecay ?? DEFAULTS.weightDecay,
    stem: options.stem ?? DEFAULTS.stem,
    inputShape: options.inputShape ? [...options.inputShape] : [...DEFAULTS.inputShape],
    classes: options.classes === undefined ? DEFAULTS.classes : options.classes,
    bnEps: options.bnEps ?? DEFAULTS.bnEps,
    bnMomentum: options.bnMomentum ?? DEFAULTS.bnMomentum,
  };
  validateConfig(config);
  return config;
}

/** The JSON type each option takes; a config file with "depth": "40" is refused by name, not coerced. */
const OPTION_TYPES: Record<string, 'number' | 'boolean' | 'string' | 'number[]' | 'number or null'> = {
  name: 'string', stem: 'string', bottleneck: 'boolean', blocks: 'number[]', inputShape: 'number[]', classes: 'number or null',
  depth: 'number', blocksCount: 'number', growthRate: 'number', initialFeatures: 'number', bottleneckWidth: 'number',
  compression: 'number', dropRate: 'number', weightDecay: 'number', bnEps: 'number', bnMomentum: 'number',
};

function checkOptionTypes(options: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(options)) {
    const want = OPTION_TYPES[key];
    if (want === undefined || value === undefined) continue;
    const ok = want === 'number[]' ? Array.isArray(value) && value.every((v) => typeof v === 'number')
      : want === 'number or null' ? value === null || typeof value === 'number'
        : typeof value === want;
    if (!ok) {
      const got = Array.isArray(value) ? `an array ${JSON.stringify(value)}` : value === null ? 'null' : `${typeof value} ${JSON.stringify(value)}`;
      const hint = typeof value === 'string' && want === 'number' && value.trim() !== '' && Number.isFinite(Number(value)) ? ` (write ${value} without quotes)` : '';
      throw new DenseNetConfigError(`"${key}" must be a ${want === 'number[]' ? 'list of numbers' : want}, got ${got}${hint}`);
    }
  }
}

/** "densenet-bc-100-12" for equal blocks (paper depth), else "densenet-bc-6x12x24x16-32". */
function generatedName(bottleneck: boolean, blocks: number[], growthRate: number): string {
  const prefix = bottleneck ? 'densenet-bc' : 'densenet';
  const equal = blocks.length > 0 && blocks.every((b) => b === blocks[0]);
  const size = equal ? String(blocks.length + 1 + blocks[0] * blocks.length * (bottleneck ? 2 : 1)) : blocks.join('x');
  return `${prefix}-${size}-${growthRate}`;
}

function isPositiveInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

/** Smallest input side that leaves ≥ 1 pixel after the stem and every transition. */
export function minimumInputSide(stem: StemKind, transitions: number): number {
  for (let side = 1; ; side++) {
    let [h] = stemOutputHW(stem, side, side);
    let ok = h >= 1;
    for (let t = 0; t < transitions && ok; t++) {
      h = transitionOutputHW(h, h)[0];
      ok = h >= 1;
    }
    if (ok) return side;
  }
}

/** Throws a DenseNetConfigError saying what to change; returns nothing when the config can be built. */
export function validateConfig(c: DenseNetConfig): void {
  const fail = (message: string): never => {
    throw new DenseNetConfigError(`DenseNet config "${c.name}": ${message}`);
  };
  if (typeof c.name !== 'string' || c.name.length === 0) fail('name must be a non-empty string');
  const unknown = Object.keys(c).filter((key) => !(CONFIG_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) fail(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}: known fields are ${CONFIG_KEYS.join(', ')}`);
  if (!Array.isArray(c.blocks) || c.blocks.length === 0) fail('blocks is empty: give the number of layers per dense block, e.g. [16, 16, 16]');
  c.blocks.forEach((b, i) => {
    if (!isPositiveInteger(b)) fail(`blocks[${i}] is ${b}: every block needs a positive integer number of layers`);
  });
  if (!isPositiveInteger(c.growthRate)) fail(`growthRate must be a positive integer, got ${c.growthRate} (paper: 12, 24 or 40)`);
  if (!isPositiveInteger(c.initialFeatures)) fail(`initialFeatures must be a positive integer, got ${c.initialFeatures} (paper: 16, or 2·growthRate for BC)`);
  if (typeof c.bottleneck !== 'boolean') fail(`bottleneck must be true or false, got ${String(c.bottleneck)}`);
  if (!isPositiveInteger(c.bottleneckWidth)) fail(`bottleneckWidth must be a positive integer, got ${c.bottleneckWidth} (torchvision bn_size: 4)`);
  if (!(typeof c.compression === 'number' && c.compression > 0 && c.compression <= 1)) {
    fail(`compression must be in (0, 1], got ${c.compression} (1 = no compression, 0.5 for DenseNet-BC)`);
  }
  if (!(typeof c.dropRate === 'number' && c.dropRate >= 0 && c.dropRate < 1)) fail(`dropRate must be in [0, 1), got ${c.dropRate} (0 = no dropout; paper: 0.2 without augmentation)`);
  if (!(typeof c.weightDecay === 'number' && Number.isFinite(c.weightDecay) && c.weightDecay >= 0)) fail(`weightDecay must be a finite number ≥ 0, got ${c.weightDecay} (paper: 1e-4)`);
  if (!STEM_KINDS.includes(c.stem)) fail(`stem must be ${STEM_KINDS.map((s) => `'${s}'`).join(' or ')}, got ${JSON.stringify(c.stem)}`);
  if (!Array.isArray(c.inputShape) || c.inputShape.length !== 3 || !c.inputShape.every(isPositiveInteger)) {
    fail(`inputShape must be [C, H, W] of positive integers, got ${JSON.stringify(c.inputShape)}`);
  }
  if (c.classes !== null && !(isPositiveInteger(c.classes) && c.classes >= 2)) {
    fail(`classes must be an integer ≥ 2, or null for a feature extractor, got ${c.classes}`);
  }
  if (!(typeof c.bnEps === 'number' && Number.isFinite(c.bnEps) && c.bnEps > 0)) fail(`bnEps must be a finite number > 0, got ${c.bnEps} (PyTorch: 1e-5)`);
  if (!(typeof c.bnMomentum === 'number' && c.bnMomentum > 0 && c.bnMomentum <= 1)) fail(`bnMomentum must be in (0, 1], got ${c.bnMomentum} (PyTorch convention: 0.1)`);

  const transitions = c.blocks.length - 1;
  const [, h, w] = c.inputShape;
  const need = minimumInputSide(c.stem, transitions);
  if (h < need || w < need) {
    const stemNote = c.stem === 'imagenet' ? 'the imagenet stem divides H and W by 4 and ' : c.stem === 'strided' ? 'the strided stem halves H and W and ' : '';
    fail(`input ${h}×${w} is too small for ${c.blocks.length} blocks: ${stemNote}each of the ${transitions} transitions halves H and W; ` +
      `use H and W ≥ ${need}, or fewer blocks`);
  }
  let channels = c.initialFeatures;
  for (let b = 0; b < c.blocks.length; b++) {
    channels += c.blocks[b] * c.growthRate;
    if (b < transitions) {
      const out = compressedChannels(channels, c.compression);
      if (out < 1) fail(`transition ${b + 1} compresses ${channels} channels to ${out}: raise compression to ≥ ${1 / channels}`);
      channels = out;
    }
  }
}
