import type { SchedulerConfig } from "./config.ts";

/**
 * β_t for t = 0..T−1. "linear": evenly spaced from betaStart to betaEnd; "scaled_linear" (Stable Diffusion):
 * evenly spaced square roots, then squared. Computed in float64; diffusers uses float32, which moves ᾱ by < 1e-6 relative.
 */
export function betas(config: SchedulerConfig): Float64Array {
  if (config.trainedBetas) return Float64Array.from(config.trainedBetas);
  const { numTrainTimesteps: n, betaStart, betaEnd, betaSchedule } = config;
  const scaled = betaSchedule === "scaled_linear";
  const [from, to] = scaled ? [Math.sqrt(betaStart), Math.sqrt(betaEnd)] : [betaStart, betaEnd];
  return Float64Array.from({ length: n }, (_, i) => {
    const b = n === 1 ? from : from + ((to - from) * i) / (n - 1);
    return scaled ? b * b : b;
  });
}

/** ᾱ_t = ∏_{s≤t} (1 − β_s): the signal fraction left in x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε. */
export function alphasCumprod(betaValues: Float64Array): Float64Array {
  const out = new Float64Array(betaValues.length);
  let product = 1;
  betaValues.forEach((beta, t) => {
    product *= 1 - beta;
    out[t] = product;
  });
  return out;
}
