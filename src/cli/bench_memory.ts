export async function runMemoryBenchmarkCli(_flags: Record<string, unknown>): Promise<void> { throw new Error('not yet'); }
