// Checkpoints: one binary file holding everything needed to resume training exactly (a JSON
// header the caller fills, plus named float32 arrays), written atomically and verified on read.
//
// Layout (all integers little-endian):
//   0   "DNWGSLCK"                       magic, 8 bytes
//   8   u32 format version               CHECKPOINT_VERSION
//   12  u32 header length L              bytes of UTF-8 JSON
//   16  header JSON                      { header, tensors: [{ name, length, byteOffset }], payloadBytes }
//   ..  zero padding to a multiple of 4
//   P   float32 payload                  the tensors back to back; byteOffset counts from P
//   ..  u32 CRC-32 (IEEE)                over every byte before it
// The CRC is always the last 4 bytes, so any damage is caught before the header is trusted.

import { open, readFile, stat } from '../base/host.js';
import { writeFileAtomic, type AtomicFileSystem } from '../base/atomic_file.js';

// Atomic writes live in src/base (safetensors in src/io uses them too); re-exported for train's other users.
export { nodeFileSystem, writeFileAtomic, type AtomicFileSystem, type WritableFile } from '../base/atomic_file.js';

export const CHECKPOINT_MAGIC = 'DNWGSLCK';
export const CHECKPOINT_VERSION = 1;
const PREFIX_BYTES = 16;

export interface CheckpointContents {
  /** JSON-serializable: model and optimizer config, epoch, step, RNG states, metrics so far (the caller fills). */
  header: Record<string, unknown>;
  /** Named arrays: weights (torchvision names), running statistics, optimizer state. */
  tensors: Map<string, Float32Array>;
}

/** Anything wrong with a checkpoint file; the message names the file and what is wrong. */
export class CheckpointError extends Error {}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), slicing-by-8: eight table lookups per
// 8 bytes, several times faster than the byte-wise loop on the multi-hundred-MB checkpoints of
// the large presets.

const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < 8; s++) t[s * 256 + n] = (t[(s - 1) * 256 + n] >>> 8) ^ t[t[(s - 1) * 256 + n] & 0xff];
  }
  return t;
})();

/** CRC-32 of `bytes`, continuing from `previous` (the CRC of the bytes before them; 0 to start). */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = CRC_TABLES;
  let c = ~previous >>> 0;
  let i = 0;
  const n = bytes.length;
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
    c = t[7 * 256 + (a & 0xff)] ^ t[6 * 256 + ((a >>> 8) & 0xff)] ^ t[5 * 256 + ((a >>> 16) & 0xff)] ^ t[4 * 256 + (a >>> 24)] ^
      t[3 * 256 + bytes[i + 4]] ^ t[2 * 256 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Header JSON. JSON has no NaN, ±Infinity or −0 (a diverged run's metrics may hold NaN), so
// those numbers are written as {"$number": "NaN"} etc. and restored on read.

const SPECIAL_NUMBER = '$number';

function encodeHeader(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'number') return v;
    if (Number.isNaN(v)) return { [SPECIAL_NUMBER]: 'NaN' };
    if (v === Infinity) return { [SPECIAL_NUMBER]: 'Infinity' };
    if (v === -Infinity) return { [SPECIAL_NUMBER]: '-Infinity' };
    if (Object.is(v, -0)) return { [SPECIAL_NUMBER]: '-0' };
    return v;
  });
}

function decodeHeader(text: string): unknown {
  const specials: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      const s = (v as Record<string, unknown>)[SPECIAL_NUMBER];
      if (keys.length === 1 && typeof s === 'string' && s in specials) return specials[s];
    }
    return v;
  });
}

interface TensorEntry { name: string; length: number; byteOffset: number }
interface StoredHeader { header: Record<string, unknown>; tensors: TensorEntry[]; payloadBytes: number }

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a float32 array in little-endian order (a view on little-endian hosts, a copy otherwise). */
function littleEndianBytes(a: Float32Array): Uint8Array {
  if (littleEndianHost) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat32(4 * i, a[i], true);
  return out;
}

function* checkpointChunks(c: CheckpointContents, path: string): Generator<Uint8Array> {
  if (c.header === null || typeof c.header !== 'object' || Array.isArray(c.header)) {
    throw new CheckpointError(`cannot write checkpoint ${path}: the header must be an object`);
  }
  const tensors: TensorEntry[] = [];
  let payloadBytes = 0;
  for (const [name, array] of c.tensors) {
    if (typeof name !== 'string' || name.length === 0) throw new CheckpointError(`cannot write checkpoint ${path}: a tensor has an empty name`);
    if (!(array instanceof Float32Array)) throw new CheckpointError(`cannot write checkpoint ${path}: tensor "${name}" is not a Float32Array`);
    tensors.push({ name, length: array.length, byteOffset: payloadBytes });
    payloadBytes += array.byteLength;
  }
  const json = new TextEncoder().encode(encodeHeader({ header: c.header, tensors, payloadBytes } satisfies StoredHeader));
  const payloadStart = align4(PREFIX_BYTES + json.length);
  const prefix = new Uint8Array(payloadStart);
  prefix.set(new TextEncoder().encode(CHECKPOINT_MAGIC), 0);
  const view = new DataView(prefix.buffer);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, json.length, true);
  prefix.set(json, PREFIX_BYTES);
  let crc = crc32(prefix);
  yield prefix;
  for (const array of c.tensors.values()) {
    const bytes = littleEndianBytes(array);
    crc = crc32(bytes, crc);
    yield bytes;
  }
  const trailer = new Uint8Array(4);
  new DataView(trailer.buffer).setUint32(0, crc, true);
  yield trailer;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Writes a checkpoint atomically (see writeFileAtomic): a crash or a failed write leaves any
 * previous checkpoint at `path` intact. Errors are CheckpointErrors naming the file.
 */
export async function writeCheckpoint(path: string, c: CheckpointContents, options: { fileSystem?: AtomicFileSystem } = {}): Promise<void> {
  try {
    await writeFileAtomic(path, checkpointChunks(c, path), options.fileSystem);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`cannot write checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads and fully verifies a checkpoint; any damage is a CheckpointError naming the file and the problem. */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  let bytes: Uint8Array;
  try {
    if ((await stat(path)).isDirectory()) throw new Error('it is a directory');
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new CheckpointError(`cannot read checkpoint ${path}: ${why}`, { cause: e });
  }
  return parseCheckpoint(bytes, path);
}

/**
 * The caller's header of a checkpoint, read from its first bytes only: a description (e.g. of a run
 * found in an output directory), not a verified read, since readCheckpoint checks the whole file.
 * Undefined when the file cannot be read or does not start like a checkpoint.
 */
export async function readCheckpointHeader(path: string): Promise<Record<string, unknown> | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
    const prefix = new Uint8Array(PREFIX_BYTES);
    await handle.read(prefix, 0, PREFIX_BYTES, 0);
    if (new TextDecoder('latin1').decode(prefix.subarray(0, CHECKPOINT_MAGIC.length)) !== CHECKPOINT_MAGIC) return undefined;
    const length = new DataView(prefix.buffer).getUint32(12, true);
    if (length > 64 * 2 ** 20) return undefined;
    const json = new Uint8Array(length);
    await handle.read(json, 0, length, PREFIX_BYTES);
    return (decodeHeader(new TextDecoder('utf-8').decode(json)) as Partial<StoredHeader>).header;
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

/** Parses and verifies checkpoint bytes (`name` is used in error messages). */
export function parseCheckpoint(bytes: Uint8Array, name: string): CheckpointContents {
  const fail = (what: string): never => {
    throw new CheckpointError(`checkpoint ${name}: ${what}`);
  };
  const magic = new TextEncoder().encode(CHECKPOINT_MAGIC);
  const head = bytes.subarray(0, magic.length);
  if (!head.every((b, i) => b === magic[i])) fail('not a densenet-wgsl checkpoint (wrong magic bytes)');
  if (bytes.length < PREFIX_BYTES + 4) fail(`truncated: ${bytes.length} bytes, fewer than the smallest checkpoint (${PREFIX_BYTES + 4})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storedCrc = view.getUint32(bytes.length - 4, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== storedCrc) {
    // Tell a short file (an interrupted copy) from a damaged one when the header still reads.
    const headerEnd = PREFIX_BYTES + view.getUint32(12, true);
    if (headerEnd > bytes.length) fail(`truncated or corrupt: the ${bytes.length}-byte file ends inside its ${headerEnd - PREFIX_BYTES}-byte header`);
    const expected = expectedSize(bytes, view);
    if (expected !== undefined && bytes.length < expected) fail(`truncated: ${bytes.length} of ${expected} bytes`);
    if (expected !== undefined && bytes.length > expected) fail(`${bytes.length - expected} unexpected bytes after the end (${expected} bytes expected)`);
    fail('checksum mismatch: the file is corrupt');
  }
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_VERSION) fail(`format version ${version} is not supported (this build reads version ${CHECKPOINT_VERSION})`);
  const stored = readStoredHeader(bytes, view);
  if (typeof stored === 'string') return fail(stored);
  const payloadStart = align4(PREFIX_BYTES + view.getUint32(12, true));
  if (payloadStart + stored.payloadBytes + 4 !== bytes.length) {
    fail(`size ${bytes.length} bytes does not match its header (${payloadStart + stored.payloadBytes + 4})`);
  }
  const tensors = new Map<string, Float32Array>();
  for (const t of stored.tensors) {
    const start = payloadStart + t.byteOffset;
    const array = new Float32Array(t.length);
    if (littleEndianHost) {
      new Uint8Array(array.buffer).set(bytes.subarray(start, start + 4 * t.length));
    } else {
      for (let i = 0; i < t.length; i++) array[i] = view.getFloat32(start + 4 * i, true);
    }
    tensors.set(t.name, array);
  }
  return { header: stored.header, tensors };
}

/** The file size the header describes, or undefined when the header cannot be trusted. */
function expectedSize(bytes: Uint8Array, view: DataView): number | undefined {
  const stored = readStoredHeader(bytes, view);
  if (typeof stored === 'string') return undefined;
  return align4(PREFIX_BYTES + view.getUint32(12, true)) + stored.payloadBytes + 4;
}

/** The decoded, self-consistent header, or a description of what is wrong with it. */
function readStoredHeader(bytes: Uint8Array, view: DataView): StoredHeader | string {
  const length = view.getUint32(12, true);
  if (PREFIX_BYTES + length > bytes.length) return `header length ${length} runs past the end of the file`;
  let parsed: unknown;
  try {
    parsed = decodeHeader(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + length)));
  } catch (e) {
    return `header is not valid JSON (${(e as Error).message})`;
  }
  const s = parsed as Partial<StoredHeader> | null;
  if (!s || typeof s !== 'object' || !s.header || typeof s.header !== 'object' || !Array.isArray(s.tensors) ||
    !Number.isInteger(s.payloadBytes)) {
    return 'header lacks the header, tensors or payloadBytes fields';
  }
  // The tensors lie back to back; checking that here catches a header that parses but lies.
  let offset = 0;
  const names = new Set<string>();
  for (const t of s.tensors as Partial<TensorEntry>[]) {
    if (!t || typeof t.name !== 'string' || !Number.isInteger(t.length) || (t.length as number) < 0 || t.byteOffset !== offset) {
      return `tensor entry ${JSON.stringify(t)} is malformed (expected byteOffset ${offset})`;
    }
    if (names.has(t.name)) return `tensor "${t.name}" appears twice`;
    names.add(t.name);
    offset += 4 * (t.length as number);
  }
  if (offset !== s.payloadBytes) return `tensors hold ${offset} bytes but payloadBytes is ${s.payloadBytes}`;
  return s as StoredHeader;
}
