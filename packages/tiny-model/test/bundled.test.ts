/** The committed tiny model: complete, small, in the recipe's architecture, and usable by the pipeline and the rewards. */
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { initRuntime, loadStableDiffusion, readWeights, textToImage } from "@textcraftor/core";
import { createRegistry, loadRewards, parseRewardSpec } from "@textcraftor/rewards";
import {
  TINY_CLIP,
  TINY_HELDOUT_PROMPTS,
  TINY_MODEL,
  TINY_REWARDS,
  TINY_TRAIN_PROMPTS,
  tinyPrompts,
} from "../src/index.ts";
import { CLIP_CONFIG, TEXT_CONFIG, UNET_CONFIG, VAE_CONFIG } from "../recipe/configs.ts";

const bytesUnder = (dir: string): number =>
  readdirSync(dir).reduce((n, f) => {
    const p = join(dir, f);
    return n + (statSync(p).isDirectory() ? bytesUnder(p) : statSync(p).size);
  }, 0);
const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));

describe("the bundled tiny model", () => {
  test("is a diffusers folder plus a CLIP folder, at most 15 MB together, with the recipe's configs", () => {
    expect(bytesUnder(TINY_MODEL) + bytesUnder(TINY_CLIP)).toBeLessThanOrEqual(15 * 2 ** 20);
    expect(json(join(TINY_MODEL, "text_encoder/config.json"))).toMatchObject(TEXT_CONFIG);
    expect(json(join(TINY_MODEL, "unet/config.json"))).toMatchObject(UNET_CONFIG);
    const { scaling_factor, ...vae } = VAE_CONFIG;
    const saved = json(join(TINY_MODEL, "vae/config.json"));
    expect(saved).toMatchObject(vae);
    expect(saved.scaling_factor).toBeGreaterThan(0);
    expect(scaling_factor).toBe(1); // the recipe's placeholder, replaced by the measured one
    expect(json(join(TINY_CLIP, "config.json"))).toMatchObject(CLIP_CONFIG);
  });

  test("held-in and held-out prompts are disjoint", () => {
    const train = new Set(tinyPrompts(TINY_TRAIN_PROMPTS)),
      heldOut = tinyPrompts(TINY_HELDOUT_PROMPTS);
    expect(train.size).toBeGreaterThan(1000);
    expect(heldOut.length).toBeGreaterThan(100);
    expect(heldOut.filter((p) => train.has(p))).toEqual([]);
  });

  test("the diffusion model's text encoder is the CLIP reward's text tower", async () => {
    const sd = await readWeights(join(TINY_MODEL, "text_encoder/model.safetensors"));
    const clip = await readWeights(join(TINY_CLIP, "model.safetensors"));
    for (const [name, t] of sd) expect(Array.from(clip.get(name)!.data)).toEqual(Array.from(t.data));
  });

  test("generates finite 32×32 images that depend on the prompt, scored by the default rewards", async () => {
    const rt = await initRuntime();
    const sd = await loadStableDiffusion(TINY_MODEL);
    const prompts = ["red apple", "blue heart"];
    const images = textToImage(sd, { prompts, steps: 4, guidanceScale: 5, height: 32, width: 32, seed: 3 });
    expect(images.shape).toEqual([2, 3, 32, 32]);
    const data = await images.toArray();
    expect(data.every((v) => v >= 0 && v <= 1)).toBe(true);
    const half = data.length / 2;
    let diff = 0;
    for (let i = 0; i < half; i++) diff += Math.abs(data[i]! - data[half + i]!);
    expect(diff / half).toBeGreaterThan(0.01);
    const rewards = await loadRewards(TINY_REWARDS.map(parseRewardSpec), createRegistry(), rt.gpu);
    for (const { name, reward } of rewards) {
      const scores = await reward.score(images, prompts).toArray();
      expect(scores.every(Number.isFinite), name).toBe(true);
      if (name === "clip") expect(scores.every((s) => s >= -1 && s <= 1)).toBe(true);
      reward.dispose?.();
    }
    images.dispose();
    sd.dispose();
  });
});
