// The browser side of host.ts (swapped in by esbuild through package.json "browser"): a page has no
// file system and no environment variables. The file functions exist so that the core's modules
// load; calling one is a mistake in a page, which reads files as bytes (parseCheckpoint, parseSafetensors).

import type * as node from './host.js';

function noFiles(what: string): () => never {
  return () => {
    throw new Error(`${what}: a browser page has no file system; read the file's bytes (File.arrayBuffer(), fetch) and parse them instead`);
  };
}

export const randomBytes = noFiles('randomBytes') as unknown as typeof node.randomBytes;
export const open = noFiles('open') as unknown as typeof node.open;
export const readFile = noFiles('readFile') as unknown as typeof node.readFile;
export const rename = noFiles('rename') as unknown as typeof node.rename;
export const rm = noFiles('rm') as unknown as typeof node.rm;
export const stat = noFiles('stat') as unknown as typeof node.stat;
export const writeFile = noFiles('writeFile') as unknown as typeof node.writeFile;
export const dirname = noFiles('dirname') as unknown as typeof node.dirname;

/** No environment in a page: every DENSENET_WGSL_* setting takes its default. */
export function hostEnvironment(): Record<string, string | undefined> {
  return {};
}

/** The browser, for benchmark records. */
export function runtimeName(): string {
  return (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? 'a browser';
}

/** The same as a record's versions entry: { browser: user agent }. */
export function runtimeVersions(): Record<string, string> {
  return { browser: runtimeName() };
}

/** npm package versions are not known in a page (the bundle does not carry package.json files). */
export function packageVersion(_name: string, missing = 'unknown'): string {
  return missing;
}

/** The page's address, for benchmark records. */
export function commandLine(): string {
  return (globalThis as { location?: { href?: string } }).location?.href ?? '';
}

/** The browser's hardwareConcurrency (1 where it does not say). */
export function cpuThreads(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

/** Unknown in a page: no cap from it. */
export function freeMemoryBytes(): number {
  return Infinity;
}

/** The bundle does not carry package.json. */
export function projectVersion(): string {
  return 'unknown';
}
