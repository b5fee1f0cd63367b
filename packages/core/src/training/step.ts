/**
 * One TextCraftor sample with its reward, as a differentiable graph (reference/TEXTCRAFTOR.md §1.3):
 * seeded noise → DDIM with classifier-free guidance, the gradient-free prefix first, then the steps that
 * carry gradient with each UNet call under gradient checkpointing
 * (unless the config turns it off) → VAE decode → Σ γ·R.
 */
import type { CLIPTextModel } from "../models/clip/text.ts";
import type { StableDiffusion } from "../models/stable-diffusion.ts";
import { Rng } from "../nn/init.ts";
import { randn } from "../ops/random.ts";
import { guidedNoise, sampleLatents } from "../pipelines/denoise.ts";
import { combineRewards, type CombinedScore, type WeightedReward } from "../rewards/combine.ts";
import type { DDIMScheduler } from "../schedulers/ddim.ts";
import { schedulerStep } from "../schedulers/sampler.ts";
import { checkpoint, noGrad } from "../tensor/autograd.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { TrainConfig } from "./config.ts";

export interface TrainingModels {
  /** Its `textEncoder` is the one being trained (text stage) or the frozen tuned one (UNet stage). */
  sd: StableDiffusion;
  /** The original encoder, frozen: used for the gradient-free prefix in TextCraftor's scheme. */
  frozenTextEncoder: CLIPTextModel;
  rewards: WeightedReward[];
}

/** Which steps carry gradient at training step `step`: [from, to) of the N sampling steps. */
export function gradientWindow(c: TrainConfig, step: number, n: number): [number, number] {
  const rng = new Rng((c.seed * 7919 + step * 104729) >>> 0);
  if (c.truncation === "alignprop") return [n - (1 + Math.floor(rng.next() * c.gradSteps)), n];
  if (c.truncation === "refl") {
    const from = n - 1 - Math.floor(rng.next() * c.gradSteps);
    return [from, from + 1];
  }
  return [n - c.gradSteps, n];
}

/** Where a micro-batch sits in its step's global batch (gradient accumulation): its first sample and the batch's size. */
export interface MicroBatch {
  firstSample: number;
  globalBatch: number;
}

/**
 * Builds the graph for one training step's batch; the caller backpropagates −total. The initial noise is
 * drawn from (seed, step) unless given (golden tests feed PyTorch's), each sample's from its index in the step's
 * global batch, so a batch of 4 and two accumulated micro-batches of 2 draw the same noise.
 */
export function rewardGraph(
  m: TrainingModels,
  sampler: DDIMScheduler,
  c: TrainConfig,
  prompts: string[],
  step: number,
  initialNoise?: Tensor,
  { firstSample, globalBatch }: MicroBatch = { firstSample: 0, globalBatch: prompts.length },
): CombinedScore & { images: Tensor } {
  const { sd } = m;
  const batch = prompts.length;
  const ids = sd.tokenizer.callInt32([...prompts.map(() => ""), ...prompts]);
  const factor = 2 ** (sd.vae.config.blockOutChannels.length - 1);
  const shape = [batch, sd.unet.config.inChannels, c.resolution / factor, c.resolution / factor];
  const n = sampler.timesteps.length;
  const [from, to] = gradientWindow(c, step, n);

  const trainEncoder = c.trainable === "text-encoder";
  // TextCraftor's prefix uses the original encoder; DRaFT/AlignProp/ReFL use the model being trained.
  const prefixEncoder = trainEncoder && c.truncation === "last-k" ? m.frozenTextEncoder : sd.textEncoder;
  const prefixEmbeddings = noGrad(() => prefixEncoder.forward(ids));
  const perSample = shape.slice(1).reduce((a, b) => a * b, 1);
  const noise =
    initialNoise ??
    noGrad(() => randn(shape, c.seed, (step * globalBatch + firstSample) * perSample).mul(sampler.initNoiseSigma));
  let x = sampleLatents(sd.unet, sampler, {
    shape,
    seed: c.seed,
    guidanceScale: c.guidanceScale,
    embeddingsAt: () => prefixEmbeddings,
    range: [0, from],
    latents: noise,
  });

  const embeddings = trainEncoder ? sd.textEncoder.forward(ids) : prefixEmbeddings;
  for (let i = from; i < to; i++) {
    const t = sampler.timesteps[i]!;
    const predict = (xi: Tensor, e: Tensor) =>
      guidedNoise(sd.unet, xi, t, e, c.guidanceScale, sampler.modelInputScale());
    const eps = c.gradientCheckpointing ? checkpoint(predict, x, embeddings) : predict(x, embeddings);
    // ReFL decodes the one-step x̂0 prediction instead of continuing the chain.
    x = schedulerStep(
      x,
      eps,
      c.truncation === "refl" ? sampler.predictX0Coefficients(t) : sampler.stepCoefficientsAt(i),
    );
  }
  const images = sd.vae.decodeToImage(x);
  return { ...combineRewards(m.rewards, images, prompts), images };
}
