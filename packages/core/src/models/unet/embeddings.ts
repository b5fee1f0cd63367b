/** The timestep's sinusoidal embedding and the MLP (TimestepEmbedding) that lifts it to the resnets' width. */
import { Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module } from "../../nn/module.ts";
import type { Tensor } from "../../tensor/tensor.ts";

const f32 = Math.fround;

/**
 * diffusers' `get_timestep_embedding` for one timestep per batch item → [B·dim] row-major, computed on
 * the CPU (timesteps are plain numbers). Each step rounds to float32 as PyTorch does: at t ≈ 1000 the
 * highest frequency's phase is ~1000 rad, so a float64 phase would differ from the reference by ~1e-4.
 */
export function sinusoidalTimestepEmbedding(
  timesteps: readonly number[],
  dim: number,
  flipSinToCos: boolean,
  freqShift: number,
  maxPeriod = 10000,
): Float32Array {
  const half = dim / 2;
  const logPeriod = f32(-Math.log(maxPeriod)),
    denom = f32(half - freqShift);
  const freqs = Array.from({ length: half }, (_, i) => f32(Math.exp(f32(f32(logPeriod * i) / denom))));
  const out = new Float32Array(timesteps.length * dim);
  timesteps.forEach((t, b) => {
    // flip_sin_to_cos puts cos in the first half (SD), otherwise sin comes first.
    const [first, second] = flipSinToCos ? [Math.cos, Math.sin] : [Math.sin, Math.cos];
    freqs.forEach((freq, i) => {
      const phase = f32(f32(t) * freq);
      out[b * dim + i] = first(phase);
      out[b * dim + half + i] = second(phase);
    });
  });
  return out;
}

/** linear_1 → SiLU → linear_2 (diffusers' TimestepEmbedding with act_fn "silu"). */
export class TimestepEmbedding extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(inChannels: number, timeEmbedDim: number, rng: Rng) {
    super();
    this.linear1 = this.child("linear_1", new Linear(inChannels, timeEmbedDim, { rng }));
    this.linear2 = this.child("linear_2", new Linear(timeEmbedDim, timeEmbedDim, { rng }));
  }
  forward(x: Tensor): Tensor {
    return this.linear2.forward(this.linear1.forward(x, "silu"));
  }
}
