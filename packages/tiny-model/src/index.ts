/**
 * The bundled tiny model: a diffusers folder in SD 1.x's classes (32×32 emoji, 8×8×4 latents), the tiny
 * CLIP that serves as its alignment reward, the held-in/held-out prompt split, and the settings that make
 * `bun run cli train` a few minutes on a CPU. `recipe/` retrains all of it (`bun run recipe:tiny`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TrainConfig } from "@textcraftor/core";

// Not import.meta.dir: that is Bun's alone, and the published package runs under Node and Deno too.
const root = fileURLToPath(new URL("..", import.meta.url));

export const TINY_MODEL = join(root, "sd");
export const TINY_CLIP = join(root, "clip");
export const TINY_TRAIN_PROMPTS = join(root, "prompts/train.txt");
export const TINY_HELDOUT_PROMPTS = join(root, "prompts/heldout.txt");

/** Training settings for the tiny model where they differ from the paper's SD 1.5 ones. */
export const TINY_TRAIN_SETTINGS: Partial<TrainConfig> = {
  steps: 80,
  batchSize: 4,
  inferenceSteps: 6,
  gradSteps: 3,
  guidanceScale: 5,
  lr: 1e-3,
  resolution: 32,
  checkpointEvery: 40,
  sampleEvery: 40,
  // Its activations are a few MiB, and recomputing them would cost 40 % of each step.
  gradientCheckpointing: false,
};

/**
 * The default reward mix: colourfulness, held to the prompt by the tiny CLIP (TextCraftor's constraint). A lower
 * CLIP weight lets the CLIP score slip, a higher one slows the colourfulness gain (the sweep in docs/RESULTS.md).
 */
export const TINY_REWARDS = ["colorfulness=1", `clip=1.5:weights=${TINY_CLIP}`];

/** How many held-out prompts the before/after grids show. */
export const TINY_GRID_PROMPTS = 8;

export function tinyPrompts(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}
