/** Reward statistics of a model over a prompt set and several seeds (the paper's Parti-Prompts tables). */
import type { StableDiffusion } from "../models/stable-diffusion.ts";
import type { WeightedReward } from "../rewards/combine.ts";
import { noGrad } from "../tensor/autograd.ts";
import { scopeAsync } from "../tensor/scope.ts";
import { textToImage, type TextToImageOptions } from "./text-to-image.ts";

export interface EvaluateOptions extends Omit<TextToImageOptions, "prompts" | "seed" | "onStep" | "embeddingsAt"> {
  seeds: number[];
  batchSize: number;
  /** Per-batch embedding schedule (e.g. controlledEmbeddings with a tuned encoder); disposed after the batch. */
  embeddingsFor?(batch: string[]): { embeddingsAt: TextToImageOptions["embeddingsAt"]; dispose(): void };
  onBatch?(done: number, total: number): void;
  /** Also report "diversity": the mean RMS pixel distance between images of different prompts (same seed). */
  diversity?: boolean;
}

export interface RewardStats {
  mean: number;
  std: number;
  n: number;
  scores: number[];
}

/** Every reward's score for every (seed, prompt) image. */
export async function evaluateRewards(
  sd: StableDiffusion,
  rewards: readonly WeightedReward[],
  prompts: readonly string[],
  o: EvaluateOptions,
): Promise<Map<string, RewardStats>> {
  const scores = new Map(rewards.map((r) => [r.name, [] as number[]]));
  const imagesBySeed = new Map<number, Float32Array[]>();
  const batches = o.seeds.flatMap((seed) =>
    Array.from({ length: Math.ceil(prompts.length / o.batchSize) }, (_, b) => ({
      seed,
      b,
      batch: prompts.slice(b * o.batchSize, (b + 1) * o.batchSize),
    })),
  );
  for (const [i, { seed, b, batch }] of batches.entries()) {
    await scopeAsync(async () => {
      // Each image's noise depends on (seed, prompt index) only: two models compared with the same seeds see the
      // same noise, whatever the batch size, and eval's image k is generate's image k for the same prompt list.
      const control = o.embeddingsFor?.(batch);
      const images = textToImage(sd, {
        ...o,
        prompts: batch,
        seed,
        firstSample: b * o.batchSize,
        embeddingsAt: control?.embeddingsAt,
      });
      control?.dispose();
      for (const { name, reward } of rewards)
        scores.get(name)!.push(...(await noGrad(() => reward.score(images, batch)).toArray()));
      if (o.diversity) {
        const data = await images.toArray(),
          size = data.length / batch.length;
        const list = imagesBySeed.get(seed) ?? [];
        for (let k = 0; k < batch.length; k++) list.push(data.slice(k * size, (k + 1) * size));
        imagesBySeed.set(seed, list);
      }
      images.dispose();
    });
    o.onBatch?.(i + 1, batches.length);
  }
  if (o.diversity) scores.set("diversity", [...imagesBySeed.values()].map(pairwiseDistance));
  return new Map(
    [...scores].map(([name, s]) => {
      const mean = s.reduce((a, b) => a + b, 0) / s.length;
      const std = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, s.length - 1));
      return [name, { mean, std, n: s.length, scores: s }];
    }),
  );
}

/** Mean over pairs of images of their RMS pixel difference: how different the prompts' images are (collapse → 0). */
export function pairwiseDistance(images: readonly Float32Array[]): number {
  let total = 0,
    pairs = 0;
  for (let i = 0; i < images.length; i++)
    for (let j = i + 1; j < images.length; j++) {
      const a = images[i]!,
        b = images[j]!;
      let s = 0;
      for (let k = 0; k < a.length; k++) s += (a[k]! - b[k]!) ** 2;
      total += Math.sqrt(s / a.length);
      pairs++;
    }
  return pairs ? total / pairs : 0;
}
