// safetensors reading and writing (src/io/safetensors.ts) and the .npy writer (src/io/npy.ts):
// half-precision conversions against known bit patterns and exhaustive round trips, files of every
// supported dtype with metadata and a 0-d I64, a file laid out by hand the way the reference writer
// does, and every validation error (each names the file and, where one is at fault, the tensor).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bf16ToF32, encodeSafetensors, f16ToF32, f32ToBf16, f32ToF16, parseSafetensors, readSafetensors, SafetensorsError,
  writeSafetensors, type WritableTensor,
} from '../src/io/safetensors.js';
import { decodeNpyFloat32, encodeNpyFloat32 } from '../src/io/npy.js';
import { randomArray } from './helpers.js';

const test = suite('safetensors');
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'safetensors-test-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

/** A safetensors file from a header object and a data section, as another writer might lay it out. */
function handMade(header: object, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function throwsNaming(f: () => unknown, ...parts: (string | RegExp)[]): void {
  try {
    f();
  } catch (e) {
    assert.instance(e, SafetensorsError);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok((e as Error).message.includes(p), `"${(e as Error).message}" should mention "${p}"`);
      else assert.match((e as Error).message, p);
    }
    return;
  }
  assert.unreachable(`expected a SafetensorsError mentioning ${parts.join(', ')}`);
}

test('f16 bits → float32 on known values', () => {
  const known: [number, number][] = [
    [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14],
    [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0],
  ];
  for (const [bits, value] of known) assert.is(f16ToF32(bits), value, `0x${bits.toString(16)}`);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
});

test('float32 → f16 rounds to nearest, ties to even, overflows to infinity', () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff],
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: to even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1 ulp and 2 ulps: to even (2)
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway
    [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
    [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001], [2 ** -26, 0x0000], [1023.5 * 2 ** -24, 0x0400], // subnormal → normal by rounding
    [Infinity, 0x7c00], [-0, 0x8000],
  ];
  for (const [value, bits] of cases) assert.is(f32ToF16(value), bits, `${value}`);
  assert.is(f32ToF16(NaN) & 0x7c00, 0x7c00);
  assert.ok((f32ToF16(NaN) & 0x3ff) !== 0);
});

test('every finite f16 and bf16 bit pattern survives decode → encode (two independent conversions agree)', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7c00) === 0x7c00 && bits & 0x3ff) continue; // NaN payloads
    if (f32ToF16(f16ToF32(bits)) !== bits) assert.unreachable(`f16 0x${bits.toString(16)} → ${f16ToF32(bits)} → 0x${f32ToF16(f16ToF32(bits)).toString(16)}`);
  }
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7f80) === 0x7f80 && bits & 0x7f) continue;
    if (f32ToBf16(bf16ToF32(bits)) !== bits) assert.unreachable(`bf16 0x${bits.toString(16)}`);
  }
});

test('bfloat16 on known values and rounding', () => {
  assert.is(bf16ToF32(0x3f80), 1);
  assert.is(bf16ToF32(0x4049), 3.140625);
  assert.is(bf16ToF32(0xc2f7), -123.5);
  assert.is(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie → even
  assert.is(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie → even
  assert.is(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.is(f32ToBf16(Math.PI), 0x4049);
});

test('a file of every supported dtype round-trips: metadata, 0-d I64, empty tensor, F16/BF16/F64 converted to float32', async () => {
  const f32 = randomArray(24, 1);
  const f64 = Float64Array.from(randomArray(5, 2), (v) => v / 3);
  const halves = [1, -2, 0.333251953125, 65504, 2 ** -24, 0.1]; // 0.1 is not a half: it reads back rounded
  const tensors: [string, WritableTensor][] = [
    ['a.f16', { dtype: 'F16', shape: [2, 3], data: halves }],
    ['b.f32', { dtype: 'F32', shape: [2, 3, 4], data: f32 }],
    ['c.count', { dtype: 'I64', shape: [], data: [123456789012n] }],
    ['d.bf16', { dtype: 'BF16', shape: [3], data: [1, Math.PI, -123.5] }],
    ['e.f64', { dtype: 'F64', shape: [5], data: f64 }],
    ['f.empty', { dtype: 'F32', shape: [0, 3], data: [] }],
    ['g.i64', { dtype: 'I64', shape: [2], data: [-1, 2 ** 40] }],
  ];
  const path = join(dir, 'all.safetensors');
  await writeSafetensors(path, tensors, { format: 'pt', note: 'ünïcode ✓' });
  const bytes = new Uint8Array(await readFile(path));
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLength % 8, 0, 'the header is padded to a multiple of 8 bytes');
  const read = await readSafetensors(path);
  assert.equal(read.metadata, { format: 'pt', note: 'ünïcode ✓' });
  assert.equal([...read.tensors.keys()], tensors.map(([n]) => n), 'header order is kept');
  const get = (n: string) => read.tensors.get(n)!;
  assert.equal(get('b.f32').shape, [2, 3, 4]);
  assert.is(get('b.f32').dtype, 'F32');
  assert.equal([...get('b.f32').data], [...f32]);
  assert.is(get('a.f16').dtype, 'F16');
  assert.ok(get('a.f16').data instanceof Float32Array);
  assert.equal([...get('a.f16').data], [1, -2, 0.333251953125, 65504, 2 ** -24, 0.0999755859375]);
  assert.equal([...get('d.bf16').data], [1, 3.140625, -123.5]);
  assert.equal([...get('e.f64').data], [...Float32Array.from(f64)]);
  assert.equal(get('c.count').shape, []);
  assert.equal([...get('c.count').data], [123456789012n]);
  assert.equal([...get('g.i64').data], [-1n, 2n ** 40n]);
  assert.equal(get('f.empty').shape, [0, 3]);
  assert.is(get('f.empty').data.length, 0);
  // Widest dtype first in the data section: every tensor starts aligned to its element size.
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; data_offsets: number[] }>;
  const width: Record<string, number> = { F64: 8, I64: 8, F32: 4, F16: 2, BF16: 2 };
  for (const [name, t] of Object.entries(header)) if (name !== '__metadata__') assert.is(t.data_offsets[0] % width[t.dtype], 0, name);
  assert.equal(header['c.count'].data_offsets, [0, 8]); // 8-byte dtypes first, in the caller's order
  assert.equal(header['e.f64'].data_offsets, [8, 48]);
  assert.equal(header['b.f32'].data_offsets, [64, 160]);
  assert.equal((await readdir(dir)).filter((f) => f.includes('.tmp-')), [], 'no temporary file is left');
});

test('a hand-laid file: data order differs from header order, trailing header spaces, no metadata', () => {
  const data = new Uint8Array(4 * 3 + 8);
  const view = new DataView(data.buffer);
  view.setBigInt64(0, 7n, true); // "count" stored first
  [0.5, -1.25, 3].forEach((v, i) => view.setFloat32(8 + 4 * i, v, true));
  const bytes = handMade({ weight: { dtype: 'F32', shape: [3], data_offsets: [8, 20] }, count: { dtype: 'I64', shape: [], data_offsets: [0, 8] } }, data, 5);
  const read = parseSafetensors(bytes, 'hand.safetensors');
  assert.equal([...read.tensors.get('weight')!.data], [0.5, -1.25, 3]);
  assert.equal([...read.tensors.get('count')!.data], [7n]);
  assert.equal(read.metadata, {});
});

test('errors name the file and the tensor: truncated, header past the end, overlap, size mismatch, dtype, bad JSON', async () => {
  const good = encodeSafetensors([['w', { dtype: 'F32', shape: [4, 2], data: randomArray(8, 3) }], ['b', { dtype: 'F32', shape: [2], data: [1, 2] }]]);
  throwsNaming(() => parseSafetensors(good.subarray(0, good.length - 3), 'cut.safetensors'), 'cut.safetensors', 'truncated', 'tensor "');
  throwsNaming(() => parseSafetensors(good.subarray(0, 5), 'tiny.safetensors'), 'tiny.safetensors', 'truncated');
  const longHeader = good.slice();
  new DataView(longHeader.buffer).setBigUint64(0, BigInt(good.length), true);
  throwsNaming(() => parseSafetensors(longHeader, 'long.safetensors'), 'long.safetensors', `header length ${good.length} runs past the end`);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  throwsNaming(() => parseSafetensors(huge, 'huge.safetensors'), 'runs past the end');

  const data = new Uint8Array(16);
  throwsNaming(() => parseSafetensors(handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), 'o.safetensors'),
    'o.safetensors', 'tensor "b"', 'overlaps tensor "a"');
  throwsNaming(() => parseSafetensors(handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), 's.safetensors'),
    's.safetensors', 'tensor "a"', 'shape [3] of F32 needs 12 bytes', '[0, 8] hold 8');
  throwsNaming(() => parseSafetensors(handMade({ a: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data), 'r.safetensors'),
    'r.safetensors', 'tensor "a"', 'truncated');
  throwsNaming(() => parseSafetensors(handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, data), 'n.safetensors'), 'tensor "a"', 'data_offsets');
  throwsNaming(() => parseSafetensors(handMade({ 'layer.weight': { dtype: 'I32', shape: [4], data_offsets: [0, 16] } }, data), 'i.safetensors'),
    'i.safetensors', 'tensor "layer.weight"', 'dtype I32 is not supported');
  throwsNaming(() => parseSafetensors(handMade({ m: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, data), 'u.safetensors'), 'tensor "m"', 'unknown dtype "F17"');
  throwsNaming(() => parseSafetensors(handMade({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, data), 'neg.safetensors'), 'tensor "a"', 'shape');
  throwsNaming(() => parseSafetensors(handMade({ __metadata__: { n: 3 } }, data), 'm.safetensors'), 'm.safetensors', '"n" is not a string');
  const notJson = handMade({}, data);
  notJson[9] = 0x7b; notJson[8] = 0x7b; // "{{"
  throwsNaming(() => parseSafetensors(notJson, 'j.safetensors'), 'j.safetensors', 'not valid UTF-8 JSON');
  throwsNaming(() => parseSafetensors(handMade([1, 2] as unknown as object, data), 'arr.safetensors'), 'not a JSON object');
  await readSafetensors(join(dir, 'absent.safetensors')).then(() => assert.unreachable('read a missing file'), (e: Error) => {
    assert.instance(e, SafetensorsError);
    assert.match(e.message, /absent\.safetensors: cannot read it \(no such file\)/);
  });
});

test('writing refuses bad input before creating a file', async () => {
  const path = join(dir, 'bad.safetensors');
  await writeSafetensors(path, [['x', { dtype: 'F32', shape: [1], data: [1] }], ['x', { dtype: 'F32', shape: [1], data: [1] }]])
    .then(() => assert.unreachable('duplicate names written'), (e: Error) => assert.match(e.message, /"x" is given twice/));
  await writeSafetensors(path, [['x', { dtype: 'F32', shape: [2, 2], data: [1, 2, 3] }]])
    .then(() => assert.unreachable('wrong length written'), (e: Error) => assert.match(e.message, /tensor "x": 3 values given, shape \[2, 2\] needs 4/));
  assert.equal((await readdir(dir)).filter((f) => f.startsWith('bad.safetensors')), []);
});

test('npy v1.0: header padded to 64 bytes, little-endian float32 rows, read back by a strict parser', async () => {
  const data = randomArray(6, 9);
  const bytes = encodeNpyFloat32(data, [2, 3]);
  assert.equal([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const headerLength = new DataView(bytes.buffer).getUint16(8, true);
  assert.is((10 + headerLength) % 64, 0);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
  assert.ok(header.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header);
  assert.ok(header.endsWith(' \n'));
  assert.is(bytes.length, 10 + headerLength + 24);
  assert.is(new DataView(bytes.buffer).getFloat32(10 + headerLength + 4 * 5, true), data[5]);
  const back = decodeNpyFloat32(bytes);
  assert.equal(back.shape, [2, 3]);
  assert.equal([...back.data], [...data]);
  assert.ok(new TextDecoder().decode(encodeNpyFloat32(new Float32Array(4), [4]).subarray(10, 70)).includes("'shape': (4,)"));
  assert.throws(() => encodeNpyFloat32(data, [4, 2]), /shape \(4, 2\) does not hold 6 values/);
  await writeFile(join(dir, 'x.npy'), bytes);
});

test.run();
