/** The weighted reward Σ γᵢ·Rᵢ that TextCraftor maximises, reported per term. */
import { mean } from "../ops/reduce.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LoadedReward } from "./reward.ts";

export interface WeightedReward {
  name: string;
  weight: number;
  reward: LoadedReward;
}

export interface CombinedScore {
  /** Σ γᵢ·mean(Rᵢ) over the batch: a differentiable scalar (the loss is its negative). */
  total: Tensor;
  /** Each term's batch mean, before weighting (scalars, same graph). */
  terms: Map<string, Tensor>;
}

export function combineRewards(
  rewards: readonly WeightedReward[],
  images: Tensor,
  prompts: readonly string[],
): CombinedScore {
  if (!rewards.length) throw new Error("no rewards to combine: give at least one --reward");
  const terms = new Map<string, Tensor>();
  let total: Tensor | null = null;
  for (const { name, weight, reward } of rewards) {
    const scores = reward.score(images, prompts);
    if (scores.size !== images.shape[0])
      throw new Error(`reward "${name}" returned ${scores.size} scores for ${images.shape[0]} images`);
    const m = mean(scores);
    terms.set(name, m);
    const weighted = m.mul(weight);
    total = total ? total.add(weighted) : weighted;
  }
  return { total: total!, terms };
}
