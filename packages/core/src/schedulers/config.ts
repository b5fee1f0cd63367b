/**
 * The parts of a diffusers `scheduler_config.json` our samplers use, in camelCase.
 * Missing keys take the defaults of the diffusers class being built, as `Scheduler.from_config` does; options
 * whose step would not be an affine combination of sample and noise (clip_sample, thresholding) are refused.
 */

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

/** Settings that change the update rule away from what our kernels apply; the value is the only one accepted. */
const REQUIRED: Record<string, unknown> = {
  clip_sample: false,
  thresholding: false,
  rescale_betas_zero_snr: false,
  use_karras_sigmas: false,
  interpolation_type: "linear",
  prediction_type: "epsilon",
};

export function parseSchedulerConfig(json: Record<string, unknown>, as: SchedulerClass): SchedulerConfig {
  const c: Record<string, unknown> = { ...COMMON_DEFAULTS, ...CLASS_DEFAULTS[as], ...json };
  for (const [key, value] of Object.entries(REQUIRED)) {
    if (c[key] !== value) throw new Error(`${as}: ${key} = ${JSON.stringify(c[key])} is not supported (need ${JSON.stringify(value)})`);
  }
  return {
    numTrainTimesteps: Number(c.num_train_timesteps),
    betaStart: Number(c.beta_start),
    betaEnd: Number(c.beta_end),
    betaSchedule: oneOf(c.beta_schedule, ["linear", "scaled_linear"] as const, "beta_schedule"),
    trainedBetas: Array.isArray(c.trained_betas) ? c.trained_betas.map(Number) : null,
    stepsOffset: Number(c.steps_offset),
    setAlphaToOne: Boolean(c.set_alpha_to_one),
    timestepSpacing: oneOf(c.timestep_spacing, ["leading", "trailing", "linspace"] as const, "timestep_spacing"),
    predictionType: "epsilon",
  };
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], key: string): T {
  if (!allowed.includes(value as T)) throw new Error(`${key} = ${JSON.stringify(value)} is not supported (one of ${allowed.join(", ")})`);
  return value as T;
}
