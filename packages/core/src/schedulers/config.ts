/**
 * The parts of a diffusers `scheduler_config.json` our samplers use, in camelCase.
 * Missing keys take the defaults of the diffusers class being built, as `Scheduler.from_config` does; options
 * whose step would not be an affine combination of sample and noise (clip_sample, thresholding) are refused,
 * and so is every value that would make the noise schedule NaN or ∞ (all problems in one error).
 */

import { Schema } from "effect";
import { IntUpTo, NonNegativeInt, crossCheck, decodeConfig } from "../models/config-schema.ts";
import { alphasCumprod, betas } from "./betas.ts";

export type BetaSchedule = "linear" | "scaled_linear";
export type TimestepSpacing = "leading" | "trailing" | "linspace";
export type SchedulerClass = "DDIMScheduler" | "EulerDiscreteScheduler" | "DDPMScheduler";

export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  /** Explicit betas; when set they replace betaStart/betaEnd/betaSchedule. */
  trainedBetas: readonly number[] | null;
  stepsOffset: number;
  /** DDIM: ᾱ used after the last step, 1 when true, ᾱ[0] when false. */
  setAlphaToOne: boolean;
  timestepSpacing: TimestepSpacing;
  predictionType: "epsilon";
}

/** Stable Diffusion 1.5's scheduler_config.json (a PNDMScheduler config). */
export const SD15_SCHEDULER_CONFIG: SchedulerConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: "scaled_linear",
  trainedBetas: null,
  stepsOffset: 1,
  setAlphaToOne: false,
  timestepSpacing: "leading",
  predictionType: "epsilon",
};

const COMMON_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  steps_offset: 0,
  prediction_type: "epsilon",
  set_alpha_to_one: true,
  clip_sample: false,
  thresholding: false,
  rescale_betas_zero_snr: false,
  use_karras_sigmas: false,
  interpolation_type: "linear",
};

/** Constructor defaults of each diffusers class, where they differ from COMMON_DEFAULTS. */
const CLASS_DEFAULTS: Record<SchedulerClass, Record<string, unknown>> = {
  DDIMScheduler: { clip_sample: true, timestep_spacing: "leading" },
  EulerDiscreteScheduler: { timestep_spacing: "linspace" },
  DDPMScheduler: { clip_sample: true, timestep_spacing: "leading" },
};

/** β as a probability: 0 would stall the diffusion, ≥ 1 makes ᾱ zero or negative (NaN images). */
const Beta = Schema.Finite.pipe(Schema.check(Schema.isGreaterThan(0), Schema.isLessThan(1)));
/** diffusers' schedules use 1000; far more only underflows ᾱ (below) and allocates tables for nothing. */
const MAX_TRAIN_TIMESTEPS = 100_000;
/**
 * ᾱ at the last training timestep must stay well above 0: DDIM divides by √ᾱ, and in f32 a vanishing ᾱ turns
 * every image into NaN (black). SD 1.5's is 4.7e-3, diffusers' linear default 4.0e-5.
 */
const MIN_FINAL_ALPHA_CUMPROD = 1e-10;

/**
 * The fields our samplers read, and those that change the update rule away from what our kernels apply (only
 * the value given is accepted). Other keys (_class_name, skip_prk_steps, …) pass unchecked.
 */
const SchedulerJson = Schema.Struct({
  num_train_timesteps: IntUpTo(MAX_TRAIN_TIMESTEPS),
  beta_start: Beta,
  beta_end: Beta,
  beta_schedule: Schema.Literals(["linear", "scaled_linear"]),
  trained_betas: Schema.NullOr(Schema.Array(Beta)),
  steps_offset: NonNegativeInt,
  set_alpha_to_one: Schema.Boolean,
  timestep_spacing: Schema.Literals(["leading", "trailing", "linspace"]),
  clip_sample: Schema.Literal(false),
  thresholding: Schema.Literal(false),
  rescale_betas_zero_snr: Schema.Literal(false),
  use_karras_sigmas: Schema.Literal(false),
  interpolation_type: Schema.Literal("linear"),
  prediction_type: Schema.Literal("epsilon"),
});

export function parseSchedulerConfig(json: Record<string, unknown>, as: SchedulerClass): SchedulerConfig {
  const where = `${as} config`;
  const c = decodeConfig(SchedulerJson, { ...COMMON_DEFAULTS, ...CLASS_DEFAULTS[as], ...json }, where);
  const config: SchedulerConfig = {
    numTrainTimesteps: c.num_train_timesteps,
    betaStart: c.beta_start,
    betaEnd: c.beta_end,
    betaSchedule: c.beta_schedule,
    trainedBetas: c.trained_betas,
    stepsOffset: c.steps_offset,
    setAlphaToOne: c.set_alpha_to_one,
    timestepSpacing: c.timestep_spacing,
    predictionType: "epsilon",
  };
  const alphas = alphasCumprod(betas(config));
  crossCheck(where, [
    [
      c.trained_betas === null || c.trained_betas.length === c.num_train_timesteps,
      "trained_betas",
      c.trained_betas?.length,
      `needs one beta per training timestep (num_train_timesteps = ${c.num_train_timesteps})`,
    ],
    [
      c.steps_offset < c.num_train_timesteps,
      "steps_offset",
      c.steps_offset,
      `must be below num_train_timesteps (${c.num_train_timesteps})`,
    ],
    [
      alphas[alphas.length - 1]! >= MIN_FINAL_ALPHA_CUMPROD,
      "num_train_timesteps",
      c.num_train_timesteps,
      `with these betas the signal left at the last timestep (ᾱ = ${alphas[alphas.length - 1]!.toExponential(2)}) is below ${MIN_FINAL_ALPHA_CUMPROD}, which samples as NaN: use fewer timesteps or smaller betas`,
    ],
  ]);
  return config;
}
