// The user's files, as the commands that read and write them see them: what a file holds (told by
// its first bytes, so a message can say "a densenet-wgsl training checkpoint"), and the checks an
// output file passes before any work starts: the right extension, an existing writable directory,
// and no existing file replaced without --overwrite.

import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { CHECKPOINT_MAGIC } from '../train/checkpoint.js';
import { UsageError } from './args.js';

export type FileKind = 'checkpoint' | 'safetensors' | 'npy';

const KIND_NAMES: Record<FileKind, string> = {
  checkpoint: 'a densenet-wgsl training checkpoint',
  safetensors: 'a safetensors file',
  npy: 'a NumPy .npy array',
};

/** What the file at `path` holds, from its first bytes; undefined for anything else (or no readable file). */
export async function fileKind(path: string): Promise<FileKind | undefined> {
  let head: Uint8Array;
  let size: number;
  try {
    const handle = await open(path, 'r');
    try {
      size = (await handle.stat()).size;
      head = new Uint8Array(9);
      head = head.subarray(0, (await handle.read(head, 0, 9, 0)).bytesRead);
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
  const startsWith = (magic: number[]) => magic.every((b, i) => head[i] === b);
  if (startsWith([...CHECKPOINT_MAGIC].map((c) => c.charCodeAt(0)))) return 'checkpoint';
  if (startsWith([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) return 'npy'; // \x93NUMPY
  // safetensors: a u64 little-endian header length, then the JSON header.
  if (head.length === 9 && head[8] === 0x7b) {
    const headerBytes = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (headerBytes > 0n && headerBytes <= BigInt(size - 8)) return 'safetensors';
  }
  return undefined;
}

/** "a safetensors file" / "a file of 1234 bytes". */
export async function describeFile(path: string): Promise<string> {
  const kind = await fileKind(path);
  if (kind) return KIND_NAMES[kind];
  const bytes = (await stat(path)).size;
  return `a file of ${bytes} byte${bytes === 1 ? '' : 's'}`;
}

/** Refuses `path` as the named flag's file when it holds a kind meant for another flag (`wrong` → the flag to use). */
export async function refuseWrongKind(command: string, flag: string, path: string, wrong: Partial<Record<FileKind, string>>): Promise<void> {
  const kind = await fileKind(path);
  const instead = kind && wrong[kind];
  if (kind && instead) throw new UsageError(`${command}: ${path} is ${KIND_NAMES[kind]}, not what --${flag} takes; give it with ${instead}`);
}

export interface OutFileRule {
  /** Extensions the format is written with, lower case with the dot (".safetensors"). */
  extensions: string[];
  /** What the command writes, for the extension message ("safetensors"). */
  format: string;
  /** --overwrite was given: an existing file may be replaced. */
  overwrite: boolean;
  /** The flag that names the file, for messages (default "out"). */
  flag?: string;
}

/**
 * Checks an output file before any work: its extension matches the format, its directory exists
 * and is writable, and an existing file is replaced only with --overwrite (the message names the
 * file and what it holds). Writing it is the caller's, atomically (writeFileAtomic).
 */
export async function checkOutFile(command: string, path: string, rule: OutFileRule): Promise<void> {
  const flag = rule.flag ?? 'out';
  // An existing file first: a user who points --out at a checkpoint hears that it is one.
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new UsageError(`${command}: --${flag} ${path} is a directory; give a file name ending in ${rule.extensions.join(' or ')}`);
  if (existing && !rule.overwrite) {
    throw new UsageError(`${command}: --${flag} ${path} already exists (${await describeFile(path)}); give --overwrite to replace it, or another --${flag}`);
  }
  const ext = extname(path).toLowerCase();
  if (!rule.extensions.includes(ext)) {
    throw new UsageError(`${command}: --${flag} ${path}: ${command} writes ${rule.format}, so the file name must end in ${rule.extensions.join(' or ')}`);
  }
  const dir = dirname(resolve(path));
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new UsageError(`${command}: --${flag} ${path}: directory ${dir} does not exist; create it first or choose another --${flag}`);
  if (!dirStat.isDirectory()) throw new UsageError(`${command}: --${flag} ${path}: ${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${command}: --${flag} ${path}: directory ${dir} is not writable; choose another --${flag}`);
  }
}
