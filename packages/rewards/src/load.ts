/** From specs to loaded, weighted rewards, ready for combineRewards. */
import type { DType, Gpu, LoadedReward, RewardRegistry, WeightedReward } from "@textcraftor/core";
import type { RewardSpec } from "./spec.ts";

/**
 * Looks each spec up and loads it. Option keys the plugin does not list are rejected, all keys when it lists none
 * (a misspelt key would otherwise be silently ignored); if one reward fails to load, the ones already loaded are disposed.
 */
export async function loadRewards(
  specs: readonly RewardSpec[],
  registry: RewardRegistry,
  gpu: Gpu,
  { weightDtype }: { weightDtype?: DType } = {},
): Promise<WeightedReward[]> {
  const seen = new Set<string>();
  for (const { name } of specs) {
    if (seen.has(name)) throw new Error(`reward "${name}" is given twice; give it once with the summed weight`);
    seen.add(name);
  }
  const plugins = specs.map((spec) => registry.get(spec.name));
  plugins.forEach((plugin, i) => {
    // A plugin that lists no options takes none.
    const options = plugin.options ?? {};
    const unknown = Object.keys(specs[i]!.options).filter((key) => !Object.hasOwn(options, key));
    const known = Object.keys(options).join(", ") || "none";
    if (unknown.length)
      throw new Error(
        `reward "${plugin.name}" has no option ${unknown.map((k) => `"${k}"`).join(", ")}; its options: ${known} (and weights=PATH)`,
      );
  });

  const loaded: WeightedReward[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      let reward: LoadedReward;
      try {
        reward = await plugins[i]!.load({ gpu, weights: spec.weights, options: spec.options, weightDtype });
      } catch (e) {
        const message = (e as Error).message;
        throw new Error(message.includes(`reward "${spec.name}"`) ? message : `reward "${spec.name}": ${message}`, {
          cause: e,
        });
      }
      if (typeof reward?.score !== "function")
        throw new Error(`reward "${spec.name}": load() must resolve to an object with a score(images, prompts) method`);
      loaded.push({ name: spec.name, weight: spec.weight, reward });
    }
  } catch (e) {
    for (const { reward } of loaded) reward.dispose?.();
    throw e;
  }
  return loaded;
}
