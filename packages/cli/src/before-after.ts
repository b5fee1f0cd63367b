/**
 * The before/after picture of a run, chosen from the end-of-run evaluation rather than the first grid prompts:
 * prompts spread evenly over the ranking of their paired gain in the weighted reward, from the largest gain to the
 * largest loss, so the picture shows what changed and how unevenly, without showing only the best cases.
 */
import {
  controlledEmbeddings,
  gridPng,
  noGrad,
  splitBatch,
  textToImage,
  writeFileAtomic,
  type CLIPTextModel,
  type RewardStats,
  type StableDiffusion,
  type TextToImageOptions,
} from "@textcraftor/core";

/**
 * Indices of `count` prompts, best gain first: per prompt, Σ weight·(tuned − base) summed over the seeds (the
 * scores are seed-major, as evaluateRewards lists them), then every k-th of the ranking.
 */
export function spreadByGain(
  promptCount: number,
  base: ReadonlyMap<string, RewardStats>,
  tuned: ReadonlyMap<string, RewardStats>,
  weights: Record<string, number>,
  count: number,
): number[] {
  const gain = new Array<number>(promptCount).fill(0);
  for (const [name, weight] of Object.entries(weights)) {
    const b = base.get(name)!.scores,
      t = tuned.get(name)!.scores;
    b.forEach((x, i) => {
      gain[i % promptCount]! += weight * (t[i]! - x);
    });
  }
  const ranked = [...gain.keys()].sort((i, j) => gain[j]! - gain[i]!);
  if (ranked.length <= count) return ranked;
  return Array.from({ length: count }, (_, k) => ranked[Math.round((k * (ranked.length - 1)) / (count - 1))]!);
}

/** Top row base, bottom row tuned (the paper's hybrid sampling), at the first evaluation seed. */
export async function writeBeforeAfter(
  path: string,
  sd: StableDiffusion,
  original: CLIPTextModel,
  tuned: CLIPTextModel,
  prompts: string[],
  o: Omit<TextToImageOptions, "prompts" | "embeddingsAt"> & { lastSteps: number },
): Promise<void> {
  const { lastSteps, ...options } = o;
  const render = async (embeddingsAt?: TextToImageOptions["embeddingsAt"]) => {
    const images = noGrad(() => textToImage({ ...sd, textEncoder: original }, { ...options, prompts, embeddingsAt }));
    const data = await images.toArray();
    const split = splitBatch(data, images.shape);
    images.dispose();
    return split;
  };
  const before = await render();
  const control = controlledEmbeddings(sd, prompts, "", { original, mix: [{ encoder: tuned, weight: 1 }], lastSteps });
  const after = await render(control.embeddingsAt);
  control.dispose();
  await writeFileAtomic(path, gridPng([...before, ...after], prompts.length));
}
