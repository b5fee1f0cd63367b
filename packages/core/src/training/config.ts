/** The trainer's settings; the defaults are the paper's (reference/TEXTCRAFTOR.md §1). */
import { LR_SCHEDULERS, type LRScheduler } from "./lr-schedule.ts";

export type Truncation =
  /** TextCraftor: the first N−K steps without gradient using the frozen original encoder, the last K with the trainable one. */
  | "last-k"
  /** DRaFT-K: the trainable encoder for every step, gradient through the last K. */
  | "draft-k"
  /** AlignProp: like DRaFT-K with K drawn uniformly from 1..K each step. */
  | "alignprop"
  /** ReFL-style: stop at a random step among the last K, one step with gradient, decode its x̂0 prediction. */
  | "refl";

export type Trainable = "text-encoder" | "unet";

export interface TrainConfig {
  steps: number;
  batchSize: number;
  /** Denoising steps per sample (N) and steps with gradient (K). */
  inferenceSteps: number;
  gradSteps: number;
  guidanceScale: number;
  /** DDIM timestep spacing: the authors' 999…39 by default, or diffusers' leading spacing. */
  spacing: "textcraftor" | "leading";
  truncation: Truncation;
  trainable: Trainable;
  lr: number;
  /** How lr changes over the run (diffusers' names), after `lrWarmupSteps` of linear warmup from 0. */
  lrScheduler: LRScheduler;
  lrWarmupSteps: number;
  /** Clip the gradients' global norm to this (torch's clip_grad_norm_); null: no clipping. */
  maxGradNorm: number | null;
  /** Keep an exponential moving average of the trained weights with this decay, used for samples and export; null: off. */
  emaDecay: number | null;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  /** Image size in pixels (latents are this / the VAE's factor). */
  resolution: number;
  checkpointEvery: number;
  /** How many checkpoints the run folder keeps (the oldest go first); null: all. */
  checkpointsTotalLimit: number | null;
  sampleEvery: number;
  /** Stop the run after this many skipped (non-finite) steps. */
  maxBadSteps: number;
  /**
   * Recompute activations in the backward pass instead of keeping them: each UNet call with gradient, its
   * blocks and the VAE decoder's up blocks (what SD 1.5 needs to fit; a tiny model trains faster without).
   */
  gradientCheckpointing: boolean;
  /** Train low-rank adapters on the trainable part's attention projections instead of all its weights. */
  lora: { rank: number; alpha?: number } | null;
  /**
   * diffusers' `--mixed_precision`: "fp16" stores every frozen model's weights as f16 (the UNet and VAE when the
   * text encoder trains, the original text encoder, the reward towers), about half the memory; the math, the
   * trained weights, their gradients and AdamW's state stay f32. "no" keeps everything f32.
   */
  mixedPrecision: "no" | "fp16";
  /**
   * Micro-batches of `batchSize` per optimizer step, their gradients summed as one batch of batchSize × gradAccum
   * (diffusers' --gradient_accumulation_steps): the paper's batch on a GPU that holds only a few images.
   */
  gradAccum: number;
}

export const TRAIN_DEFAULTS: TrainConfig = {
  steps: 1000,
  batchSize: 4,
  inferenceSteps: 25,
  gradSteps: 5,
  guidanceScale: 7.5,
  spacing: "textcraftor",
  truncation: "last-k",
  trainable: "text-encoder",
  lr: 1e-6,
  lrScheduler: "constant",
  lrWarmupSteps: 0,
  maxGradNorm: null,
  emaDecay: null,
  weightDecay: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  seed: 0,
  resolution: 512,
  checkpointEvery: 100,
  checkpointsTotalLimit: 2,
  sampleEvery: 100,
  maxBadSteps: 10,
  gradientCheckpointing: true,
  lora: null,
  mixedPrecision: "no",
  gradAccum: 1,
};

/**
 * Refuses settings that would fail deep inside a step or silently train nonsense, naming the setting.
 * `imageFactor` is the VAE's downscale (8 for SD), when the model is known.
 */
export function validateTrainConfig(c: TrainConfig, imageFactor?: number): TrainConfig {
  const fail = (message: string): never => {
    throw new Error(`train config: ${message}`);
  };
  const positive = [
    "steps",
    "batchSize",
    "gradAccum",
    "inferenceSteps",
    "gradSteps",
    "resolution",
    "checkpointEvery",
    "sampleEvery",
  ] as const;
  for (const k of positive)
    if (!Number.isInteger(c[k]) || c[k] < 1) fail(`${k} must be a positive integer (got ${c[k]})`);
  for (const k of ["seed", "maxBadSteps"] as const)
    if (!Number.isInteger(c[k]) || c[k] < 0) fail(`${k} must be a non-negative integer (got ${c[k]})`);
  if (c.gradSteps > c.inferenceSteps)
    fail(`gradSteps (${c.gradSteps}) cannot exceed inferenceSteps (${c.inferenceSteps})`);
  if (imageFactor && c.resolution % imageFactor)
    fail(
      `resolution ${c.resolution} must be a multiple of ${imageFactor} (the VAE's downscale), e.g. ${Math.max(1, Math.round(c.resolution / imageFactor)) * imageFactor}`,
    );
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) fail(`lr must be > 0 (got ${c.lr})`);
  if (!(c.weightDecay >= 0) || !Number.isFinite(c.weightDecay)) fail(`weightDecay must be >= 0 (got ${c.weightDecay})`);
  if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1))
    fail(`AdamW betas must be in [0, 1) (got ${c.beta1}, ${c.beta2})`);
  if (!(c.eps > 0)) fail(`eps must be > 0 (got ${c.eps})`);
  if (!LR_SCHEDULERS.includes(c.lrScheduler))
    fail(`lrScheduler must be one of ${LR_SCHEDULERS.join(", ")} (got ${c.lrScheduler})`);
  if (!Number.isInteger(c.lrWarmupSteps) || c.lrWarmupSteps < 0)
    fail(`lrWarmupSteps must be a non-negative integer (got ${c.lrWarmupSteps})`);
  if (c.lrWarmupSteps > 0 && c.lrScheduler === "constant")
    fail(
      `lrWarmupSteps ${c.lrWarmupSteps} has no effect with the constant schedule: use constant_with_warmup, linear or cosine`,
    );
  if (c.maxGradNorm !== null && !(c.maxGradNorm > 0 && Number.isFinite(c.maxGradNorm)))
    fail(`maxGradNorm must be > 0 (got ${c.maxGradNorm})`);
  if (c.emaDecay !== null && !(c.emaDecay >= 0 && c.emaDecay < 1))
    fail(`emaDecay must be in [0, 1), e.g. 0.999 (got ${c.emaDecay})`);
  if (c.checkpointsTotalLimit !== null && (!Number.isInteger(c.checkpointsTotalLimit) || c.checkpointsTotalLimit < 1))
    fail(`checkpointsTotalLimit must be a positive integer (got ${c.checkpointsTotalLimit})`);
  if (c.mixedPrecision !== "no" && c.mixedPrecision !== "fp16")
    fail(`mixedPrecision must be "no" or "fp16" (got ${c.mixedPrecision})`);
  if (!Number.isFinite(c.guidanceScale)) fail(`guidanceScale must be a finite number (got ${c.guidanceScale})`);
  checkF32(c, fail);
  if (c.lora) {
    if (!Number.isInteger(c.lora.rank) || c.lora.rank < 1)
      fail(`LoRA rank must be a positive integer (got ${c.lora.rank})`);
    if (c.lora.alpha !== undefined && !(c.lora.alpha > 0)) fail(`LoRA alpha must be > 0 (got ${c.lora.alpha})`);
  }
  return c;
}

/** The smallest normal f32: GPUs may flush anything smaller to 0. */
const F32_MIN_NORMAL = 2 ** -126;

/**
 * The optimizer and sampler compute in f32, where a value finite in JS may be ∞ or 0 (lr 1e39 made every weight
 * ∞ in one update), and decoupled weight decay multiplies the weights by 1 − lr·weightDecay each step.
 */
function checkF32(c: TrainConfig, fail: (message: string) => never): void {
  for (const k of ["lr", "weightDecay", "eps", "guidanceScale"] as const) {
    if (!Number.isFinite(Math.fround(c[k])))
      fail(`${k} ${c[k]} is beyond f32's range (±3.4e38), in which the weights are updated`);
  }
  for (const k of ["lr", "eps"] as const) {
    if (Math.abs(Math.fround(c[k])) < F32_MIN_NORMAL)
      fail(`${k} ${c[k]} is below f32's smallest normal number (1.2e-38) and would act as 0`);
  }
  if (c.lr * c.weightDecay >= 1)
    fail(
      `lr × weightDecay must be below 1, since each step multiplies the weights by 1 − lr·weightDecay (got ${c.lr} × ${c.weightDecay})`,
    );
}

/** Settings a resumed run may change: its length and how often it logs. The rest would not continue the same run. */
export const RESUMABLE_CHANGES: readonly (keyof TrainConfig)[] = [
  "steps",
  "checkpointEvery",
  "checkpointsTotalLimit",
  "sampleEvery",
  "maxBadSteps",
];

/** The settings in which `now` differs from the run's saved config, except those a resume may change. */
export function resumeConflicts(saved: Partial<TrainConfig>, now: TrainConfig): string[] {
  return (Object.keys(now) as (keyof TrainConfig)[])
    .filter((k) => !RESUMABLE_CHANGES.includes(k) && k in saved && JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} ${JSON.stringify(saved[k])} (now ${JSON.stringify(now[k])})`);
}
