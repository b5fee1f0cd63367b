import type { Tensor } from "../tensor/tensor.ts";

/** x' = cx·x + ce·ε: the update of DDIM and Euler, an affine map the trainer can differentiate through. */
export interface Affine {
  cx: number;
  ce: number;
}

export const schedulerStep = (x: Tensor, eps: Tensor, { cx, ce }: Affine): Tensor => x.mul(cx).add(eps.mul(ce));

/** Fresh standard-normal noise for step i of an ancestral sampler, shaped like the latents. */
export type StepNoise = (stepIndex: number, shape: readonly number[]) => Tensor;

export interface SamplerRunOptions {
  /** Seeds the noise an ancestral sampler adds at each step (the same seed as the initial latents is fine). */
  seed?: number;
  /** Replaces the seeded noise (tests feed a reference's noise). */
  noise?: StepNoise;
}

/**
 * One pass over the timesteps, in order. `step` returns x_{i+1} from x_i and the guided ε̂ at timesteps[i];
 * the run keeps what a multistep solver needs from earlier steps and frees it on dispose().
 */
export interface SamplerRun {
  step(stepIndex: number, x: Tensor, eps: Tensor): Tensor;
  dispose(): void;
}

/** What a denoising loop needs from a scheduler, indexed by step i of `timesteps`. */
export interface Sampler {
  readonly timesteps: readonly number[];
  /** Scale of the initial Gaussian noise x_T = initNoiseSigma·z. */
  readonly initNoiseSigma: number;
  /** The UNet sees modelInputScale(i)·x (diffusers' scale_model_input). */
  modelInputScale(stepIndex: number): number;
  start(options?: SamplerRunOptions): SamplerRun;
}

/** A sampler whose every step is affine in (x, ε̂): stateless, and what training backpropagates through. */
export interface AffineSampler extends Sampler {
  stepCoefficientsAt(stepIndex: number): Affine;
}

export function affineRun(sampler: AffineSampler): SamplerRun {
  return { step: (i, x, eps) => schedulerStep(x, eps, sampler.stepCoefficientsAt(i)), dispose() {} };
}

/** Multistep solvers are only right when steps come one after another from the first. */
export function inOrder(name: string): (stepIndex: number) => void {
  let expected = 0;
  return (stepIndex) => {
    if (stepIndex !== expected)
      throw new Error(
        `${name}: steps run in order from 0; expected step ${expected}, got ${stepIndex} (start a new run)`,
      );
    expected++;
  };
}
