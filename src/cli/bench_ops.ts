// `densenet-wgsl bench ops`: placeholder until bench/ops.ts lands (wired by the lead).
export async function runOpsBenchmarkCli(_flags: Record<string, unknown>): Promise<void> {
  throw new Error('bench ops: not built yet');
}
