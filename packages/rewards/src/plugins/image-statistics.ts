/**
 * Rewards computed from pixel statistics, with no weights: for demos, tests and as regularisers. Each is
 * per image over its H×W pixels, on values in [0, 1], differentiable everywhere: standard deviations are
 * sqrt(mean(x²) − mean(x)² + ε) with ε = 1e-6, so a flat image still has a finite gradient.
 */
import { Tensor, conv2d, mean, sqrt, square, sum, type LoadedReward, type RewardPlugin } from "@textcraftor/core";
import { checkImages } from "../preprocess.ts";

const EPS = 1e-6;
/** ITU-R BT.601 luma, as PIL's convert("L"). */
const LUMA = [0.299, 0.587, 0.114];

/**
 * `colorfulness`, Hasler and Süsstrunk's M = σ_rgyb + 0.3·μ_rgyb with the opponent channels rg = R − G and
 * yb = (R + G)/2 − B, σ_rgyb = sqrt(σ_rg² + σ_yb²) and μ_rgyb = sqrt(μ_rg² + μ_yb²) (each with + ε under
 * the root). On [0, 1] values: the paper's 0–255 scale is 255 times this.
 */
export const colorfulness = imageStatistic(
  "colorfulness",
  "Hasler-Süsstrunk colourfulness σ_rgyb + 0.3·μ_rgyb (no weights)",
  (images) => {
    const opponent = mixChannels(images, [
      [1, -1, 0],
      [0.5, 0.5, -1],
    ]);
    const mu = mean(opponent, [2, 3]);
    const variance = mean(square(opponent), [2, 3]).sub(square(mu));
    return sqrt(sum(variance, 1).add(EPS)).add(sqrt(sum(square(mu), 1).add(EPS)).mul(0.3));
  },
);

/** `contrast`: the standard deviation of the luma Y = 0.299·R + 0.587·G + 0.114·B (RMS contrast). */
export const contrast = imageStatistic(
  "contrast",
  "RMS contrast: standard deviation of luma (no weights)",
  (images) => {
    const luma = mixChannels(images, [LUMA]);
    return sqrt(
      mean(square(luma), [1, 2, 3])
        .sub(square(mean(luma, [1, 2, 3])))
        .add(EPS),
    );
  },
);

/** `brightness`: −(mean luma − target)², highest (0) at the target mean luma (option target, default 0.5). */
export const brightness: RewardPlugin = {
  name: "brightness",
  description: "−(mean luma − target)², pulls images towards a target brightness (no weights)",
  needs: "image",
  options: { target: "the mean luma in [0, 1] that scores best (default 0.5)" },
  async load({ options }) {
    const target = Number(options.target ?? 0.5);
    if (options.target?.trim() === "" || !Number.isFinite(target))
      throw new Error(`option target=${options.target}: expected a number, e.g. target=0.5`);
    return {
      score(images) {
        checkImages(images);
        return square(mean(mixChannels(images, [LUMA]), [1, 2, 3]).sub(target)).neg();
      },
    };
  },
};

function imageStatistic(name: string, description: string, statistic: (images: Tensor) => Tensor): RewardPlugin {
  const loaded: LoadedReward = {
    score(images) {
      checkImages(images);
      return statistic(images);
    },
  };
  return { name, description, needs: "image", load: async () => loaded };
}

/** A fixed per-pixel colour transform as a 1×1 convolution: each row of `matrix` mixes R, G, B into one channel. */
function mixChannels(images: Tensor, matrix: number[][]): Tensor {
  return conv2d(images, Tensor.from(matrix.flat(), [matrix.length, 3, 1, 1]));
}
