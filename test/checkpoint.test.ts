import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import {
  CheckpointError, crc32, nodeFileSystem, parseCheckpoint, readCheckpoint, writeCheckpoint,
  type AtomicFileSystem, type CheckpointContents,
} from '../src/train/checkpoint.js';
import { randomArray } from './helpers.js';

const test = suite('checkpoint');
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'ckpt-test-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

function specialValues(): Float32Array {
  const bits = new Uint32Array([
    0x7fc00000, 0x7fc00001, 0xffc12345, 0x7f800001, // NaNs, one signalling, with payloads
    0x80000000, 0x00000000, // −0, +0
    0x00000001, 0x007fffff, 0x80000001, // denormals
    0x7f800000, 0xff800000, 0x7f7fffff, 0x00800000, // ±Infinity, largest, smallest normal
  ]);
  return new Float32Array(bits.buffer);
}

function sample(): CheckpointContents {
  const backing = randomArray(101, 3);
  const tensors = new Map<string, Float32Array>([
    ['features.conv0.weight', randomArray(3 * 3 * 3 * 24, 1)],
    ['features.norm0.running_var', specialValues()],
    ['empty', new Float32Array(0)],
    ['a view at byte offset 4', backing.subarray(1, 30)],
    ['optimizer.momentum.features.conv0.weight', randomArray(7, 2)],
  ]);
  const header = {
    format: 'test', epoch: 3, step: 1234, rng: [123456789, 42, 0xffffffff],
    model: { preset: 'densenet-bc-100-12', growthRate: 12 },
    metrics: [{ loss: 2.1, acc: 0.31 }, { loss: NaN, acc: -0 }, { loss: Infinity, acc: -Infinity }],
    note: 'ünïcödé ✓',
  };
  return { header, tensors };
}

function assertSameContents(got: CheckpointContents, want: CheckpointContents): void {
  assert.equal(got.header, want.header); // uvu's deep equality distinguishes NaN, −0
  assert.equal([...got.tensors.keys()], [...want.tensors.keys()], 'tensor names in order');
  for (const [name, a] of want.tensors) {
    const b = got.tensors.get(name)!;
    assert.ok(b instanceof Float32Array, `${name} is a Float32Array`);
    assert.equal(Array.from(bitsOf(b)), Array.from(bitsOf(a)), `${name} bit for bit`);
  }
}

async function assertRejects(p: Promise<unknown>, pattern: RegExp, what: string): Promise<CheckpointError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, CheckpointError, `${what}: a CheckpointError`);
    assert.match((e as Error).message, pattern, `${what}: message "${(e as Error).message}"`);
    return e as CheckpointError;
  }
  assert.unreachable(`${what}: expected an error matching ${pattern}`);
  throw new Error('unreachable');
}

test('crc32 matches the standard check value and zlib, also when continued', () => {
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
  const z = (zlib as unknown as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;
  const data = new Uint8Array(randomArray(300, 9).buffer);
  for (const n of [1, 7, 8, 9, 63, 1200]) {
    const bytes = data.subarray(3, 3 + n);
    const split = Math.floor(n / 3);
    const continued = crc32(bytes.subarray(split), crc32(bytes.subarray(0, split)));
    assert.is(continued, crc32(bytes), `continued crc of ${n} bytes`);
    if (z) assert.is(crc32(bytes), z(bytes), `zlib.crc32 of ${n} bytes`);
  }
});

test('round trip: header (NaN, ±Infinity, −0 included) and every tensor bit for bit', async () => {
  const path = join(dir, 'roundtrip.ckpt');
  const c = sample();
  await writeCheckpoint(path, c);
  assertSameContents(await readCheckpoint(path), c);
  const bytes = await readFile(path);
  assert.is(bytes.subarray(0, 8).toString('latin1'), 'DNWGSLCK');
  assert.is(bytes.readUInt32LE(8), 1, 'version');
  const json = JSON.parse(bytes.subarray(16, 16 + bytes.readUInt32LE(12)).toString('utf8'));
  assert.equal(json.tensors[1], { name: 'features.norm0.running_var', length: 13, byteOffset: 648 * 4 });
  assert.is(bytes.length % 4, 0, 'payload and trailer are 4-byte aligned');
  assert.equal(await readdir(dir), ['roundtrip.ckpt'], 'no temporary file left behind');
});

test('an existing checkpoint is replaced by a new write', async () => {
  const path = join(dir, 'replace.ckpt');
  await writeCheckpoint(path, sample());
  const second: CheckpointContents = { header: { epoch: 4 }, tensors: new Map([['w', randomArray(5, 11)]]) };
  await writeCheckpoint(path, second);
  assertSameContents(await readCheckpoint(path), second);
});

test('truncation at several points is reported as truncation', async () => {
  const good = await readFile(await written('trunc-src.ckpt'));
  const cuts: [number, RegExp][] = [
    [0, /truncated: 0 bytes/],
    [5, /truncated: 5 bytes/],
    [12, /truncated: 12 bytes/],
    [40, /truncated or corrupt: the 40-byte file ends inside its \d+-byte header/],
    [good.length - 1000, new RegExp(`truncated: ${good.length - 1000} of ${good.length} bytes`)],
    [good.length - 4, new RegExp(`truncated: ${good.length - 4} of ${good.length} bytes`)],
    [good.length - 1, new RegExp(`truncated: ${good.length - 1} of ${good.length} bytes`)],
  ];
  for (const [n, pattern] of cuts) {
    const path = join(dir, `cut-${n}.ckpt`);
    await writeFile(path, good.subarray(0, n));
    const e = await assertRejects(readCheckpoint(path), pattern, `cut at ${n}`);
    assert.ok(e.message.includes(path), 'the message names the file');
  }
});

test('a flipped byte or bit anywhere is caught', async () => {
  const c: CheckpointContents = { header: { epoch: 1, lr: 0.1 }, tensors: new Map([['a', randomArray(9, 5)], ['b', randomArray(4, 6)]]) };
  const good = await bytesOf(c);
  assertSameContents(parseCheckpoint(good, 'mem'), c);
  for (const mask of [0xff, 0x01, 0x80]) {
    for (let i = 0; i < good.length; i++) {
      const bad = Uint8Array.from(good);
      bad[i] ^= mask;
      let message = '';
      try {
        parseCheckpoint(bad, 'mem');
      } catch (e) {
        assert.instance(e, CheckpointError);
        message = (e as Error).message;
      }
      // The magic is checked first; a damaged header length may make the header run past the end.
      const expected = i < 8 ? /not a densenet-wgsl checkpoint/ : i >= 12 && i < 16 ? /corrupt/ : /checksum mismatch: the file is corrupt/;
      assert.match(message, expected, `byte ${i} ^ ${mask}: "${message}"`);
    }
  }
});

test('a file that is not a checkpoint, a missing file, an unsupported version', async () => {
  const png = join(dir, 'image.png');
  await writeFile(png, Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  await assertRejects(readCheckpoint(png), /image\.png: not a densenet-wgsl checkpoint/, 'png');
  await assertRejects(readCheckpoint(join(dir, 'nothing-here.ckpt')), /nothing-here\.ckpt: no such file/, 'missing');
  await assertRejects(readCheckpoint(dir), /it is a directory/, 'directory');
  const bytes = await bytesOf({ header: {}, tensors: new Map() });
  new DataView(bytes.buffer).setUint32(8, 2, true);
  new DataView(bytes.buffer).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  assert.throws(() => parseCheckpoint(bytes, 'v2'), /version 2 is not supported \(this build reads version 1\)/);
  const extra = new Uint8Array([...(await bytesOf({ header: {}, tensors: new Map() })), 1, 2, 3, 4]);
  assert.throws(() => parseCheckpoint(extra, 'extra'), /4 unexpected bytes after the end/);
});

/** Node's file system, with one operation made to fail the way a full disk or a broken mount would. */
function failing(op: 'write' | 'sync' | 'rename', after = 0): AtomicFileSystem {
  const err = (what: string) => Object.assign(new Error(`${what}: ENOSPC: no space left on device (injected)`), { code: 'ENOSPC' });
  return {
    ...nodeFileSystem,
    async create(path) {
      const file = await nodeFileSystem.create(path);
      let writes = 0;
      return {
        write: async (b) => {
          if (op === 'write' && writes++ >= after) throw err('write');
          await file.write(b);
        },
        sync: async () => {
          if (op === 'sync') throw err('fsync');
          await file.sync();
        },
        close: () => file.close(),
      };
    },
    rename: async (from, to) => {
      if (op === 'rename') throw err('rename');
      await nodeFileSystem.rename(from, to);
    },
  };
}

test('a failed write leaves the existing checkpoint intact and removes the temporary file', async () => {
  const sub = join(dir, 'failing');
  await mkdir(sub);
  const path = join(sub, 'model.ckpt');
  const original = sample();
  await writeCheckpoint(path, original);
  const before = await readFile(path);
  const next: CheckpointContents = { header: { epoch: 99 }, tensors: new Map([['x', randomArray(1000, 4)], ['y', randomArray(10, 5)]]) };
  for (const [op, after] of [['write', 0], ['write', 2], ['sync', 0], ['rename', 0]] as const) {
    const e = await assertRejects(writeCheckpoint(path, next, { fileSystem: failing(op, after) }), /ENOSPC/, `${op} failure`);
    assert.ok(e.message.startsWith(`cannot write checkpoint ${path}:`), e.message);
    assert.equal(await readdir(sub), ['model.ckpt'], `${op} failure: only the old checkpoint remains`);
    assert.ok((await readFile(path)).equals(before), `${op} failure: old checkpoint byte for byte`);
  }
  // A bad tensor is found while writing, after the temporary file exists.
  const bad = { header: {}, tensors: new Map([['ok', randomArray(3, 1)], ['bad', [1, 2] as unknown as Float32Array]]) };
  await assertRejects(writeCheckpoint(path, bad), /tensor "bad" is not a Float32Array/, 'bad tensor');
  assert.equal(await readdir(sub), ['model.ckpt'], 'bad tensor: no temporary file');
  assertSameContents(await readCheckpoint(path), original);
});

test('real file-system failures: the target is a directory, the directory does not exist', async () => {
  const target = join(dir, 'a-directory');
  await mkdir(target);
  await writeFile(join(target, 'keep'), 'x');
  await assertRejects(writeCheckpoint(target, sample()), /cannot write checkpoint .*a-directory: .*(EISDIR|ENOTEMPTY|EEXIST)/, 'directory target');
  assert.equal(await readdir(target), ['keep']);
  assert.not.ok((await readdir(dir)).some((f) => f.includes('.tmp-')), 'no temporary file next to it');
  await assertRejects(writeCheckpoint(join(dir, 'no', 'such', 'dir', 'x.ckpt'), sample()), /ENOENT/, 'missing directory');
});

test('a 4-million-element checkpoint round-trips', async () => {
  const big = randomArray(4_000_000, 8);
  const path = join(dir, 'big.ckpt');
  const c = { header: { step: 1 }, tensors: new Map([['big', big]]) };
  await writeCheckpoint(path, c);
  const got = (await readCheckpoint(path)).tensors.get('big')!;
  assert.ok(Buffer.from(got.buffer).equals(Buffer.from(big.buffer)), 'bit for bit');
  await rm(path);
});

let counter = 0;
async function written(name: string): Promise<string> {
  const path = join(dir, `${name}-${counter++}`);
  await writeCheckpoint(path, sample());
  return path;
}

/** The bytes writeCheckpoint would produce, via a file system that records instead of writing. */
async function bytesOf(c: CheckpointContents): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const memory: AtomicFileSystem = {
    create: async () => ({ write: async (b) => void chunks.push(Uint8Array.from(b)), sync: async () => {}, close: async () => {} }),
    rename: async () => {},
    remove: async () => {},
    syncDirectory: async () => {},
  };
  await writeCheckpoint('mem', c, { fileSystem: memory });
  return Uint8Array.from(Buffer.concat(chunks));
}

test.run();
