/**
 * Scores the base model and the tuned one on the same prompts and seeds (so each image has its pair): the
 * evaluation at the end of `train` and `eval --base`. The tuned side samples as the paper evaluates: the
 * original encoder for the first steps, the tuned one (at `tunedWeight`) for the last `lastSteps`.
 */
import {
  controlledEmbeddings,
  evaluateRewards,
  type CLIPTextModel,
  type EvaluateOptions,
  type RewardStats,
  type StableDiffusion,
  type WeightedReward,
} from "@textcraftor/core";
import { pairedComparison, type PairedRow } from "./paired.ts";

export interface BaseVsTuned {
  base: Map<string, RewardStats>;
  tuned: Map<string, RewardStats>;
  rows: PairedRow[];
}

export async function evaluateBaseVsTuned(
  sd: StableDiffusion,
  original: CLIPTextModel,
  tuned: CLIPTextModel,
  rewards: readonly WeightedReward[],
  prompts: readonly string[],
  o: Omit<EvaluateOptions, "embeddingsFor"> & { lastSteps: number; tunedWeight?: number },
): Promise<BaseVsTuned> {
  const { lastSteps, tunedWeight: w = 1, onBatch, ...options } = o;
  const base = await evaluateRewards({ ...sd, textEncoder: original }, rewards, prompts, {
    ...options,
    onBatch: onBatch && ((done, total) => onBatch(done, 2 * total)),
  });
  const mix = [
    { encoder: original, weight: 1 - w },
    { encoder: tuned, weight: w },
  ];
  const after = await evaluateRewards({ ...sd, textEncoder: original }, rewards, prompts, {
    ...options,
    onBatch: onBatch && ((done, total) => onBatch(total + done, 2 * total)),
    embeddingsFor: (batch) => controlledEmbeddings(sd, batch, "", { original, mix, lastSteps }),
  });
  return { base, tuned: after, rows: pairedComparison(base, after) };
}
