/** Images as PNG files: [C, H, W] floats in [0, 1] → 8-bit RGB, and grids of several images. */
import { encode } from "fast-png";
import { isLatin1, withITXt } from "./png-text.ts";

export interface ImageData3 {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Splits a [B, C, H, W] batch read back from the GPU into images. */
export function splitBatch(data: Float32Array, shape: readonly number[]): ImageData3[] {
  const [batch, channels, height, width] = shape as [number, number, number, number];
  const size = channels * height * width;
  return Array.from({ length: batch }, (_, b) => ({
    data: data.subarray(b * size, (b + 1) * size),
    channels,
    height,
    width,
  }));
}

/** Rounds to 8 bits as torchvision's save_image does: clamp(x·255 + 0.5). */
function toRgb8(img: ImageData3): Uint8Array {
  const { data, channels, height, width } = img;
  if (channels !== 3 && channels !== 1) throw new Error(`PNG: expected 1 or 3 channels, got ${channels}`);
  const plane = height * width;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = data[(channels === 3 ? c : 0) * plane + p]!;
      out[p * 3 + c] = Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5)));
    }
  }
  return out;
}

/** `text` becomes text chunks, such as A1111's `parameters`: tEXt for Latin-1, iTXt (UTF-8) otherwise. */
export function encodePng(img: ImageData3, text: Record<string, string> = {}): Uint8Array {
  const latin1 = Object.fromEntries(Object.entries(text).filter(([, v]) => isLatin1(v)));
  const png = encode({ width: img.width, height: img.height, data: toRgb8(img), channels: 3, depth: 8, text: latin1 });
  return Object.entries(text)
    .filter(([, v]) => !isLatin1(v))
    .reduce((bytes, [k, v]) => withITXt(bytes, k, v), png);
}

/** Tiles images (all the same size) into rows of `columns`, with a 2-pixel white gap. */
export function gridPng(images: ImageData3[], columns = images.length): Uint8Array {
  if (!images.length) throw new Error("gridPng: no images");
  const { height: h, width: w } = images[0]!;
  const gap = 2,
    rows = Math.ceil(images.length / columns);
  const W = columns * w + (columns - 1) * gap,
    H = rows * h + (rows - 1) * gap;
  const canvas = new Float32Array(3 * H * W).fill(1);
  images.forEach((img, i) => {
    if (img.height !== h || img.width !== w) throw new Error("gridPng: images differ in size");
    const rgb = toRgb8(img);
    const x0 = (i % columns) * (w + gap),
      y0 = Math.floor(i / columns) * (h + gap);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          canvas[c * H * W + (y0 + y) * W + x0 + x] = rgb[(y * w + x) * 3 + c]! / 255;
        }
  });
  return encodePng({ data: canvas, channels: 3, height: H, width: W });
}
