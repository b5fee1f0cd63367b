import type { TimestepSpacing } from "./config.ts";

/**
 * "textcraftor" is the TextCraftor repo's DDIM variant (`set_timesteps(N, lead=999)`): leading spacing shifted so
 * the first step is at T−1, i.e. offset T−1 − ratio·(N−1); for 25 steps that is [999, 959, …, 39].
 */
export type Spacing = TimestepSpacing | "textcraftor";

/**
 * Inference timesteps, first (noisiest) first, as diffusers' `set_timesteps` computes them:
 *   leading   ratio = ⌊T/N⌋, t_i = i·ratio + stepsOffset (SD 1.5, 25 steps: 961, 921, …, 1);
 *   trailing  ratio = T/N, round(T − i·ratio) − 1 (25 steps: 999, 959, …, 39);
 *   linspace  N points from 0 to T−1, not rounded here (DDIM rounds them, Euler keeps fractions).
 */
export function spacedTimesteps(
  numTrainTimesteps: number,
  numInferenceSteps: number,
  spacing: Spacing,
  stepsOffset: number,
): number[] {
  const T = numTrainTimesteps;
  const N = numInferenceSteps;
  if (!Number.isInteger(N) || N < 1 || N > T)
    throw new Error(`numInferenceSteps must be an integer in 1..${T}, got ${N}`);
  const ascending = (count: number, at: (i: number) => number) =>
    Array.from({ length: count }, (_, i) => at(i)).reverse();
  switch (spacing) {
    case "leading":
      return ascending(N, (i) => i * Math.floor(T / N) + stepsOffset);
    case "textcraftor": {
      const ratio = Math.floor(T / N);
      return ascending(N, (i) => i * ratio + (T - 1 - ratio * (N - 1)));
    }
    case "trailing": {
      // np.arange(T, 0, -ratio) to the last bit: numpy fills T + i·δ with δ = (T − ratio) − T, and the length
      // ceil(T / ratio) is N + 1 for some N (61, 103, …), which diffusers then keeps.
      const ratio = T / N;
      const delta = T - ratio - T;
      return Array.from({ length: Math.ceil(T / ratio) }, (_, i) => roundHalfEven(T + i * delta) - 1);
    }
    case "linspace":
      return ascending(N, (i) => (N === 1 ? 0 : i === N - 1 ? T - 1 : i * ((T - 1) / (N - 1))));
  }
}

/** numpy's round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
