/**
 * Images [B, 3, H, W] in [0, 1] to a CLIP image tower's input, differentiably (reward gradients flow back
 * into the pixels). TextCraftor's `standard_process` is the default: an adaptive average pool to the model's
 * size. The resize + center-crop variant follows CLIP's own preprocessing (short side to `size`, center
 * crop) with an antialiased bilinear filter where CLIP uses bicubic.
 */
import { Tensor, adaptiveAvgPool2d, matmul, transpose } from "@textcraftor/core";

/** OpenAI CLIP's normalisation, which every CLIP-based reward here (and open_clip's OPENAI_DATASET_*) uses. */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export type PreprocessMode = "pool" | "resize-crop";
export const PREPROCESS_MODES: readonly PreprocessMode[] = ["pool", "resize-crop"];

/** (x − mean) / std per channel. */
export function clipNormalize(images: Tensor): Tensor {
  checkImages(images);
  return images.sub(Tensor.from(CLIP_MEAN, [1, 3, 1, 1])).div(Tensor.from(CLIP_STD, [1, 3, 1, 1]));
}

/** TextCraftor's default: adaptive_avg_pool2d to size×size, then CLIP's mean/std. */
export function poolToClip(images: Tensor, size = 224): Tensor {
  checkImages(images);
  return clipNormalize(adaptiveAvgPool2d(images, size));
}

/**
 * torchvision's Resize(size) + CenterCrop(size) with bilinear antialiasing, then CLIP's mean/std. Resampling
 * is linear in the pixels, so it runs as two fixed matrices (one per axis) applied with matmul, and its
 * gradient is their transpose for free; the crop is folded in by keeping only the matrix rows it selects.
 */
export function resizeCropToClip(images: Tensor, size = 224): Tensor {
  checkImages(images);
  const [, , height, width] = images.shape as [number, number, number, number];
  const short = Math.min(height, width);
  // torchvision scales the long side to int(size · long / short).
  const resized = (side: number) => (side === short ? size : Math.trunc((size * side) / short));
  const rows = (side: number) => Tensor.from(resampleMatrix(side, resized(side), size), [side, size]);
  const alongW = matmul(images, rows(width));
  const alongH = matmul(transpose(alongW, 2, 3), rows(height));
  return clipNormalize(transpose(alongH, 2, 3));
}

export function preprocessForClip(images: Tensor, size: number, mode: PreprocessMode = "pool"): Tensor {
  return mode === "pool" ? poolToClip(images, size) : resizeCropToClip(images, size);
}

/**
 * The [inSize, crop] matrix M with (x · M)[j] = the antialiased bilinear resize of x from inSize to outSize
 * samples (PIL's and torch's `antialias=True` triangle filter, widened by the scale when downsampling),
 * evaluated at the `crop` center samples torchvision's CenterCrop keeps.
 */
export function resampleMatrix(inSize: number, outSize: number, crop: number): Float32Array {
  if (crop > outSize) throw new Error(`resampleMatrix: cannot crop ${crop} samples out of ${outSize}`);
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const start = roundHalfEven((outSize - crop) / 2);
  const m = new Float32Array(inSize * crop);
  for (let j = 0; j < crop; j++) {
    const center = (start + j + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const weights = Array.from({ length: hi - lo }, (_, k) =>
      Math.max(0, 1 - Math.abs((lo + k - center + 0.5) / support)),
    );
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, k) => {
      m[(lo + k) * crop + j] = w / total;
    });
  }
  return m;
}

/** Python's round(), which torchvision's CenterCrop uses for its offset. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Rewards take RGB images [B, 3, H, W] in [0, 1]. */
export function checkImages(images: Tensor): void {
  if (images.ndim !== 4 || images.shape[1] !== 3)
    throw new Error(`rewards: expected RGB images [B, 3, H, W] in [0, 1], got [${images.shape}]`);
}
