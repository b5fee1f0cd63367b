/** Text-to-image with Stable Diffusion: prompts (+ negative prompt) → images in [0, 1], deterministic per seed. */
import type { StableDiffusion } from "../models/stable-diffusion.ts";
import { randn } from "../ops/random.ts";
import { createSampler, type SamplerName } from "../schedulers/registry.ts";
import type { Spacing } from "../schedulers/timesteps.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, scope } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { sampleLatents } from "./denoise.ts";

export interface TextEncoderLike {
  forward(ids: ArrayLike<number>): Tensor;
}

/** [2B, 77, D]: the negative prompt's embedding repeated B times, then each prompt's (diffusers' CFG order). */
export function encodePrompts(
  sd: Pick<StableDiffusion, "tokenizer">,
  encoder: TextEncoderLike,
  prompts: string[],
  negativePrompt = "",
): Tensor {
  const ids = sd.tokenizer.callInt32([...prompts.map(() => negativePrompt), ...prompts]);
  return encoder.forward(ids);
}

export interface TextToImageOptions {
  prompts: string[];
  negativePrompt?: string;
  seed?: number;
  steps?: number;
  guidanceScale?: number;
  height?: number;
  width?: number;
  /** A sampler of the registry (`samplerNames`): DDIM (deterministic, η = 0) by default, on the model's noise schedule. */
  scheduler?: SamplerName;
  /** Timestep spacing; unset, the model's scheduler config decides ("textcraftor" is DDIM's only). */
  spacing?: Spacing;
  /**
   * Text embeddings per step instead of the model's own encoder: the inference controls (hybrid encoders,
   * interpolation, style mixing) are schedules of this kind. Called once per step; the result is freed after it.
   */
  embeddingsAt?: (stepIndex: number, totalSteps: number) => Tensor;
  onStep?: (step: number, total: number) => void;
  /**
   * Index of prompts[0] in the seed's noise stream (default 0). Each image's initial noise is its own slice of
   * the stream, so a batch cut from a longer prompt list (eval's --batch-size) gets exactly the noise each of its
   * images gets when the whole list is sampled at once: results do not depend on how prompts are batched. So do
   * an ancestral sampler's per-step noises. Seeds below 2³² keep every image's and step's noise distinct.
   */
  firstSample?: number;
}

/** Returns images [B, 3, H, W] in [0, 1], owned by the caller (dispose them). */
export function textToImage(sd: StableDiffusion, o: TextToImageOptions): Tensor {
  const steps = o.steps ?? 25,
    height = o.height ?? 512,
    width = o.width ?? 512;
  const factor = 2 ** (sd.vae.config.blockOutChannels.length - 1);
  if (height % factor !== 0 || width % factor !== 0)
    throw new Error(`height and width must be multiples of ${factor} (got ${height}×${width})`);
  const sampler = createSampler(o.scheduler ?? "ddim", sd.schedulerConfig, { steps, spacing: o.spacing });
  // The scope frees everything but the images, so a caller outside any scope (a tool embedding the core)
  // leaks nothing.
  return noGrad(() =>
    scope(() => {
      const fixed = o.embeddingsAt ? null : encodePrompts(sd, sd.textEncoder, o.prompts, o.negativePrompt);
      const shape = [o.prompts.length, sd.unet.config.inChannels, height / factor, width / factor];
      const firstSample = o.firstSample ?? 0;
      if (!Number.isInteger(firstSample) || firstSample < 0)
        throw new Error(`firstSample must be a non-negative integer (got ${firstSample})`);
      const perImage = shape[1]! * shape[2]! * shape[3]!,
        seed = o.seed ?? 0;
      const latents = sampleLatents(sd.unet, sampler, {
        shape,
        seed,
        latents: randn(shape, seed, firstSample * perImage).mul(sampler.initNoiseSigma),
        // An ancestral sampler's noise for step i: its own stream (the seed's high word is i + 1), sliced per image
        // like the initial noise, so it neither depends on the batch nor repeats another image's initial noise.
        stepNoise: (i, stepShape) => randn(stepShape, seed + (i + 1) * 2 ** 32, firstSample * perImage),
        guidanceScale: o.guidanceScale ?? 7.5,
        // A per-step embedding is created inside that step's scope and freed with it.
        embeddingsAt: (i) => fixed ?? o.embeddingsAt!(i, steps),
        onStep: o.onStep,
      });
      return keep(sd.vae.decodeToImage(latents));
    }),
  );
}
