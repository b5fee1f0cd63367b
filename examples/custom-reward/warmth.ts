/**
 * A complete custom reward in one file: `warmth` = mean(R − B) over each image's pixels, which favours
 * warm (orange) tones over cool (blue) ones.
 *
 *   bun run cli train --reward-plugin examples/custom-reward/warmth.ts --reward warmth=2 --reward clip=50:weights=...
 *
 * A plugin is a default export with a name, a one-line description, what it needs ("image" or
 * "image+prompt") and `load`, which gets the device, the weights path and the options of its `--reward`
 * spec, and returns `score(images, prompts)`: images [B, 3, H, W] in [0, 1] → one score per image, [B],
 * higher is better. Build the score from @textcraftor/core's ops so that it is differentiable: the trainer
 * backpropagates through it into the text encoder.
 */
import { mean, slice, type RewardPlugin } from "@textcraftor/core";

export default {
  name: "warmth",
  description: "mean(R − B): favours warm colours (example plugin)",
  needs: "image",
  async load() {
    return {
      score: (images) => mean(slice(images, 1, 0, 1).sub(slice(images, 1, 2, 3)), [1, 2, 3]),
    };
  },
} satisfies RewardPlugin;
