export { SD15_SCHEDULER_CONFIG, parseSchedulerConfig, type SchedulerConfig, type BetaSchedule, type TimestepSpacing, type SchedulerClass } from "./config.ts";
export { betas, alphasCumprod } from "./betas.ts";
export { spacedTimesteps, type Spacing } from "./timesteps.ts";
export type { Affine, Sampler } from "./sampler.ts";
export { DDIMScheduler, type DDIMCoefficients } from "./ddim.ts";
export { EulerDiscreteScheduler } from "./euler.ts";
export { DDPMScheduler, type AddNoiseCoefficients, type PosteriorCoefficients } from "./ddpm.ts";
export { schedulerFromConfig } from "./from-config.ts";
