// NumPy .npy files (format version 1.0) for float32 matrices: `features --out x.npy` writes the
// pooled feature vectors so that `numpy.load('x.npy')` gives an (images, features) float32 array.
//
// Layout: "\x93NUMPY", version bytes 1 0, u16 little-endian header length H, H bytes of an ASCII
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (R, C), } padded with
// spaces and ending in '\n' so the data start at a multiple of 64 bytes, then the data row-major.

export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || count !== data.length) {
    throw new RangeError(`npy: shape (${shape.join(', ')}) does not hold ${data.length} values`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (dict.length > 0xffff) throw new RangeError('npy: header too long for format 1.0');
  const out = new Uint8Array(10 + dict.length + 4 * count);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]); // \x93NUMPY v1.0
  const view = new DataView(out.buffer);
  view.setUint16(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[10 + i] = dict.charCodeAt(i);
  const start = 10 + dict.length;
  for (let i = 0; i < count; i++) view.setFloat32(start + 4 * i, data[i], true);
  return out;
}

/** Reads back what encodeNpyFloat32 writes (little-endian float32, C order); for tests and tools. */
export function decodeNpyFloat32(bytes: Uint8Array): { shape: number[]; data: Float32Array } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || !magic.every((b, i) => bytes[i] === b)) throw new RangeError('npy: not a .npy file (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint16(8, true);
  const header = new TextDecoder('latin1').decode(bytes.subarray(10, 10 + headerLength));
  if (!/'descr':\s*'<f4'/.test(header) || !/'fortran_order':\s*False/.test(header)) throw new RangeError(`npy: only little-endian float32 C-order arrays are read (${header.trim()})`);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!shapeMatch) throw new RangeError(`npy: no shape in header ${header.trim()}`);
  const shape = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 10 + headerLength;
  if (bytes.length !== start + 4 * count) throw new RangeError(`npy: ${bytes.length - start} data bytes for shape (${shape.join(', ')})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(start + 4 * i, true);
  return { shape, data };
}
