import { alphasCumprod, betas } from "./betas.ts";
import type { SchedulerConfig, TimestepSpacing } from "./config.ts";
import { affineRun, type Affine, type AffineSampler, type SamplerRun } from "./sampler.ts";
import { spacedTimesteps } from "./timesteps.ts";

/**
 * Euler sampler in σ-space (diffusers' EulerDiscreteScheduler, epsilon prediction, no churn): x = x_0 + σ·ε with
 * σ_t = √((1−ᾱ_t)/ᾱ_t). The UNet sees x/√(σ²+1); the step is x_next = x + (σ_next − σ)·ε.
 * Steps are looked up by index, as diffusers does, since σ belongs to a step rather than to a timestep value.
 */
export class EulerDiscreteScheduler implements AffineSampler {
  /** σ for every training timestep 0..T−1. */
  readonly trainSigmas: Float64Array;
  timesteps: number[] = [];
  /** σ per inference step, plus a final 0. */
  sigmas: Float64Array = new Float64Array(0);
  private spacing: TimestepSpacing;

  constructor(readonly config: SchedulerConfig) {
    this.spacing = config.timestepSpacing;
    this.trainSigmas = alphasCumprod(betas(config)).map((a) => Math.sqrt((1 - a) / a));
  }

  /** "linspace" timesteps are fractional; σ is then interpolated linearly between training timesteps (np.interp). */
  setTimesteps(
    numInferenceSteps: number,
    { spacing = this.config.timestepSpacing }: { spacing?: TimestepSpacing } = {},
  ): number[] {
    const { numTrainTimesteps, stepsOffset } = this.config;
    this.spacing = spacing;
    this.timesteps = spacedTimesteps(numTrainTimesteps, numInferenceSteps, spacing, stepsOffset);
    this.sigmas = Float64Array.from([...this.timesteps.map((t) => this.sigmaAt(t)), 0]);
    return this.timesteps;
  }

  /** diffusers: σ_max for "linspace"/"trailing", √(σ_max²+1) otherwise ("leading"). */
  get initNoiseSigma(): number {
    if (this.timesteps.length === 0) throw new Error("EulerDiscreteScheduler: call setTimesteps first");
    const sigmaMax = Math.max(...this.sigmas);
    return this.spacing === "leading" ? Math.sqrt(sigmaMax * sigmaMax + 1) : sigmaMax;
  }

  modelInputScale(stepIndex: number): number {
    const sigma = this.sigmas[stepIndex];
    return 1 / Math.sqrt(sigma * sigma + 1);
  }

  stepCoefficientsAt(stepIndex: number): Affine {
    return { cx: 1, ce: this.sigmas[stepIndex + 1] - this.sigmas[stepIndex] };
  }

  start(): SamplerRun {
    return affineRun(this);
  }

  private sigmaAt(t: number): number {
    const below = Math.min(Math.max(Math.floor(t), 0), this.trainSigmas.length - 1);
    const above = Math.min(below + 1, this.trainSigmas.length - 1);
    return this.trainSigmas[below] + (t - below) * (this.trainSigmas[above] - this.trainSigmas[below]);
  }
}
