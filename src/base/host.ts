// What the engine's core uses of its host, on Node: the file system, random bytes, the environment.
// Core files import these from here, never from node: modules, because a browser bundle replaces this
// file by host.browser.ts (package.json "browser"), where files do not exist (pages pass bytes instead).

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism, freemem } from 'node:os';
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

/** The same as a record's versions entry: { node: "20.20.2" }. */
export function runtimeVersions(): Record<string, string> {
  return { node: process.versions.node };
}

/** The installed version of an npm package, or `missing`. */
export function packageVersion(name: string, missing = 'unknown'): string {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return missing;
  }
}

/** How this process was started, for benchmark records. */
export function commandLine(): string {
  return process.argv.slice(1).join(' ');
}

/** CPU threads the host offers (a software adapter's driver compiles and runs on them). */
export function cpuThreads(): number {
  return availableParallelism();
}

/** Free host memory in bytes (a software adapter's GPU memory is host memory). */
export function freeMemoryBytes(): number {
  return freemem();
}

/** This project's version (package.json next to dist/ or two levels up from a test bundle) and git commit, where found. */
export function projectVersion(): string {
  const require = createRequire(import.meta.url);
  let version = 'unknown';
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const p = require(path) as { name?: string; version?: string };
      if (p.name === 'densenet-wgsl' && p.version) { version = p.version; break; }
    } catch { /* not there */ }
  }
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (commit) version += ` (git ${commit})`;
  } catch { /* not a checkout */ }
  return version;
}
