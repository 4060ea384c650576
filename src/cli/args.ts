// A small, strict command-line parser: every flag must be declared, so a typo is an error that
// names the flag and lists the ones the command takes, instead of being silently ignored.

import type { OpenDeviceOptions } from '../gpu/device.js';
import { verboseFromEnv } from '../gpu/native_stderr.js';
import { compileProgressPrinter } from './compile_progress.js';
import { UsageError } from '../base/usage_error.js';

export interface FlagSpec {
  name: string;
  /** 'boolean' flags take no value; others take the next argument or `--flag=value`. */
  type: 'boolean' | 'string' | 'number';
  help: string;
  default?: string | number | boolean;
}

export type ParsedFlags = Record<string, string | number | boolean | undefined>;

export { UsageError } from '../base/usage_error.js';

export function parseFlags(command: string, argv: string[], specs: FlagSpec[]): { flags: ParsedFlags; positional: string[]; given: Set<string> } {
  const flags: ParsedFlags = {};
  const given = new Set<string>();
  for (const s of specs) if (s.default !== undefined) flags[s.name] = s.default;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) { positional.push(arg); continue; }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((s) => s.name === name);
    if (!spec) {
      const known = specs.map((s) => `--${s.name}`).join(', ') || 'none';
      throw new UsageError(`${command}: unknown flag --${name} (flags: ${known})`);
    }
    given.add(name);
    if (spec.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`${command}: --${name} needs a value`);
    if (spec.type === 'number') {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${command}: --${name} must be a number, got "${raw}"`);
      flags[name] = value;
    } else {
      flags[name] = raw;
    }
  }
  return { flags, positional, given };
}

export function formatFlags(specs: FlagSpec[]): string {
  return specs.map((s) => {
    const value = s.type === 'boolean' ? '' : ` <${s.type}>`;
    const def = s.default !== undefined && s.type !== 'boolean' ? ` (default ${s.default})` : '';
    return `  --${s.name}${value}`.padEnd(28) + `${s.help}${def}`;
  }).join('\n');
}

/** Flags every GPU command takes: which adapter to use, and whether to show Dawn's own messages. */
export const ADAPTER_FLAGS: FlagSpec[] = [
  { name: 'backend', type: 'string', help: 'Dawn backend: vulkan, opengles, opengl, metal, d3d12 (env DENSENET_WGSL_BACKEND)' },
  { name: 'adapter', type: 'string', help: 'adapter name as Dawn lists it (env DENSENET_WGSL_ADAPTER)' },
  { name: 'power', type: 'string', help: 'power preference: high-performance or low-power' },
  { name: 'verbose', type: 'boolean', help: "show Dawn's internal warnings and each GPU program's compile time (env DENSENET_WGSL_VERBOSE=1)" },
  { name: 'max-binding', type: 'number', help: 'cap the storage-binding size in MiB below the adapter\'s, to emulate a smaller adapter (env DENSENET_WGSL_MAX_BINDING_MIB)' },
];

/** Device options from ADAPTER_FLAGS; the compile of GPU programs is reported on stderr. */
export function adapterOptions(flags: ParsedFlags): OpenDeviceOptions & { backend?: string; adapter?: string; powerPreference?: GPUPowerPreference } {
  const power = flags.power as string | undefined;
  if (power !== undefined && power !== 'high-performance' && power !== 'low-power') {
    throw new UsageError(`--power must be high-performance or low-power, got "${power}"`);
  }
  // Refused here before any device opens; the adapter's own limit is checked by openDevice.
  const maxBinding = flags['max-binding'] as number | undefined;
  if (maxBinding !== undefined && !(maxBinding > 0)) throw new UsageError(`--max-binding must be a positive number of MiB (e.g. 1 or 0.5), got ${maxBinding}`);
  return {
    backend: flags.backend as string | undefined, adapter: flags.adapter as string | undefined, powerPreference: power as GPUPowerPreference | undefined,
    // Absent flag: leave it to openDevice (env DENSENET_WGSL_VERBOSE).
    ...(flags.verbose ? { verbose: true } : {}),
    ...(maxBinding !== undefined ? { maxBindingMiB: maxBinding } : {}),
    onCompile: compileProgressPrinter(process.stderr, undefined, { listing: flags.verbose === true || verboseFromEnv() }),
  };
}
