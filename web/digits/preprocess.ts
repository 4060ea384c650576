// A drawing as MNIST presents digits: the stroke's bounding box scaled to fit 20×20 (aspect kept),
// placed in a 28×28 black image so that its centre of mass is the centre. Values in [0, 1].

/** 28·28 grey values of the white-on-black drawing on `pad`, or undefined when nothing is drawn. */
export function digitFromCanvas(pad: HTMLCanvasElement): Float32Array | undefined {
  const { width, height } = pad;
  const pixels = pad.getContext('2d')!.getImageData(0, 0, width, height).data;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pixels[4 * (y * width + x)] > 20) {
        if (x < x0) x0 = x; if (x > x1) x1 = x;
        if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return undefined;
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const scale = 20 / Math.max(w, h);
  const small = document.createElement('canvas');
  small.width = 28; small.height = 28;
  const ctx = small.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 28, 28);
  ctx.imageSmoothingQuality = 'high';
  const dw = w * scale, dh = h * scale;
  ctx.drawImage(pad, x0, y0, w, h, (28 - dw) / 2, (28 - dh) / 2, dw, dh);
  const grey = new Float32Array(28 * 28);
  const data = ctx.getImageData(0, 0, 28, 28).data;
  let mass = 0, mx = 0, my = 0;
  for (let i = 0; i < grey.length; i++) {
    grey[i] = data[4 * i] / 255;
    mass += grey[i]; mx += grey[i] * (i % 28); my += grey[i] * Math.floor(i / 28);
  }
  // Shift by whole pixels so the centre of mass lands on (13.5, 13.5), as in MNIST.
  const sx = Math.round(13.5 - mx / mass), sy = Math.round(13.5 - my / mass);
  const out = new Float32Array(28 * 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const fx = x - sx, fy = y - sy;
      if (fx >= 0 && fx < 28 && fy >= 0 && fy < 28) out[y * 28 + x] = grey[fy * 28 + fx];
    }
  }
  return out;
}

/** Draws 28·28 grey values onto a 28×28 canvas. */
export function showDigit(canvas: HTMLCanvasElement, grey: Float32Array): void {
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < grey.length; i++) {
    const v = Math.round(255 * grey[i]);
    image.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}
