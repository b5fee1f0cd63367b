import { keep } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { alphasCumprod, betas } from "./betas.ts";
import type { SchedulerConfig } from "./config.ts";
import { inOrder, type Sampler, type SamplerRun } from "./sampler.ts";
import { roundHalfEven } from "./timesteps.ts";

/** Karras et al. (2022) eq. 5: σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, largest first. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, count: number, rho = 7): number[] {
  const lo = sigmaMin ** (1 / rho),
    hi = sigmaMax ** (1 / rho);
  return Array.from({ length: count }, (_, i) => (hi + (count === 1 ? 0 : i / (count - 1)) * (lo - hi)) ** rho);
}

/**
 * DPM-Solver++(2M) with Karras sigmas, "DPM++ 2M Karras" in A1111 and ComfyUI: diffusers'
 * DPMSolverMultistepScheduler with algorithm_type "dpmsolver++", solver_order 2, use_karras_sigmas and
 * final_sigmas_type "zero", written in σ-space as k-diffusion's sample_dpmpp_2m (x = x̂_0 + σ·ε, the UNet sees
 * x/√(σ²+1)). With λ = −log σ, h = λ_next − λ and D = x − σ·ε̂ the data prediction:
 *   x_next = (σ_next/σ)·x − (e^(−h) − 1)·D',   D' = (1 + 1/(2r))·D − (1/(2r))·D_prev,   r = h_prev/h,
 * first order (D' = D) at the first step, and x_next = D at the last (σ_next = 0).
 */
export class DPMSolverMultistepScheduler implements Sampler {
  /** σ for every training timestep 0..T−1. */
  readonly trainSigmas: Float64Array;
  private readonly logTrainSigmas: Float64Array;
  timesteps: number[] = [];
  /** σ per inference step, plus a final 0. */
  sigmas: Float64Array = new Float64Array(0);

  constructor(readonly config: SchedulerConfig) {
    this.trainSigmas = alphasCumprod(betas(config)).map((a) => Math.sqrt((1 - a) / a));
    this.logTrainSigmas = this.trainSigmas.map(Math.log);
  }

  /** The Karras sigmas span the model's σ range; each step's timestep is its σ mapped back and rounded, as diffusers does. */
  setTimesteps(numInferenceSteps: number): number[] {
    const T = this.trainSigmas.length;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > T) {
      throw new Error(`numInferenceSteps must be an integer in 1..${T}, got ${numInferenceSteps}`);
    }
    const sigmas = karrasSigmas(this.trainSigmas[0]!, this.trainSigmas[T - 1]!, numInferenceSteps);
    this.timesteps = sigmas.map((s) => roundHalfEven(this.timestepOf(s)));
    this.sigmas = Float64Array.from([...sigmas, 0]);
    return this.timesteps;
  }

  get initNoiseSigma(): number {
    if (this.timesteps.length === 0) throw new Error("DPMSolverMultistepScheduler: call setTimesteps first");
    return this.sigmas[0]!;
  }

  modelInputScale(stepIndex: number): number {
    const sigma = this.sigmas[stepIndex]!;
    return 1 / Math.sqrt(sigma * sigma + 1);
  }

  start(): SamplerRun {
    const check = inOrder("DPMSolverMultistepScheduler");
    let previous: Tensor | null = null;
    const release = () => {
      previous?.dispose();
      previous = null;
    };
    return {
      step: (i, x, eps) => {
        check(i);
        const sigma = this.sigmas[i]!,
          next = this.sigmas[i + 1]!;
        const denoised = x.sub(eps.mul(sigma));
        if (next === 0) {
          release();
          return denoised;
        }
        const h = Math.log(sigma / next);
        let d = denoised;
        if (previous) {
          const half = 1 / (2 * (Math.log(this.sigmas[i - 1]! / sigma) / h));
          d = denoised.mul(1 + half).sub(previous.mul(half));
        }
        const out = x.mul(next / sigma).sub(d.mul(Math.expm1(-h)));
        release();
        // The run owns D until the next step reads it, whatever scope the step ran in.
        previous = keep(denoised);
        return out;
      },
      dispose: release,
    };
  }

  /** Fractional timestep of σ: linear interpolation in log σ between neighbouring training timesteps (diffusers' _sigma_to_t). */
  private timestepOf(sigma: number): number {
    const logSigmas = this.logTrainSigmas;
    const target = Math.log(Math.max(sigma, 1e-10));
    let low = 0;
    for (let t = 0; t < logSigmas.length; t++) if (logSigmas[t]! <= target) low = t;
    low = Math.min(low, logSigmas.length - 2);
    const w = Math.min(Math.max((logSigmas[low]! - target) / (logSigmas[low]! - logSigmas[low + 1]!), 0), 1);
    return low + w;
  }
}
