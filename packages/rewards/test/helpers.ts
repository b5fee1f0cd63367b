/**
 * Shared by the reward tests: the fixtures of scripts/fixtures/rewards_golden.py, its input formulas, and a
 * probe of a reward's gradient with respect to the images.
 */
import { join } from "node:path";
import { Tensor, noGrad, runtime, scopeAsync, sum, type LoadedReward, type RewardContext } from "@textcraftor/core";

export const FIXTURES = join(import.meta.dir, "fixtures");

export interface GoldenReward {
  scores: number[];
  derivative: number;
}
export const golden = await Bun.file(join(FIXTURES, "rewards_golden.json")).json();
export const PROMPTS: string[] = golden.prompts;

export const formula = (n: number, fn: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => fn(i));

/** The script's images [2, 3, 40, 40] and the direction of its directional derivatives. */
export const IMAGE_SHAPE = [2, 3, 40, 40];
const IMAGE_SIZE = 2 * 3 * 40 * 40;
export const images = () => formula(IMAGE_SIZE, (i) => 0.5 + 0.45 * Math.sin(0.37 * i) * Math.cos(0.011 * i));
const goldenDirection = () => formula(IMAGE_SIZE, (i) => Math.cos(0.91 * i + 0.3));

export const context = (weights?: string, options: Record<string, string> = {}): RewardContext => ({
  gpu: runtime().gpu,
  weights,
  options,
});

export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export interface GradientProbe {
  scores: Float32Array;
  /** Relative error of g·v against PyTorch's float64 value, for the script's direction v. */
  goldenDerivativeError: number;
  /**
   * Relative gap between g·u and central differences of the GPU score along u = g / rms(g) (the steepest
   * ascent, RMS 1 per pixel), with step `eps`: the autograd gradient against the score it differentiates.
   */
  finiteDifferenceError: number;
}

/** Scores the script's images, backpropagates sum(scores), and checks the gradient both ways. */
export async function probeGradient(reward: LoadedReward, ref: GoldenReward, eps = 3e-4): Promise<GradientProbe> {
  const base = images();
  const score = (x: Tensor) => reward.score(x, PROMPTS);
  return scopeAsync(async () => {
    const x = Tensor.from(base, IMAGE_SHAPE).requireGrad();
    const scores = score(x);
    sum(scores).backward();
    const gradient = await x.grad!.toArray();
    x.grad!.dispose();
    const v = goldenDirection();
    const goldenDerivativeError = Math.abs(dot(gradient, v) - ref.derivative) / Math.abs(ref.derivative);

    const rms = Math.sqrt(dot(gradient, gradient) / gradient.length);
    const u = gradient.map((g) => g / rms);
    const at = (t: number) =>
      noGrad(() =>
        sum(
          score(
            Tensor.from(
              base.map((b, i) => b + t * u[i]!),
              IMAGE_SHAPE,
            ),
          ),
        ),
      ).item();
    const numeric = ((await at(eps)) - (await at(-eps))) / (2 * eps);
    const analytic = dot(gradient, u);
    return {
      scores: await scores.toArray(),
      goldenDerivativeError,
      finiteDifferenceError: Math.abs(analytic - numeric) / Math.abs(analytic),
    };
  });
}
