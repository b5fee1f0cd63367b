/** The built-in rewards and a registry holding them. */
import { RewardRegistry, type RewardPlugin } from "@textcraftor/core";
import { aesthetic } from "./plugins/aesthetic.ts";
import { clip } from "./plugins/clip.ts";
import { hpsv2 } from "./plugins/hpsv2.ts";
import { brightness, colorfulness, contrast } from "./plugins/image-statistics.ts";
import { pickscore } from "./plugins/pickscore.ts";

/** TextCraftor's four reward models, then the weight-free image statistics. */
export function builtinRewards(): RewardPlugin[] {
  return [aesthetic, clip, pickscore, hpsv2, colorfulness, contrast, brightness];
}

/** A registry with the built-ins and then `extra` plugins (e.g. from loadRewardPlugin). */
export function createRegistry(extra: readonly RewardPlugin[] = []): RewardRegistry {
  const registry = new RewardRegistry();
  for (const plugin of [...builtinRewards(), ...extra]) registry.register(plugin);
  return registry;
}
