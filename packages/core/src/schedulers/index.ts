export {
  SD15_SCHEDULER_CONFIG,
  parseSchedulerConfig,
  type SchedulerConfig,
  type BetaSchedule,
  type TimestepSpacing,
  type SchedulerClass,
} from "./config.ts";
export { betas, alphasCumprod } from "./betas.ts";
export { spacedTimesteps, type Spacing } from "./timesteps.ts";
export {
  schedulerStep,
  affineRun,
  type Affine,
  type Sampler,
  type AffineSampler,
  type SamplerRun,
  type SamplerRunOptions,
  type StepNoise,
} from "./sampler.ts";
export { DDIMScheduler, type DDIMCoefficients } from "./ddim.ts";
export { EulerDiscreteScheduler } from "./euler.ts";
export { EulerAncestralDiscreteScheduler } from "./euler-ancestral.ts";
export { DPMSolverMultistepScheduler, karrasSigmas } from "./dpm-solver.ts";
export {
  samplers,
  samplerNames,
  isSamplerName,
  createSampler,
  type SamplerName,
  type SamplerSettings,
} from "./registry.ts";
export { DDPMScheduler, type AddNoiseCoefficients, type PosteriorCoefficients } from "./ddpm.ts";
export { schedulerFromConfig } from "./from-config.ts";
