// The adapter profile: what kind of adapter the engine runs on (software / integrated / discrete),
// its vendor, subgroup sizes, features and the limits the engine uses (the binding size capped by
// --max-binding), computed once when the device opens. Kernel variant choices read it through kernelClass().

import { hostEnvironment } from '../base/host.js';
import { UsageError } from '../base/usage_error.js';

export type AdapterClass = 'software' | 'integrated' | 'discrete' | 'unknown';
/** What a kernel's variant choice needs to know: a CPU emulating a GPU, or a GPU. */
export type KernelClass = 'software' | 'gpu';

/** The limits the engine reads. maxStorageBufferBindingSize is the effective one (after any cap). */
export interface EngineLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
  /** The device's own maxStorageBufferBindingSize, before the cap. */
  deviceMaxStorageBufferBindingSize: number;
  /** The cap in bytes (--max-binding / DENSENET_WGSL_MAX_BINDING_MIB), or null when none was given. */
  bindingCapBytes: number | null;
}

export interface AdapterProfile {
  name: string;
  vendor: string;
  architecture: string;
  backend: string;
  driver: string;
  class: AdapterClass;
  /** Why the class was chosen (which field or name said so). */
  classReason: string;
  /** Same as class === 'software' (kept for the callers that read it before the profile existed). */
  isSoftware: boolean;
  /** From the adapter info where it gives them (Dawn does where the adapter has subgroups); else null. */
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  /** Features the device really has (checked after requestDevice), sorted. */
  features: string[];
  hasSubgroups: boolean;
  hasShaderF16: boolean;
  /** False where DENSENET_WGSL_DISABLE_ROBUSTNESS=1 turned off Dawn's bounds clamp on every buffer access. */
  boundsChecks: boolean;
  limits: EngineLimits;
}

/**
 * `1`: open the device with Dawn's disable_robustness toggle, which drops the bounds clamp WebGPU puts
 * on every buffer access (faster where the clamps cost; the engine's kernels check their own bounds,
 * and an access they got wrong would then go unclamped). Experimental: measured by the GPU harness.
 */
export const DISABLE_ROBUSTNESS_ENV = 'DENSENET_WGSL_DISABLE_ROBUSTNESS';

/** Whether buffer accesses keep WebGPU's bounds clamps (DISABLE_ROBUSTNESS_ENV unset, empty or 0). */
export function boundsChecksFromEnv(env: Record<string, string | undefined>): boolean {
  const value = env[DISABLE_ROBUSTNESS_ENV];
  if (value === undefined || value === '' || value === '0') return true;
  if (value === '1') return false;
  throw new UsageError(`${DISABLE_ROBUSTNESS_ENV} must be 1 (no bounds clamps) or 0, got "${value}"; unset it to keep them`);
}

/** The environment variable that caps the binding size when --max-binding is not given. */
export const MAX_BINDING_ENV = 'DENSENET_WGSL_MAX_BINDING_MIB';

/** What the adapter info holds (the fields Dawn fills; adapterType only where a binding reports it). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  adapterType?: string;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

const mib = (n: number) => (n >= 2 ** 20 ? `${+(n / 2 ** 20).toFixed(2)} MiB` : `${+(n / 2 ** 20).toFixed(3)} MiB`);

/** The adapter's class from its info: Dawn's own fields first, then its name and vendor. */
export function classifyAdapter(info: AdapterInfoLike): { class: AdapterClass; reason: string } {
  const text = `${info.description ?? ''} ${info.device ?? ''} ${info.architecture ?? ''}`;
  if (info.isFallbackAdapter) return { class: 'software', reason: 'Dawn reports a fallback (CPU) adapter' };
  const software = SOFTWARE_NAMES.exec(text);
  if (software) return { class: 'software', reason: `its name says ${software[0]}` };
  const type = (info.adapterType ?? '').toLowerCase();
  if (type.includes('cpu')) return { class: 'software', reason: `Dawn reports adapter type "${info.adapterType}"` };
  if (type.includes('discrete')) return { class: 'discrete', reason: `Dawn reports adapter type "${info.adapterType}"` };
  if (type.includes('integrated')) return { class: 'integrated', reason: `Dawn reports adapter type "${info.adapterType}"` };
  const vendor = (info.vendor ?? '').toLowerCase();
  // Without a type, the vendor decides where it makes one kind of chip (or says which by name).
  if (vendor === 'nvidia') return { class: 'discrete', reason: 'vendor nvidia' };
  if (vendor === 'intel') return /\barc\b/i.test(text) ? { class: 'discrete', reason: 'Intel Arc' } : { class: 'integrated', reason: 'vendor intel' };
  if (vendor === 'amd') {
    return /radeon(\(tm\))? graphics|vega \d+ graphics|\bapu\b/i.test(text)
      ? { class: 'integrated', reason: 'an AMD APU by name' } : { class: 'discrete', reason: 'vendor amd' };
  }
  if (['apple', 'arm', 'qualcomm', 'imagination', 'broadcom', 'samsung'].includes(vendor)) return { class: 'integrated', reason: `vendor ${vendor}` };
  return { class: 'unknown', reason: `nothing in the adapter info says (vendor "${info.vendor ?? ''}")` };
}

/** Kernel variants choose by this: the software default, or the GPU-class variant. Unknown adapters are GPUs. */
export function kernelClass(gpu: { readonly profile: AdapterProfile }, env: Record<string, string | undefined> = hostEnvironment()): KernelClass {
  // DENSENET_WGSL_KERNELS forces one class: the GPU-class variants run (slowly, but correctly) on a
  // software adapter too, which is how the tests check them without a GPU.
  const forced = env.DENSENET_WGSL_KERNELS;
  if (forced !== undefined && forced !== '') {
    if (forced === 'software' || forced === 'gpu') return forced;
    throw new UsageError(`DENSENET_WGSL_KERNELS must be "software" or "gpu", got "${forced}"; unset it to choose by the adapter`);
  }
  return gpu.profile.class === 'software' ? 'software' : 'gpu';
}

/**
 * The binding cap in bytes from a MiB value (from --max-binding, or `source` naming the environment
 * variable), or undefined when none is given. Refuses anything but a positive number up to the
 * adapter's limit with a UsageError naming the source and the fix. Rounded down to a multiple of
 * 256 bytes (the storage-offset alignment), so a binding range of the cap is always valid.
 */
export function bindingCapBytes(value: number | string | undefined, adapterLimit: number, source: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const mib = typeof value === 'number' ? value : Number(value);
  const mibText = (n: number) => `${+(n / 2 ** 20).toFixed(3)} MiB`;
  if (!Number.isFinite(mib) || mib <= 0 || (typeof value === 'string' && value.trim() === '')) {
    throw new UsageError(`${source} must be a positive number of MiB (e.g. 1 or 0.5), got "${value}"`);
  }
  const bytes = Math.floor((mib * 2 ** 20) / 256) * 256;
  if (bytes < 256) throw new UsageError(`${source} ${value} is below one 256-byte binding; give at least ${mibText(256)}`);
  if (bytes > adapterLimit) {
    throw new UsageError(`${source} ${value} is above this adapter's maxStorageBufferBindingSize (${mibText(adapterLimit)}): ` +
      `the cap can only lower it; give at most ${adapterLimit / 2 ** 20}`);
  }
  return bytes;
}

/** WebGPU's limits as the engine uses them; `bindingCap` is present where --max-binding lowered the binding size. */
export type CappedLimits = GPUSupportedLimits & { readonly bindingCap?: { readonly deviceBytes: number } };

/** Every WebGPU limit of `device`, with maxStorageBufferBindingSize lowered to `capBytes`: what kernels bind by. */
export function cappedLimits(device: GPUSupportedLimits, capBytes: number | undefined): CappedLimits {
  const copy: Record<string, unknown> = {};
  // Dawn's limits are prototype getters: for...in reaches them where Object.keys does not.
  for (const name in device) copy[name] = (device as unknown as Record<string, number>)[name];
  if (capBytes !== undefined) {
    copy.maxStorageBufferBindingSize = Math.min(capBytes, device.maxStorageBufferBindingSize);
    copy.bindingCap = Object.freeze({ deviceBytes: device.maxStorageBufferBindingSize });
  }
  return Object.freeze(copy) as unknown as CappedLimits;
}

/** Where the binding size of `limits` comes from and what to do when an operand exceeds it (for refusals). */
export function bindingLimitText(limits: CappedLimits): { allows: string; fix: string } {
  const bytes = limits.maxStorageBufferBindingSize;
  if (!limits.bindingCap) return { allows: `the adapter allows ${bytes} (maxStorageBufferBindingSize)`, fix: 'use a smaller batch' };
  return {
    allows: `the binding cap is ${bytes} bytes (${mib(bytes)}, --max-binding / ${MAX_BINDING_ENV}; the adapter allows ${mib(limits.bindingCap.deviceBytes)})`,
    fix: 'raise or remove the cap, or use a smaller batch (operands larger than one binding are not split into chunks yet)',
  };
}

export function engineLimits(device: GPUSupportedLimits, capBytes: number | undefined): EngineLimits {
  return {
    maxBufferSize: device.maxBufferSize,
    maxStorageBufferBindingSize: Math.min(capBytes ?? Infinity, device.maxStorageBufferBindingSize),
    maxComputeWorkgroupStorageSize: device.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: device.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: device.maxComputeWorkgroupSizeX,
    maxStorageBuffersPerShaderStage: device.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: device.maxComputeWorkgroupsPerDimension,
    minStorageBufferOffsetAlignment: device.minStorageBufferOffsetAlignment,
    deviceMaxStorageBufferBindingSize: device.maxStorageBufferBindingSize,
    bindingCapBytes: capBytes ?? null,
  };
}

/** The profile as `info` prints it. */
export function formatProfile(p: AdapterProfile): string {
  const l = p.limits;
  const binding = l.bindingCapBytes === null
    ? `maxStorageBufferBindingSize ${mib(l.maxStorageBufferBindingSize)}`
    : `maxStorageBufferBindingSize ${mib(l.deviceMaxStorageBufferBindingSize)}, capped to ${mib(l.maxStorageBufferBindingSize)} ` +
      `(${l.maxStorageBufferBindingSize} bytes) by --max-binding / ${MAX_BINDING_ENV}`;
  const subgroups = p.subgroupMinSize === null ? 'not reported' : p.subgroupMinSize === p.subgroupMaxSize
    ? `${p.subgroupMinSize}` : `${p.subgroupMinSize}–${p.subgroupMaxSize}`;
  return [
    `adapter: ${p.name} (${p.vendor || 'unknown vendor'}${p.architecture ? ' ' + p.architecture : ''})${p.isSoftware ? ' [software]' : ''}`,
    `  class: ${p.class} (${p.classReason}); kernels: ${p.class === 'software' ? 'software' : 'gpu'} variants`,
    `  backend: ${p.backend}`,
    `  subgroups: ${p.hasSubgroups ? 'yes' : 'no'} (sizes ${subgroups}); shader-f16: ${p.hasShaderF16 ? 'yes' : 'no'}`,
    `  limits: maxBufferSize ${mib(l.maxBufferSize)}, ${binding}, ` +
      `workgroup storage ${l.maxComputeWorkgroupStorageSize} B, ${l.maxComputeInvocationsPerWorkgroup} invocations/workgroup, ` +
      `${l.maxStorageBuffersPerShaderStage} storage buffers/stage`,
    `  features: ${p.features.join(', ') || 'none'}`,
    ...(p.boundsChecks ? [] : [`  bounds checks: off (${DISABLE_ROBUSTNESS_ENV}=1, Dawn's disable_robustness: buffer accesses are not clamped)`]),
  ].join('\n');
}
