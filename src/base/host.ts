// What the engine's core uses of its host, on Node: the file system, random bytes, the environment.
// Core files import these from here, never from node: modules, because a browser bundle replaces this
// file by host.browser.ts (package.json "browser"), where files do not exist (pages pass bytes instead).

export { randomBytes } from 'node:crypto';
export { open, readFile, rename, rm, stat } from 'node:fs/promises';
export { dirname } from 'node:path';

/** The process environment (DENSENET_WGSL_* settings). */
export function hostEnvironment(): Record<string, string | undefined> {
  return process.env;
}
