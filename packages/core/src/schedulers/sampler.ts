/** x' = cx·x + ce·ε: every update our samplers make is this affine form, so one GPU kernel applies all of them. */
export interface Affine {
  cx: number;
  ce: number;
}

/** What a denoising loop needs from a scheduler, indexed by step i of `timesteps`. */
export interface Sampler {
  readonly timesteps: readonly number[];
  /** Scale of the initial Gaussian noise x_T = initNoiseSigma·z. */
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): readonly number[];
  /** The UNet sees modelInputScale(i)·x (diffusers' scale_model_input). */
  modelInputScale(stepIndex: number): number;
  /** x_{i+1} = cx·x_i + ce·ε̂, with ε̂ the (guided) noise prediction at timesteps[i]. */
  stepCoefficientsAt(stepIndex: number): Affine;
}
