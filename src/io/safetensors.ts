// The safetensors file format (Hugging Face), read and written without dependencies: how
// torchvision / PyTorch weights reach the engine and how ours go back.
//
// Layout: u64 little-endian N, then N bytes of UTF-8 JSON
//   { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
//     "__metadata__": { "<key>": "<string>" } (optional) }
// (the writer pads the JSON with spaces to a multiple of 8 bytes, as the reference implementation),
// then the byte buffer: each tensor's row-major little-endian elements at [begin, end) counted from
// the first byte after the header.
//
// Reading gives float32 for every floating-point tensor: F32 as stored, F16 / BF16 / F64
// CONVERTED to float32 (exact for F16 and BF16; F64 is rounded to nearest), and I64 as a
// BigInt64Array (torch's BatchNorm num_batches_tracked). Any other dtype (I32, U8, BOOL, F8_*, ...)
// is refused with an error naming the tensor and its dtype.

import { readFile, stat } from '../base/host.js';
import { writeFileAtomic, type AtomicFileSystem } from '../base/atomic_file.js';

export type FloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';
export type SupportedDtype = FloatDtype | 'I64';

/** Element size in bytes of every dtype the format defines (so that unsupported ones are still recognised). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
const SUPPORTED: readonly SupportedDtype[] = ['F32', 'F16', 'BF16', 'F64', 'I64'];
/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length otherwise asks for gigabytes). */
const MAX_HEADER_BYTES = 100_000_000;

/** Anything wrong with a safetensors file; the message names the file and, where one is at fault, the tensor. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface ReadTensor {
  /** The dtype stored in the file (floating-point data was converted to float32 if it was not F32). */
  dtype: SupportedDtype;
  shape: number[];
  /** Float32Array for F32/F16/BF16/F64, BigInt64Array for I64. */
  data: Float32Array | BigInt64Array;
}

export interface SafetensorsContents {
  /** In the header's order. */
  tensors: Map<string, ReadTensor>;
  metadata: Record<string, string>;
}

export type WritableTensor =
  | { dtype: FloatDtype; shape: readonly number[]; data: ArrayLike<number> }
  | { dtype: 'I64'; shape: readonly number[]; data: BigInt64Array | readonly (number | bigint)[] };

const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

// ---------------------------------------------------------------------------------------------
// Half-precision conversions.

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
let f16Table: Float32Array | undefined;

/** IEEE binary16 bits → the (exactly representable) float32 value. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** float32 → binary16 bits, rounded to nearest, ties to even (overflow → ±Infinity, NaN stays NaN). */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 bits → float32 (exact). */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** float32 → bfloat16 bits, rounded to nearest, ties to even. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Reading.

export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    if ((await stat(path)).isDirectory()) throw new Error('it is a directory');
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(`safetensors ${path}: cannot read it (${code === 'ENOENT' ? 'no such file' : (e as Error).message})`, { cause: e });
  }
  return parseSafetensors(bytes, path);
}

interface HeaderEntry { name: string; dtype: string; shape: number[]; begin: number; end: number }

/** Parses and validates safetensors bytes; `file` names the source in error messages. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  const fail = (what: string, tensor?: string): never => {
    throw new SafetensorsError(`safetensors ${file}: ${tensor !== undefined ? `tensor "${tensor}": ` : ''}${what}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, not even the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated, or not a safetensors file)`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message}); is this a safetensors file?`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('"__metadata__" is not an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__" value "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (!t || typeof t !== 'object') fail('header entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = t!;
    if (typeof dtype !== 'string') fail('has no dtype', name);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`shape ${JSON.stringify(shape)} is not a list of whole numbers >= 0`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`, name);
    }
    const elementBytes = DTYPE_BYTES[dtype as string];
    if (elementBytes === undefined) fail(`unknown dtype "${dtype}"`, name);
    const [begin, end] = offsets as number[];
    const expected = elementCount(shape as number[]) * elementBytes;
    if (end - begin !== expected) {
      fail(`shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`, name);
    }
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }

  const dataStart = 8 + n;
  const available = bytes.length - dataStart;
  const byBegin = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 0; i < byBegin.length; i++) {
    const e = byBegin[i];
    if (e.end > available) {
      fail(`data [${e.begin}, ${e.end}) runs past the end of the data (${available} bytes after the header): the file is truncated ` +
        `(${bytes.length} bytes; the header describes at least ${dataStart + Math.max(...byBegin.map((x) => x.end))})`, e.name);
    }
    if (i > 0 && e.begin < byBegin[i - 1].end) {
      fail(`data [${e.begin}, ${e.end}) overlaps tensor "${byBegin[i - 1].name}" at [${byBegin[i - 1].begin}, ${byBegin[i - 1].end})`, e.name);
    }
  }
  for (const e of entries) {
    if (!SUPPORTED.includes(e.dtype as SupportedDtype)) {
      fail(`dtype ${e.dtype} is not supported: this reader loads F32, F16, BF16 and F64 (converted to float32) and I64; ` +
        'save the weights as float32 (e.g. {k: v.float() for k, v in state_dict.items()} for floating tensors)', e.name);
    }
  }

  const tensors = new Map<string, ReadTensor>();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype as SupportedDtype, shape: [...e.shape], data: decode(e, bytes.subarray(dataStart + e.begin, dataStart + e.end)) });
  return { tensors, metadata };
}

function decode(e: HeaderEntry, raw: Uint8Array): Float32Array | BigInt64Array {
  const count = elementCount(e.shape);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case 'F16': {
      f16Table ??= Float32Array.from({ length: 65536 }, (_, bits) => f16ToF32(bits));
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16Table[view.getUint16(2 * i, true)];
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    default: {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(8 * i, true);
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing.

function encodeTensor(name: string, t: WritableTensor): Uint8Array {
  const count = elementCount(t.shape);
  if (!t.shape.every((d) => isCount(d))) throw new SafetensorsError(`safetensors: tensor "${name}": shape [${t.shape.join(', ')}] is not whole numbers >= 0`);
  if (t.data.length !== count) {
    throw new SafetensorsError(`safetensors: tensor "${name}": ${t.data.length} values given, shape [${t.shape.join(', ')}] needs ${count}`);
  }
  const size = DTYPE_BYTES[t.dtype];
  if (!SUPPORTED.includes(t.dtype)) throw new SafetensorsError(`safetensors: tensor "${name}": cannot write dtype ${String(t.dtype)} (supported: ${SUPPORTED.join(', ')})`);
  const out = new Uint8Array(count * size);
  const view = new DataView(out.buffer);
  if (t.dtype === 'I64') {
    for (let i = 0; i < count; i++) view.setBigInt64(8 * i, BigInt(t.data[i]), true);
    return out;
  }
  const data = t.data;
  for (let i = 0; i < count; i++) {
    switch (t.dtype) {
      case 'F32': view.setFloat32(4 * i, data[i], true); break;
      case 'F64': view.setFloat64(8 * i, data[i], true); break;
      case 'F16': view.setUint16(2 * i, f32ToF16(data[i]), true); break;
      case 'BF16': view.setUint16(2 * i, f32ToBf16(data[i]), true); break;
    }
  }
  return out;
}

/**
 * The file as chunks: header, then each tensor's bytes. Data are laid out widest dtype first (as the
 * reference writer does, so every tensor starts aligned to its element size); the header keeps the
 * caller's order. F16/BF16 values are rounded to nearest-even.
 */
export function* safetensorsChunks(tensors: Iterable<[string, WritableTensor]>, metadata: Record<string, string> = {}): Generator<Uint8Array> {
  const list = [...tensors];
  const names = new Set<string>();
  for (const [name] of list) {
    if (name === '__metadata__' || names.has(name)) throw new SafetensorsError(`safetensors: tensor name "${name}" is ${names.has(name) ? 'given twice' : 'reserved'}`);
    names.add(name);
  }
  const layout = list.map(([, t], index) => ({ index, bytes: elementCount(t.shape) * (DTYPE_BYTES[t.dtype] ?? 0) }))
    .sort((a, b) => DTYPE_BYTES[list[b.index][1].dtype] - DTYPE_BYTES[list[a.index][1].dtype] || a.index - b.index);
  const offsets = new Array<[number, number]>(list.length);
  let offset = 0;
  for (const l of layout) { offsets[l.index] = [offset, offset + l.bytes]; offset += l.bytes; }
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  list.forEach(([name, t], i) => { header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: offsets[i] }; });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const encoded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20); // space padding to a multiple of 8
  encoded.set(json);
  const prefix = new Uint8Array(8 + encoded.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(encoded.length), true);
  prefix.set(encoded, 8);
  yield prefix;
  for (const l of layout) yield encodeTensor(list[l.index][0], list[l.index][1]);
}

/** The whole file in one array (tests, small files). */
export function encodeSafetensors(tensors: Iterable<[string, WritableTensor]>, metadata?: Record<string, string>): Uint8Array {
  const chunks = [...safetensorsChunks(tensors, metadata)];
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

/** Writes a safetensors file atomically (an existing file at `path` survives a failed write). */
export async function writeSafetensors(path: string, tensors: Iterable<[string, WritableTensor]>, metadata?: Record<string, string>,
  options: { fileSystem?: AtomicFileSystem } = {}): Promise<void> {
  const chunks = safetensorsChunks(tensors, metadata); // validates names before a file is created
  const first = chunks.next();
  try {
    await writeFileAtomic(path, (function* () { if (!first.done) yield first.value; yield* chunks; })(), options.fileSystem);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(`safetensors ${path}: cannot write it (${(e as Error).message})`, { cause: e });
  }
}
