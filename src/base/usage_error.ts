// UsageError: a mistake in what the user asked for (a flag, a file, a value), printed as its
// message alone. It lives in this bottom room because both the CLI and the benchmarks throw it.

const BRAND = Symbol.for('densenet-wgsl.UsageError');

export class UsageError extends Error {
  readonly [BRAND] = true;

  // The CLI (dist/cli.js) and the benchmarks (dist/bench.js, loaded by the CLI at run time) are two
  // bundles, each with its own copy of this class: `instanceof` checks the brand, so an error thrown
  // in either bundle is a UsageError in both.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}
