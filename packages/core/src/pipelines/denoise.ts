/**
 * The pieces of a denoising loop shared by sampling and TextCraftor training: classifier-free guidance with
 * uncond and cond in one UNet batch, and the loop that hands each guided ε̂ to the sampler's run.
 */
import { concat, chunk } from "../ops/shape.ts";
import { randn } from "../ops/random.ts";
import type { Sampler, StepNoise } from "../schedulers/sampler.ts";
import { noGrad } from "../tensor/autograd.ts";
import { scope } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** What the loop needs from a UNet (UNet2DConditionModel satisfies it). */
export interface NoisePredictor {
  forward(sample: Tensor, timesteps: number | number[], encoderHiddenStates: Tensor): Tensor;
}

/**
 * ε̂ = ε_u + w·(ε_c − ε_u). `embeddings` is [2B, L, D] with the B unconditional rows first, as diffusers
 * concatenates them; w = 1 skips the uncond half entirely.
 */
export function guidedNoise(
  unet: NoisePredictor,
  x: Tensor,
  t: number,
  embeddings: Tensor,
  guidanceScale: number,
  inputScale = 1,
): Tensor {
  const batch = x.shape[0]!;
  const input = inputScale === 1 ? x : x.mul(inputScale);
  if (guidanceScale === 1)
    return unet.forward(input, t, embeddings.shape[0] === batch ? embeddings : chunk(embeddings, 2, 0)[1]!);
  const eps = unet.forward(concat([input, input], 0), t, embeddings);
  const [uncond, cond] = chunk(eps, 2, 0) as [Tensor, Tensor];
  return uncond.add(cond.sub(uncond).mul(guidanceScale));
}

export interface SampleOptions {
  /** Latent shape [B, C, h, w]. */
  shape: readonly number[];
  seed: number;
  guidanceScale: number;
  /**
   * The text embeddings for step i ([2B, L, D], uncond first). A function so that controls such as "original
   * encoder for the first steps, tuned for the last S" or embedding interpolation are just schedules.
   */
  embeddingsAt: (stepIndex: number) => Tensor;
  /** Called after each step (progress bars). */
  onStep?: (stepIndex: number, total: number) => void;
  /** Steps [from, to) to run (default all): the trainer runs the gradient-free prefix here. */
  range?: [number, number];
  /** Start from these latents instead of fresh noise. */
  latents?: Tensor;
  /** Replaces an ancestral sampler's seeded step noise (tests feed a reference's). */
  stepNoise?: StepNoise;
}

/** The gradient-free denoising loop. The final latents belong to the caller's scope; earlier ones are freed as it goes. */
export function sampleLatents(unet: NoisePredictor, sampler: Sampler, o: SampleOptions): Tensor {
  const [from, to] = o.range ?? [0, sampler.timesteps.length];
  return noGrad(() => {
    let x = o.latents ?? scope(() => randn(o.shape, o.seed).mul(sampler.initNoiseSigma));
    const run = sampler.start({ seed: o.seed, noise: o.stepNoise });
    try {
      for (let i = from; i < to; i++) {
        const prev = x;
        x = scope(() =>
          run.step(
            i,
            prev,
            guidedNoise(
              unet,
              prev,
              sampler.timesteps[i]!,
              o.embeddingsAt(i),
              o.guidanceScale,
              sampler.modelInputScale(i),
            ),
          ),
        );
        if (prev !== o.latents) prev.dispose();
        o.onStep?.(i + 1, to);
      }
    } finally {
      run.dispose();
    }
    return x;
  });
}
