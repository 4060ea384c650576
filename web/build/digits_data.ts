// Writes the built-in MNIST digits for the training page (run by scripts/web.mjs under Node): the
// same 8,000/2,000 split as `densenet-wgsl train` (seed 0), as bytes the page reads with one fetch.
//
// Layout: u32 little-endian L, L bytes of JSON { shape, train, test, mean, std }, padding to 4, then
// train images, test images (u8, value·255 rounded, NCHW), train labels, test labels (u8).

import { writeFileSync } from 'node:fs';
import { loadMnist } from '../../src/train/data/mnist.js';

const out = process.argv[2];
if (!out) throw new Error('usage: digits_data OUT.bin');
const split = loadMnist({ seed: 0 });
const json = new TextEncoder().encode(JSON.stringify({
  shape: split.train.shape, train: split.train.labels.length, test: split.test.labels.length, mean: split.mean, std: split.std,
}));
const start = (4 + json.length + 3) & ~3;
const pixels = split.train.images.length + split.test.images.length;
const bytes = new Uint8Array(start + pixels + split.train.labels.length + split.test.labels.length);
new DataView(bytes.buffer).setUint32(0, json.length, true);
bytes.set(json, 4);
let at = start;
for (const a of [split.train.images, split.test.images]) for (let i = 0; i < a.length; i++) bytes[at++] = Math.round(a[i] * 255);
for (const l of [split.train.labels, split.test.labels]) for (let i = 0; i < l.length; i++) bytes[at++] = l[i];
writeFileSync(out, bytes);
console.log(`wrote ${out}: ${split.train.labels.length} train and ${split.test.labels.length} test digits (${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
