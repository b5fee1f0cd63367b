import { randn } from "../ops/random.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { SchedulerConfig, TimestepSpacing } from "./config.ts";
import { EulerDiscreteScheduler } from "./euler.ts";
import type { Sampler, SamplerRun, SamplerRunOptions } from "./sampler.ts";

/**
 * Euler ancestral (diffusers' EulerAncestralDiscreteScheduler, k-diffusion's sample_euler_ancestral with η = 1):
 * Euler's σ schedule, but each step goes down to σ_down and adds fresh noise of scale σ_up, where
 *   σ_up = √(σ_next²·(σ² − σ_next²)/σ²),   σ_down = √(σ_next² − σ_up²),
 *   x_next = x + (σ_down − σ)·ε̂ + σ_up·z.
 * The noise makes it stochastic: a run is reproducible through its seed.
 */
export class EulerAncestralDiscreteScheduler implements Sampler {
  private readonly euler: EulerDiscreteScheduler;

  constructor(readonly config: SchedulerConfig) {
    this.euler = new EulerDiscreteScheduler(config);
  }

  get timesteps(): readonly number[] {
    return this.euler.timesteps;
  }

  /** σ per inference step, plus a final 0. */
  get sigmas(): Float64Array {
    return this.euler.sigmas;
  }

  get initNoiseSigma(): number {
    return this.euler.initNoiseSigma;
  }

  setTimesteps(numInferenceSteps: number, options: { spacing?: TimestepSpacing } = {}): number[] {
    return this.euler.setTimesteps(numInferenceSteps, options);
  }

  modelInputScale(stepIndex: number): number {
    return this.euler.modelInputScale(stepIndex);
  }

  /** σ_up and σ_down of step i. */
  ancestralSigmas(stepIndex: number): { up: number; down: number } {
    const from = this.sigmas[stepIndex]!,
      to = this.sigmas[stepIndex + 1]!;
    const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
    return { up, down: Math.sqrt(to * to - up * up) };
  }

  start({ seed = 0, noise }: SamplerRunOptions = {}): SamplerRun {
    // Step i draws the (i+1)-th block of the seed's stream: block 0 is the initial latents' noise.
    const draw =
      noise ??
      ((i: number, shape: readonly number[]) => randn(shape, seed, (i + 1) * shape.reduce((a, b) => a * b, 1)));
    return {
      step: (i: number, x: Tensor, eps: Tensor): Tensor => {
        const { up, down } = this.ancestralSigmas(i);
        const moved = x.add(eps.mul(down - this.sigmas[i]!));
        return up === 0 ? moved : moved.add(draw(i, x.shape).mul(up));
      },
      dispose() {},
    };
  }
}
