/**
 * The reward plugin interface. Core defines it and never names a concrete reward: plugins (packages/rewards,
 * or a user's own file) register in a `RewardRegistry`, and the trainer combines them by weight.
 */
import type { Gpu } from "../device/open-device.ts";
import type { DType, Tensor } from "../tensor/tensor.ts";

/** What a reward looks at: the image alone, or the image with its prompt. */
export type RewardInput = "image" | "image+prompt";

export interface RewardContext {
  gpu: Gpu;
  /** Where this reward's weights are (a file or folder the user gave), if it needs any. */
  weights?: string;
  /** Plugin-specific settings from the command line or config (`--reward name=weight:weights=PATH:key=value`). */
  options: Record<string, string>;
  /**
   * How to store the reward model's weights: "f16" under mixed precision (rewards are always frozen). Build
   * modules under `withParamDtype(context.weightDtype ?? "f32", ...)` to honour it.
   */
  weightDtype?: DType;
}

export interface LoadedReward {
  /**
   * One differentiable score per image, [B]. `images` is [B, 3, H, W] in [0, 1]; `prompts` has B entries.
   * Higher is better. The trainer maximises Σ γ·score.
   */
  score(images: Tensor, prompts: readonly string[]): Tensor;
  /** One line on how it was set up where a file could be read more than one way (a CLIP's activation), for logs. */
  info?: string;
  dispose?(): void;
}

export interface RewardPlugin {
  /** Registry key, e.g. "aesthetic"; lowercase, no spaces. */
  name: string;
  /** One line for `cli rewards`. */
  description: string;
  needs: RewardInput;
  /** Files `load` expects under `weights` (shown in errors and in `cli rewards`); empty when none. */
  weightFiles?: string[];
  /** The `options` keys `load` reads, each with one line of help; loaders reject keys not listed here. */
  options?: Record<string, string>;
  load(context: RewardContext): Promise<LoadedReward>;
}

export class RewardRegistry {
  private readonly plugins = new Map<string, RewardPlugin>();

  register(plugin: RewardPlugin): this {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(plugin.name))
      throw new Error(`reward name "${plugin.name}" must be lowercase letters, digits, "-" or "_"`);
    if (this.plugins.has(plugin.name)) throw new Error(`a reward named "${plugin.name}" is already registered`);
    this.plugins.set(plugin.name, plugin);
    return this;
  }

  get(name: string): RewardPlugin {
    const plugin = this.plugins.get(name);
    if (!plugin)
      throw new Error(
        `unknown reward "${name}"; known rewards: ${[...this.plugins.keys()].sort().join(", ") || "(none registered)"}`,
      );
    return plugin;
  }

  list(): RewardPlugin[] {
    return [...this.plugins.values()];
  }
}
