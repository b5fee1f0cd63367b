import { alphasCumprod, betas } from "./betas.ts";
import type { SchedulerConfig } from "./config.ts";
import { affineRun, type Affine, type AffineSampler, type SamplerRun } from "./sampler.ts";
import { roundHalfEven, spacedTimesteps, type Spacing } from "./timesteps.ts";

export interface DDIMCoefficients {
  sqrtAlpha: number;
  sqrtOneMinusAlpha: number;
  sqrtAlphaPrev: number;
  sqrtOneMinusAlphaPrev: number;
}

/**
 * Deterministic DDIM (eta = 0, epsilon prediction), as diffusers' DDIMScheduler:
 *   x̂_0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t,   x_prev = √ᾱ_prev·x̂_0 + √(1−ᾱ_prev)·ε,
 * with prev = t − ⌊T/N⌋ whatever the spacing, and ᾱ_prev = finalAlphaCumprod once prev < 0.
 * Sampling needs no input scaling and starts from unit-variance noise.
 */
export class DDIMScheduler implements AffineSampler {
  readonly alphasCumprod: Float64Array;
  /** ᾱ after the last step: 1 with set_alpha_to_one, else ᾱ[0] (SD 1.5: 0.99915). */
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  numInferenceSteps = 0;

  constructor(readonly config: SchedulerConfig) {
    this.alphasCumprod = alphasCumprod(betas(config));
    this.finalAlphaCumprod = config.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(
    numInferenceSteps: number,
    { spacing = this.config.timestepSpacing }: { spacing?: Spacing } = {},
  ): number[] {
    const { numTrainTimesteps, stepsOffset } = this.config;
    this.timesteps = spacedTimesteps(numTrainTimesteps, numInferenceSteps, spacing, stepsOffset).map(roundHalfEven);
    this.numInferenceSteps = numInferenceSteps;
    return this.timesteps;
  }

  previousTimestep(t: number): number {
    if (this.numInferenceSteps === 0) throw new Error("DDIMScheduler: call setTimesteps first");
    return t - Math.floor(this.config.numTrainTimesteps / this.numInferenceSteps);
  }

  coefficients(t: number): DDIMCoefficients {
    const alpha = this.alphasCumprod[t];
    if (alpha === undefined)
      throw new Error(`DDIMScheduler: timestep ${t} is outside 0..${this.alphasCumprod.length - 1}`);
    const prev = this.previousTimestep(t);
    const alphaPrev = prev >= 0 ? this.alphasCumprod[prev] : this.finalAlphaCumprod;
    return {
      sqrtAlpha: Math.sqrt(alpha),
      sqrtOneMinusAlpha: Math.sqrt(1 - alpha),
      sqrtAlphaPrev: Math.sqrt(alphaPrev),
      sqrtOneMinusAlphaPrev: Math.sqrt(1 - alphaPrev),
    };
  }

  /** x̂_0 = cx·x_t + ce·ε. */
  predictX0Coefficients(t: number): Affine {
    const { sqrtAlpha, sqrtOneMinusAlpha } = this.coefficients(t);
    return { cx: 1 / sqrtAlpha, ce: -sqrtOneMinusAlpha / sqrtAlpha };
  }

  /** x_prev = cx·x_t + ce·ε: the DDIM update with x̂_0 substituted. */
  stepCoefficients(t: number): Affine {
    const { sqrtAlpha, sqrtOneMinusAlpha, sqrtAlphaPrev, sqrtOneMinusAlphaPrev } = this.coefficients(t);
    return {
      cx: sqrtAlphaPrev / sqrtAlpha,
      ce: sqrtOneMinusAlphaPrev - (sqrtAlphaPrev * sqrtOneMinusAlpha) / sqrtAlpha,
    };
  }

  modelInputScale(): number {
    return 1;
  }

  stepCoefficientsAt(stepIndex: number): Affine {
    return this.stepCoefficients(this.timesteps[stepIndex]);
  }

  start(): SamplerRun {
    return affineRun(this);
  }
}
