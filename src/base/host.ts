// What the engine's core uses of its host, on Node: the file system, random bytes, the environment.
// Core files import these from here, never from node: modules, because a browser bundle replaces this
// file by host.browser.ts (package.json "browser"), where files do not exist (pages pass bytes instead).

import { createRequire } from 'node:module';
export { randomBytes } from 'node:crypto';
export { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
export { dirname } from 'node:path';

/** The process environment (DENSENET_WGSL_* settings). */
export function hostEnvironment(): Record<string, string | undefined> {
  return process.env;
}

/** What runs the engine, for benchmark records: "node 20.20.2". */
export function runtimeName(): string {
  return `node ${process.versions.node}`;
}

/** The installed version of an npm package, or 'unknown'. */
export function packageVersion(name: string): string {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
