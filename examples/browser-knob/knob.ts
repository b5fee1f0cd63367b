/**
 * The quality knob's one frame, shared by the page and its test (which makes the same frames under Bun): the
 * prompt sampled with c = w·T*(p) + (1−w)·T(p) for the last 60 % of the steps, as `generate --tuned-weight w`.
 */
import {
  controlledEmbeddings,
  splitBatch,
  textToImage,
  type ImageData3,
  type StableDiffusion,
  type TextEncoderLike,
} from "@textcraftor/core";

export interface KnobSettings {
  seed: number;
  steps: number;
  guidanceScale: number;
}

/** The bundled model's generate defaults (TINY_TRAIN_SETTINGS: 6 steps, guidance 5). */
export const TINY_KNOB: KnobSettings = { seed: 0, steps: 6, guidanceScale: 5 };

export async function knobFrame(
  sd: StableDiffusion,
  tuned: TextEncoderLike,
  prompt: string,
  w: number,
  { seed, steps, guidanceScale }: KnobSettings,
): Promise<ImageData3> {
  if (!Number.isFinite(w)) throw new Error(`the tuned weight must be a finite number (got ${w})`);
  const size = (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512;
  const control = controlledEmbeddings(sd, [prompt], "", {
    original: sd.textEncoder,
    mix: [
      { encoder: sd.textEncoder, weight: 1 - w },
      { encoder: tuned, weight: w },
    ],
    lastSteps: Math.round(0.6 * steps),
  });
  try {
    const images = textToImage(sd, {
      prompts: [prompt],
      seed,
      steps,
      guidanceScale,
      height: size,
      width: size,
      embeddingsAt: control.embeddingsAt,
    });
    const data = await images.toArray();
    images.dispose();
    return splitBatch(data, [1, 3, size, size])[0]!;
  } finally {
    control.dispose();
  }
}

/** RGBA bytes for a canvas, rounded as the PNGs `generate` writes are (clamp(x·255 + 0.5)). */
export function toRgba({ data, height, width }: ImageData3): Uint8ClampedArray<ArrayBuffer> {
  const plane = height * width;
  const out = new Uint8ClampedArray(plane * 4);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = Math.floor(data[c * plane + p]! * 255 + 0.5);
    out[p * 4 + 3] = 255;
  }
  return out;
}
