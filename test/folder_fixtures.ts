// Generated image folders for the folder-dataset tests: three classes of pictures a tiny model
// tells apart in a few epochs (a disc, a square, horizontal stripes, each in its own hue, at random
// places and sizes over a noisy background), written as JPEG and PNG by sharp.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { seededRandom } from './helpers.js';

export const SHAPE_CLASSES = ['disc', 'square', 'stripes'] as const;

/** One w×w RGB picture of `kind` (raw bytes, interleaved). */
export function shapePicture(kind: (typeof SHAPE_CLASSES)[number], w: number, rng: () => number): Uint8Array {
  const data = new Uint8Array(w * w * 3);
  const cx = w * (0.3 + 0.4 * rng());
  const cy = w * (0.3 + 0.4 * rng());
  const r = w * (0.18 + 0.12 * rng());
  const hue = kind === 'disc' ? [220, 40, 40] : kind === 'square' ? [40, 200, 60] : [50, 70, 230];
  const period = 3 + Math.floor(3 * rng());
  for (let y = 0; y < w; y++) {
    for (let x = 0; x < w; x++) {
      const inside = kind === 'disc' ? (x - cx) ** 2 + (y - cy) ** 2 < r * r
        : kind === 'square' ? Math.abs(x - cx) < r && Math.abs(y - cy) < r
          : Math.floor(y / period) % 2 === 0;
      for (let c = 0; c < 3; c++) {
        const noise = 30 * rng();
        data[(y * w + x) * 3 + c] = Math.min(255, Math.round(inside ? hue[c] + noise : 60 + noise));
      }
    }
  }
  return data;
}

/** Writes `count` pictures of each class into dir/<class>/, alternating JPEG and PNG. Returns the file paths. */
export async function writeShapeFolder(dir: string, count: number, seed: number, size = 24): Promise<string[]> {
  const rng = seededRandom(seed);
  const paths: string[] = [];
  for (const kind of SHAPE_CLASSES) {
    await mkdir(join(dir, kind), { recursive: true });
    for (let i = 0; i < count; i++) {
      const pixels = sharp(shapePicture(kind, size, rng), { raw: { width: size, height: size, channels: 3 } });
      const path = join(dir, kind, `${kind}-${String(i).padStart(3, '0')}.${i % 2 ? 'png' : 'jpg'}`);
      await writeFile(path, i % 2 ? await pixels.png().toBuffer() : await pixels.jpeg({ quality: 90 }).toBuffer());
      paths.push(path);
    }
  }
  return paths;
}
