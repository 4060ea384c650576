// The contract between the CLI and the benchmarks' own bundle (dist/bench.js, built from
// bench/commands.ts): the CLI parses a `bench ...` command's flags, loads that bundle by path at run
// time (so the CLI bundle carries no benchmark code) and calls runBenchCommand.

export type BenchCommand = 'ops' | 'train' | 'memory' | 'inference' | 'profile';

export interface BenchContext {
  /** Which adapter to open (the CLI's --backend, --adapter, --power). */
  device: { backend?: string; adapter?: string; powerPreference?: GPUPowerPreference };
  /** The command line as typed, recorded in the reports. */
  commandLine: string;
}

export interface BenchEntry {
  /** Checks the command's flag values (a UsageError names the bad one) and runs the benchmark. */
  runBenchCommand(command: BenchCommand, flags: Record<string, string | number | boolean | undefined>, context: BenchContext): Promise<void>;
}
