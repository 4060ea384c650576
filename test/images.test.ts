import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { crc32 } from '../src/train/checkpoint.js';
import {
  centerCrop, decodeImage, decodeImageFile, ImageError, resizeBilinear, resizeShorterSide, toModelInput,
  type FloatImage,
} from '../src/train/images.js';
import { assertClose } from './helpers.js';

const test = suite('images');
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'images-test-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const f32 = { atol: 0, rtol: 1e-7 }; // one float32 rounding of a value computed in float64

/** RGBA bytes of a w×h test pattern with every channel different. */
function pattern(w: number, h: number, alpha: (i: number) => number = () => 255): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data[4 * i] = (i * 37) % 256;
    data[4 * i + 1] = (i * 91 + 13) % 256;
    data[4 * i + 2] = 255 - ((i * 53) % 256);
    data[4 * i + 3] = alpha(i);
  }
  return data;
}

function pngjsEncode(w: number, h: number, data: Buffer, colorType: 0 | 2 | 4 | 6): Buffer {
  const png = new PNG({ width: w, height: h });
  data.copy(png.data);
  return PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true });
}

/** A PNG written by hand (filter 0 rows), for the colour types and depths pngjs does not write. */
function handPng(w: number, h: number, colorType: number, depth: number, rows: number[][], extra: [string, number[]][] = []): Uint8Array {
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, body.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(body, 8);
    view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([depth, colorType, 0, 0, 0], 8);
  const raw = Uint8Array.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    ...extra.map(([t, b]) => chunk(t, Uint8Array.from(b))), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)),
  ]);
}

async function file(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

test('PNG RGB (pngjs-encoded) decodes to exact v/255', async () => {
  const [w, h] = [5, 3];
  const rgba = pattern(w, h);
  const img = await decodeImageFile(await file('rgb.dat', pngjsEncode(w, h, rgba, 2))); // the extension does not matter
  assert.equal([img.width, img.height, img.channels], [5, 3, 3]);
  const want = new Float64Array(w * h * 3).map((_, k) => rgba[4 * Math.floor(k / 3) + (k % 3)] / 255);
  assertClose(img.data, want, f32, 'rgb pixels');
});

test('PNG with alpha is composited over white (default) or black', async () => {
  const [w, h] = [4, 4];
  const rgba = pattern(w, h, (i) => (i * 17) % 256);
  const bytes = pngjsEncode(w, h, rgba, 6);
  for (const background of ['white', 'black'] as const) {
    const img = await decodeImage(bytes, 'alpha.png', background === 'white' ? {} : { background });
    const bg = background === 'white' ? 1 : 0;
    const want = new Float64Array(w * h * 3).map((_, k) => {
      const p = Math.floor(k / 3);
      const a = rgba[4 * p + 3] / 255;
      return (rgba[4 * p + (k % 3)] / 255) * a + bg * (1 - a);
    });
    assert.is(img.channels, 3);
    assertClose(img.data, want, { atol: 1e-7, rtol: 1e-6 }, `alpha over ${background}`);
  }
});

test('PNG gray 8/16/1-bit, gray+alpha and palette with transparency', async () => {
  const g8 = await decodeImage(handPng(3, 2, 0, 8, [[0, 128, 255], [1, 2, 3]]), 'g8.png');
  assert.equal([g8.channels, g8.width, g8.height], [1, 3, 2]);
  assertClose(g8.data, [0, 128 / 255, 1, 1 / 255, 2 / 255, 3 / 255], f32, 'gray 8-bit');
  // 16-bit keeps its precision: 1/65535 would round to 0 through 8 bits.
  const g16 = await decodeImage(handPng(2, 1, 0, 16, [[0x00, 0x01, 0xff, 0xfe]]), 'g16.png');
  assertClose(g16.data, [1 / 65535, 65534 / 65535], f32, 'gray 16-bit');
  const g1 = await decodeImage(handPng(8, 1, 0, 1, [[0b10110001]]), 'g1.png');
  assertClose(g1.data, [1, 0, 1, 1, 0, 0, 0, 1], f32, 'gray 1-bit');
  const ga = await decodeImage(handPng(2, 1, 4, 8, [[200, 255, 200, 0]]), 'ga.png', { background: 'black' });
  assertClose(ga.data, [200 / 255, 0], f32, 'gray + alpha over black');
  // Palette: index 0 red opaque, 1 green half transparent, 2 blue (no tRNS entry: opaque).
  const pal = await decodeImage(handPng(3, 1, 3, 8, [[0, 1, 2]], [['PLTE', [255, 0, 0, 0, 255, 0, 0, 0, 255]], ['tRNS', [255, 128]]]), 'pal.png');
  const a = 128 / 255;
  assert.is(pal.channels, 3);
  assertClose(pal.data, [1, 0, 0, 1 - a, 1, 1 - a, 0, 0, 1], { atol: 1e-7, rtol: 1e-6 }, 'palette over white');
});

test('JPEG (jpeg-js-encoded, RGB) decodes within JPEG error; a gray JPEG has one channel', async () => {
  const [w, h] = [16, 16];
  const rgba = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) rgba.set([x * 15, y * 15, 128 + ((x + y) * 3), 255], 4 * (y * w + x)); // smooth
  }
  const bytes = jpeg.encode({ width: w, height: h, data: rgba }, 95).data;
  const img = await decodeImageFile(await file('photo.png', bytes)); // misnamed: detected by magic bytes
  assert.equal([img.width, img.height, img.channels], [16, 16, 3]);
  const want = new Float64Array(w * h * 3).map((_, k) => rgba[4 * Math.floor(k / 3) + (k % 3)] / 255);
  assertClose(img.data, want, { atol: 6 / 255, rtol: 0 }, 'jpeg q95 on a smooth image');
  // 16×8 horizontal gradient x·16, written by Pillow 9.4 as a one-component JPEG (quality 95).
  const grayJpeg = Buffer.from('/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoKCgoKBggLDAsKDAkKCgr/wAALCAAIABABAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/APzf/wCCbf8Ay4f8Br+gD/gm3/y4f8Br/9k=', 'base64');
  const gray = await decodeImage(grayJpeg, 'gray.jpg');
  assert.equal([gray.width, gray.height, gray.channels], [16, 8, 1]);
  assertClose(gray.data, new Float64Array(128).map((_, i) => ((i % 16) * 16) / 255), { atol: 4 / 255, rtol: 0 }, 'gray jpeg');
});

test('WebP (lossless, written by sharp) decodes to exact v/255; alpha composited like PNG', async () => {
  // The writer is the decoder's own library here (no independent WebP encoder is installed): this
  // checks the format's detection and the channel layout, which are ours.
  const { default: sharp } = await import('sharp');
  const [w, h] = [5, 3];
  const rgba = pattern(w, h, (i) => (i % 3 === 0 ? 255 : 64));
  const bytes = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).webp({ lossless: true }).toBuffer();
  const img = await decodeImage(bytes, 'pic.webp', { background: 'black' });
  assert.equal([img.width, img.height, img.channels], [5, 3, 3]);
  const want = new Float64Array(w * h * 3).map((_, k) => (rgba[4 * Math.floor(k / 3) + (k % 3)] / 255) * (rgba[4 * Math.floor(k / 3) + 3] / 255));
  assertClose(img.data, want, { atol: 1e-7, rtol: 1e-6 }, 'webp over black');
});

async function assertImageError(p: Promise<unknown> | (() => unknown), pattern: RegExp, what: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.instance(e, ImageError, `${what}: an ImageError (${(e as Error).message})`);
    assert.match((e as Error).message, pattern, `${what}: "${(e as Error).message}"`);
    return;
  }
  assert.unreachable(`${what}: expected an error matching ${pattern}`);
}

test('errors name the file: missing, directory, empty, not an image, truncated, corrupt', async () => {
  await assertImageError(decodeImageFile(join(dir, 'nope.png')), /nope\.png: no such file/, 'missing');
  const sub = join(dir, 'folder.png');
  await mkdir(sub);
  await assertImageError(decodeImageFile(sub), /folder\.png: is a directory/, 'directory');
  await assertImageError(decodeImageFile(await file('empty.jpg', '')), /empty\.jpg: the file is empty/, 'empty');
  await assertImageError(decodeImageFile(await file('notes.png', 'hello, world')), /notes\.png: not a PNG, JPEG or WebP image \(it starts with bytes 68 65 6c 6c 6f 2c 20 77\)/, 'text');
  await assertImageError(decodeImageFile(await file('anim.png', 'GIF89a\x01\x00\x01\x00')), /anim\.png: not a PNG, JPEG or WebP image \(it is a GIF image\)/, 'gif');

  const png = pngjsEncode(6, 5, pattern(6, 5), 2);
  for (const n of [8, 20, 40, png.length - 13, png.length - 1]) {
    await assertImageError(decodeImageFile(await file(`cut${n}.png`, png.subarray(0, n))), new RegExp(`cut${n}\\.png: truncated PNG`), `png cut at ${n}`);
  }
  const flipped = Buffer.from(png);
  flipped[45] ^= 0x40; // inside IDAT: the chunk CRC no longer matches
  await assertImageError(decodeImageFile(await file('flip.png', flipped)), /flip\.png: corrupt PNG/, 'png flipped byte');

  const jpg = jpeg.encode({ width: 8, height: 8, data: pattern(8, 8) }, 90).data;
  for (const n of [3, 30, 200, jpg.length - 20, jpg.length - 1]) {
    await assertImageError(decodeImageFile(await file(`cut${n}.jpg`, jpg.subarray(0, n))), new RegExp(`cut${n}\\.jpg: truncated JPEG`), `jpeg cut at ${n}`);
  }
  const badMarker = Buffer.from(jpg);
  badMarker[3] = 0x02; // the APP0 marker after SOI becomes an unknown marker
  await assertImageError(decodeImageFile(await file('bad.jpg', badMarker)), /bad\.jpg: corrupt JPEG \(.*Unsupported marker type 0x02/, 'jpeg bad marker');
});

const gray = (w: number, h: number, values: number[]): FloatImage => ({ width: w, height: h, channels: 1, data: Float32Array.from(values) });

test('resizeBilinear: hand-computed cases', () => {
  assertClose(resizeBilinear(gray(2, 1, [0, 1]), 4, 1).data, [0, 0.25, 0.75, 1], f32, 'enlarge 2 → 4');
  assertClose(resizeBilinear(gray(4, 1, [0, 1, 2, 3]), 2, 1, { antialias: false }).data, [0.5, 2.5], f32, 'halve, plain bilinear');
  // Antialiased halving: triangle of half-width 2 centred at 1 and 3 → weights .75 .75 .25 / 1.75.
  assertClose(resizeBilinear(gray(4, 1, [0, 1, 2, 3]), 2, 1).data, [1.25 / 1.75, 4 / 1.75], f32, 'halve, antialiased');
  // Vertical pass the same way: a 1×2 column enlarged to 1×4.
  assertClose(resizeBilinear(gray(1, 2, [1, 0]), 1, 4).data, [1, 0.75, 0.25, 0], f32, 'enlarge a column');
  // 2×2 → 3×3: sources at −1/6 (clamped), 1/2, 7/6 (clamped): the centre is the mean of all four.
  assertClose(resizeBilinear(gray(2, 2, [0, 1, 2, 3]), 3, 3).data, [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3], f32, '2×2 → 3×3');
  const constant = resizeBilinear(gray(37, 23, Array(37 * 23).fill(0.625)), 28, 28);
  assertClose(constant.data, Array(28 * 28).fill(0.625), { atol: 1e-7, rtol: 0 }, 'a constant image stays constant');
  const same = gray(2, 2, [1, 2, 3, 4]);
  const copy = resizeBilinear(same, 2, 2);
  assert.equal(Array.from(copy.data), [1, 2, 3, 4]);
  assert.ok(copy.data !== same.data, 'a copy, not the input array');
});

test('resizeBilinear agrees with Pillow BILINEAR (antialiased) on float images', () => {
  // Values printed by Pillow 9.4: Image.new('F', (w, h)).putdata([((i·7) % 13) / 12]).resize((nw, nh), BILINEAR).
  const input = (w: number, h: number) => gray(w, h, Array.from({ length: w * h }, (_, i) => ((i * 7) % 13) / 12));
  assertClose(resizeBilinear(input(7, 5), 3, 2).data, [0.4610389, 0.5325312, 0.4602273, 0.4745671, 0.5626114, 0.4456169], { atol: 1e-6, rtol: 0 }, '7×5 → 3×2');
  assertClose(resizeBilinear(input(4, 6), 9, 3).data, [
    0.1190476, 0.2162699, 0.4755291, 0.6746032, 0.452381, 0.2301587, 0.4292328, 0.6884921, 0.7857143,
    0.4166667, 0.4236111, 0.4421296, 0.4606481, 0.4791667, 0.4976852, 0.5162037, 0.5347222, 0.5416667,
    0.7142857, 0.6309524, 0.4087302, 0.2466931, 0.5059524, 0.7652116, 0.6031746, 0.3809524, 0.297619,
  ], { atol: 1e-6, rtol: 0 }, '4×6 → 9×3 (wider, shorter)');
});

test('resizeBilinear treats RGB channels independently', () => {
  const planes = [0, 1, 2].map((c) => Array.from({ length: 20 }, (_, i) => ((i * (c + 3)) % 7) / 7));
  const rgb: FloatImage = { width: 5, height: 4, channels: 3, data: Float32Array.from({ length: 60 }, (_, k) => planes[k % 3][Math.floor(k / 3)]) };
  const out = resizeBilinear(rgb, 3, 7);
  for (let c = 0; c < 3; c++) {
    const single = resizeBilinear(gray(5, 4, planes[c]), 3, 7).data;
    assertClose(Array.from({ length: 21 }, (_, p) => out.data[3 * p + c]), single, { atol: 0, rtol: 0 }, `channel ${c}`);
  }
});

test('centerCrop and resizeShorterSide follow torchvision', () => {
  const img = gray(5, 4, Array.from({ length: 20 }, (_, i) => i));
  assert.equal(Array.from(centerCrop(img, 3, 2).data), [6, 7, 8, 11, 12, 13]);
  // Offsets round half to even: (6 − 3) / 2 = 1.5 → 2; (8 − 3) / 2 = 2.5 → 2.
  assert.equal(Array.from(centerCrop(gray(6, 1, [0, 1, 2, 3, 4, 5]), 3, 1).data), [2, 3, 4]);
  assert.equal(Array.from(centerCrop(gray(8, 1, [0, 1, 2, 3, 4, 5, 6, 7]), 3, 1).data), [2, 3, 4]);
  const rgb: FloatImage = { width: 3, height: 3, channels: 3, data: Float32Array.from({ length: 27 }, (_, i) => i) };
  assert.equal(Array.from(centerCrop(rgb, 1, 1).data), [12, 13, 14]);
  assert.throws(() => centerCrop(img, 6, 2), (e: Error) => e instanceof ImageError && /6×2 does not fit in the 5×4 image; resize it first/.test(e.message));
  const landscape = resizeShorterSide({ width: 500, height: 375, channels: 1, data: new Float32Array(500 * 375) }, 256);
  assert.equal([landscape.width, landscape.height], [341, 256]);
  const portrait = resizeShorterSide({ width: 375, height: 500, channels: 1, data: new Float32Array(375 * 500) }, 256);
  assert.equal([portrait.width, portrait.height], [256, 341]);
  assert.throws(() => resizeShorterSide(img, 0), /whole numbers > 0/);
});

test('toModelInput: channel conversion, resize, inversion, normalization, planar layout', () => {
  // 2×1 RGB: pixels (0.2, 0.4, 0.6) and (1, 0.5, 0).
  const rgb: FloatImage = { width: 2, height: 1, channels: 3, data: Float32Array.from([0.2, 0.4, 0.6, 1, 0.5, 0]) };
  assertClose(toModelInput(rgb, { channels: 3, height: 1, width: 2, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] }),
    [(0.2 - 0.5) / 0.5, (1 - 0.5) / 0.5, (0.4 - 0.25) / 0.25, (0.5 - 0.25) / 0.25, 0.3, 0], { atol: 1e-6, rtol: 0 }, 'planar [C, H, W], per-channel mean/std');
  assertClose(toModelInput(rgb, { channels: 1, height: 1, width: 2 }),
    [0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6, 0.299 + 0.587 * 0.5], { atol: 1e-6, rtol: 0 }, 'RGB → gray luma');
  const g = gray(2, 1, [0.25, 1]);
  assertClose(toModelInput(g, { channels: 3, height: 1, width: 2, mean: 0.5, std: 0.5 }), [-0.5, 1, -0.5, 1, -0.5, 1], { atol: 1e-7, rtol: 0 }, 'gray → RGB');
  assertClose(toModelInput(g, { channels: 1, height: 1, width: 2, invert: true }), [0.75, 0], { atol: 1e-7, rtol: 0 }, 'inverted');
  // An MNIST-style input from a larger drawing: a white 28×28 square in the middle of a 56×56 black canvas.
  const canvas = gray(56, 56, Array.from({ length: 56 * 56 }, (_, i) => (Math.floor(i / 56) >= 14 && Math.floor(i / 56) < 42 && i % 56 >= 14 && i % 56 < 42 ? 1 : 0)));
  const digit = toModelInput(canvas, { channels: 1, height: 28, width: 28 });
  assert.is(digit.length, 28 * 28);
  assert.is(digit[14 * 28 + 14], 1, 'inside the square');
  assert.is(digit[3 * 28 + 3], 0, 'outside');
  // Output column 6 is centred on input 13 (taps 11–14 weighted .25 .75 .75 .25, /2), column 7 on 15.
  assertClose([digit[14 * 28 + 5], digit[14 * 28 + 6], digit[14 * 28 + 7], digit[14 * 28 + 8]], [0, 0.125, 0.875, 1], { atol: 1e-7, rtol: 0 }, 'the antialiased edge');
  assert.throws(() => toModelInput(rgb, { channels: 4, height: 1, width: 2 }), /only 1 \(gray\) and 3 \(RGB\)/);
  assert.throws(() => toModelInput(rgb, { channels: 3, height: 1, width: 2, mean: [0.1, 0.2] }), /mean has 2 values for 3 channels/);
  assert.throws(() => toModelInput(rgb, { channels: 3, height: 1, width: 2, std: 0 }), /std > 0/);
});

test.run();
