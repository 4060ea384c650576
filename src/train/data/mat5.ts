// A reader for the numeric arrays of MATLAB Level 5 MAT-files (MathWorks, "MAT-File Format",
// R2014b), enough for SVHN's train_32x32.mat: a 128-byte header, then data elements, each an
// 8-byte tag (type, byte count; or a 4-byte "small element" tag with up to 4 bytes of data)
// padded to 8 bytes, or miCOMPRESSED (zlib) holding one element. A variable is a miMATRIX of
// sub-elements: array flags (class), dimensions, name, real part. The real part may be stored in
// a smaller type than its class (MATLAB writes doubles holding small integers as miUINT8).
// Sparse, cell, struct, char and complex arrays are skipped (listed in errors); HDF5-based v7.3 files are refused.

import { inflateSync } from 'node:zlib';

export class MatFileError extends Error {
  override name = 'MatFileError';
}

/** MATLAB array classes we read (mxClassID): numeric only. */
const NUMERIC_CLASSES: Record<number, string> = {
  6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64',
};
const OTHER_CLASSES: Record<number, string> = { 1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse' };

/** Data types of elements (miINT8 ...), with their byte sizes for numeric ones. */
const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16 };
const ELEMENT_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };

export interface MatArray {
  name: string;
  /** MATLAB class: double, single, uint8, ... */
  className: string;
  /** MATLAB dimensions (column-major: the first index varies fastest). */
  dims: number[];
  /** The real part, in the type it was stored in (not necessarily its class); element i is data[i]. */
  data: ArrayLike<number>;
}

export interface MatFile {
  /** Numeric variables by name. */
  arrays: Map<string, MatArray>;
  /** Variables that are not numeric arrays (name → what they are), for messages. */
  skipped: Map<string, string>;
}

/** Parses a MAT-file's bytes; `file` names it in errors (MatFileError). */
export function readMat5(bytes: Uint8Array, file: string): MatFile {
  const fail = (what: string): never => { throw new MatFileError(`${file}: ${what}`); };
  if (bytes.length < 128) fail(`truncated: ${bytes.length} bytes, shorter than the 128-byte MAT-file header`);
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, 116));
  if (!text.startsWith('MATLAB')) fail('not a MATLAB MAT-file (its header does not start with "MATLAB")');
  if (text.startsWith('MATLAB 7.3')) fail('is a MATLAB 7.3 (HDF5) file; save it with -v7 or -v6 (these SVHN files as distributed are Level 5)');
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (endian !== 'IM' && endian !== 'MI') fail(`bad endian indicator "${endian}" at byte 126 (expected "IM" or "MI"); not a Level 5 MAT-file`);
  const little = endian === 'IM';
  const result: MatFile = { arrays: new Map(), skipped: new Map() };
  let at = 128;
  while (at < bytes.length) {
    if (bytes.length - at < 8) fail(`truncated: ${bytes.length - at} stray bytes at byte ${at}, too few for an element tag`);
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
    const type = view.getUint32(0, little);
    const size = view.getUint32(4, little);
    const body = at + 8;
    if (size > bytes.length - body) fail(`truncated: the element at byte ${at} says ${size} bytes, only ${bytes.length - body} remain`);
    if (type === MI.COMPRESSED) {
      let inner: Uint8Array;
      try {
        inner = inflateSync(bytes.subarray(body, body + size));
      } catch (e) {
        fail(`the compressed element at byte ${at} does not decompress (${(e as Error).message}); the file is damaged or truncated`);
      }
      readVariable(inner!, 0, inner!.length, little, `${file} (compressed element at byte ${at})`, result);
      at = body + size; // compressed elements are not padded
    } else if (type === MI.MATRIX) {
      readVariable(bytes, at, body + size, little, file, result);
      at = body + padded(size);
    } else {
      at = body + padded(size); // other top-level elements (none in practice) are skipped
    }
  }
  return result;
}

const padded = (n: number) => Math.ceil(n / 8) * 8;

interface Element { type: number; data: Uint8Array; next: number }

/** The element whose tag starts at `at` (normal or small), within [0, end). */
function element(bytes: Uint8Array, at: number, end: number, little: boolean, where: string): Element {
  if (end - at < 8) throw new MatFileError(`${where}: truncated: an element tag at byte ${at} runs past the end of its array`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 8);
  const first = view.getUint32(0, little);
  if (first >>> 16 !== 0) { // small data element: 2-byte size, 2-byte type, data in the next 4 bytes
    const size = first >>> 16;
    if (size > 4) throw new MatFileError(`${where}: a small element at byte ${at} claims ${size} bytes (at most 4)`);
    return { type: first & 0xffff, data: bytes.subarray(at + 4, at + 4 + size), next: at + 8 };
  }
  const size = view.getUint32(4, little);
  if (size > end - at - 8) throw new MatFileError(`${where}: truncated: an element at byte ${at} says ${size} bytes, only ${end - at - 8} remain`);
  return { type: first, data: bytes.subarray(at + 8, at + 8 + size), next: at + 8 + padded(size) };
}

/** Reads the miMATRIX element at `at` into `out` (numeric) or `out.skipped` (anything else). */
function readVariable(bytes: Uint8Array, at: number, end: number, little: boolean, where: string, out: MatFile): void {
  const matrix = element(bytes, at, end, little, where);
  if (matrix.type !== MI.MATRIX) throw new MatFileError(`${where}: expected a matrix element at byte ${at}, found data type ${matrix.type}`);
  const inner = matrix.data;
  const flags = element(inner, 0, inner.length, little, where);
  if (flags.type !== MI.UINT32 || flags.data.length < 8) throw new MatFileError(`${where}: a variable at byte ${at} has no array-flags sub-element`);
  const flagWord = new DataView(flags.data.buffer, flags.data.byteOffset, 8).getUint32(0, little);
  const classId = flagWord & 0xff;
  const complex = (flagWord & 0x800) !== 0;
  const dimsElement = element(inner, flags.next, inner.length, little, where);
  if (dimsElement.type !== MI.INT32) throw new MatFileError(`${where}: a variable at byte ${at} has no dimensions sub-element`);
  const dims = Array.from(numbers(dimsElement, little, where));
  const nameElement = element(inner, dimsElement.next, inner.length, little, where);
  const name = new TextDecoder('latin1').decode(nameElement.data);
  const className = NUMERIC_CLASSES[classId];
  if (!className || complex) {
    out.skipped.set(name, complex ? `complex ${className ?? 'array'}` : OTHER_CLASSES[classId] ?? `class ${classId}`);
    return;
  }
  const real = element(inner, nameElement.next, inner.length, little, `${where}: variable "${name}"`);
  const data = numbers(real, little, `${where}: variable "${name}"`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new MatFileError(`${where}: variable "${name}" has ${data.length} values for dimensions ${dims.join('x')} (${count}); the file is damaged`);
  }
  out.arrays.set(name, { name, className, dims, data });
}

/** A numeric element's values (bytes as they are for miUINT8; others decoded in the file's byte order). */
function numbers(e: Element, little: boolean, where: string): ArrayLike<number> {
  if (e.type === MI.UINT8) return e.data;
  const size = ELEMENT_BYTES[e.type];
  if (!size) throw new MatFileError(`${where}: data type ${e.type} is not a numeric type`);
  if (e.data.length % size !== 0) throw new MatFileError(`${where}: ${e.data.length} bytes are not a whole number of ${size}-byte values`);
  const n = e.data.length / size;
  const view = new DataView(e.data.buffer, e.data.byteOffset, e.data.length);
  const out = new Float64Array(n);
  const read: (i: number) => number = {
    [MI.INT8]: (i: number) => view.getInt8(i), [MI.INT16]: (i: number) => view.getInt16(i * 2, little),
    [MI.UINT16]: (i: number) => view.getUint16(i * 2, little), [MI.INT32]: (i: number) => view.getInt32(i * 4, little),
    [MI.UINT32]: (i: number) => view.getUint32(i * 4, little), [MI.SINGLE]: (i: number) => view.getFloat32(i * 4, little),
    [MI.DOUBLE]: (i: number) => view.getFloat64(i * 8, little), [MI.INT64]: (i: number) => Number(view.getBigInt64(i * 8, little)),
    [MI.UINT64]: (i: number) => Number(view.getBigUint64(i * 8, little)),
  }[e.type]!;
  for (let i = 0; i < n; i++) out[i] = read(i);
  return out;
}
