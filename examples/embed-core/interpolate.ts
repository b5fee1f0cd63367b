/**
 * Embedding the core in another tool, with TextCraftor's quality knob: load a model and a tuned text
 * encoder, sample one prompt at several interpolation weights w (c = w·T*(p) + (1−w)·T(p), the tuned
 * encoder used for the last 60 % of the steps as the paper evaluates) and write the images side by side.
 *
 *   bun run cli train                                                   # a tuned encoder for the bundled model
 *   bun examples/embed-core/interpolate.ts "red apple" runs/textcraftor/text_encoder strip.png [MODEL]
 *
 * Only @textcraftor/core's public exports are used; MODEL (a diffusers folder or a single-file SD 1.x
 * checkpoint) defaults to the bundled tiny model.
 */
import {
  controlledEmbeddings,
  gridPng,
  initRuntime,
  loadStableDiffusion,
  loadTextEncoder,
  splitBatch,
  textToImage,
  writeFileAtomic,
  type ImageData3,
  type StableDiffusion,
  type TextEncoderLike,
} from "@textcraftor/core";
import { TINY_MODEL } from "@textcraftor/tiny-model";

export interface StripOptions {
  weights?: number[];
  seed?: number;
  steps?: number;
  guidanceScale?: number;
  size?: number;
}

/** One image per weight, same seed and noise, so the only difference is how far the embeddings move. */
export async function interpolationStrip(
  sd: StableDiffusion,
  tuned: TextEncoderLike,
  prompt: string,
  o: StripOptions = {},
): Promise<ImageData3[]> {
  const { weights = [0, 0.25, 0.5, 0.75, 1], seed = 0, steps = 25, guidanceScale = 7.5, size = 512 } = o;
  const frames: ImageData3[] = [];
  for (const w of weights) {
    const control = controlledEmbeddings(sd, [prompt], "", {
      original: sd.textEncoder,
      mix: [
        { encoder: sd.textEncoder, weight: 1 - w },
        { encoder: tuned, weight: w },
      ],
      lastSteps: Math.round(0.6 * steps),
    });
    const images = textToImage(sd, {
      prompts: [prompt],
      seed,
      steps,
      guidanceScale,
      height: size,
      width: size,
      embeddingsAt: control.embeddingsAt,
    });
    frames.push(...splitBatch(await images.toArray(), images.shape));
    images.dispose();
    control.dispose();
  }
  return frames;
}

if (import.meta.main) {
  const [prompt, tunedPath, out = "strip.png", model = TINY_MODEL] = process.argv.slice(2);
  if (!prompt || !tunedPath) {
    console.error("usage: bun examples/embed-core/interpolate.ts PROMPT TUNED_TEXT_ENCODER [OUT.png] [MODEL]");
    process.exit(2);
  }
  await initRuntime();
  const sd = await loadStableDiffusion(model);
  const tuned = await loadTextEncoder(tunedPath, sd.source.configs.textEncoder);
  // The bundled model's sample size and settings; an SD 1.5 checkpoint's vae config says 512.
  const size = (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512;
  const bundled = model === TINY_MODEL;
  const frames = await interpolationStrip(sd, tuned, prompt, bundled ? { size, steps: 6, guidanceScale: 5 } : { size });
  await writeFileAtomic(out, gridPng(frames, frames.length));
  console.log(`wrote ${out}: "${prompt}" at w = 0, 0.25, 0.5, 0.75, 1 (left to right)`);
  tuned.dispose();
  sd.dispose();
}
