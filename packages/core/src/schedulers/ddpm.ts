import { alphasCumprod, betas } from "./betas.ts";
import type { SchedulerConfig } from "./config.ts";

export interface AddNoiseCoefficients {
  sqrtAlphaProd: number;
  sqrtOneMinusAlphaProd: number;
}

export interface PosteriorCoefficients {
  cx: number;
  ce: number;
  /** Standard deviation of the fresh noise z; 0 at the last step. */
  sigma: number;
}

/**
 * The DDPM forward process for training and its ancestral posterior step (diffusers' DDPMScheduler with
 * variance_type "fixed_small"), both as scalar coefficients for element-wise kernels.
 */
export class DDPMScheduler {
  readonly alphasCumprod: Float64Array;

  constructor(readonly config: SchedulerConfig) {
    this.alphasCumprod = alphasCumprod(betas(config));
  }

  /** x_t = sqrtAlphaProd·x_0 + sqrtOneMinusAlphaProd·ε. */
  addNoiseCoefficients(t: number): AddNoiseCoefficients {
    const alpha = this.alphaAt(t);
    return { sqrtAlphaProd: Math.sqrt(alpha), sqrtOneMinusAlphaProd: Math.sqrt(1 - alpha) };
  }

  /**
   * x_prev = cx·x_t + ce·ε + sigma·z, the mean of q(x_prev | x_t, x̂_0) with x̂_0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t,
   * where ᾱ_prev = 1 once prev < 0. The default prev = t − 1 is the full 1000-step chain.
   */
  posteriorCoefficients(t: number, prevT = t - 1): PosteriorCoefficients {
    const alpha = this.alphaAt(t);
    const alphaPrev = prevT >= 0 ? this.alphaAt(prevT) : 1;
    const stepAlpha = alpha / alphaPrev;
    const stepBeta = 1 - stepAlpha;
    const x0Coefficient = (Math.sqrt(alphaPrev) * stepBeta) / (1 - alpha);
    const xtCoefficient = (Math.sqrt(stepAlpha) * (1 - alphaPrev)) / (1 - alpha);
    const variance = Math.max(((1 - alphaPrev) / (1 - alpha)) * stepBeta, 1e-20);
    return {
      cx: x0Coefficient / Math.sqrt(alpha) + xtCoefficient,
      ce: (-x0Coefficient * Math.sqrt(1 - alpha)) / Math.sqrt(alpha),
      sigma: t > 0 ? Math.sqrt(variance) : 0,
    };
  }

  private alphaAt(t: number): number {
    const alpha = this.alphasCumprod[t];
    if (alpha === undefined)
      throw new Error(`DDPMScheduler: timestep ${t} is outside 0..${this.alphasCumprod.length - 1}`);
    return alpha;
  }
}
