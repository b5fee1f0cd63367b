/** clip, pickscore and hpsv2 on tiny checkpoints in their published layouts, against PyTorch goldens. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, initRuntime, scope, type LoadedReward } from "@textcraftor/core";
import { clip, hpsv2, pickscore, readClipCheckpoint, textTower, visionTower } from "../src/index.ts";
import { FIXTURES, PROMPTS, context, golden, probeGradient, relError, type GoldenReward } from "./helpers.ts";

const PICKSCORE = join(FIXTURES, "pickscore");
const HPSV2 = join(FIXTURES, "hpsv2/HPS_v2_compressed.pt");
const loaded: LoadedReward[] = [];
const load = async (plugin: typeof clip, weights: string, options: Record<string, string> = {}) => {
  const reward = await plugin.load(context(weights, options));
  loaded.push(reward);
  return reward;
};

beforeAll(async () => {
  await initRuntime();
});
afterAll(() => {
  for (const reward of loaded) reward.dispose?.();
});

const cases: [string, typeof clip, string, GoldenReward][] = [
  ["pickscore (transformers CLIPModel folder, exp(logit_scale)·cos)", pickscore, PICKSCORE, golden.pickscore],
  ["hpsv2 (open_clip names under state_dict, .pt file)", hpsv2, HPSV2, golden.hpsv2],
  ["clip on the transformers checkpoint", clip, PICKSCORE, golden.clip_on_pickscore_weights],
  ["clip on the open_clip checkpoint", clip, HPSV2, golden.hpsv2],
];

describe.each(cases)("%s", (_, plugin, weights, ref) => {
  test("scores match PyTorch; the image gradient matches PyTorch and finite differences", async () => {
    const reward = await load(plugin, weights);
    const probe = await probeGradient(reward, ref);
    expect(relError(probe.scores, ref.scores)).toBeLessThan(1e-4);
    expect(probe.goldenDerivativeError).toBeLessThan(1e-4);
    expect(probe.finiteDifferenceError).toBeLessThan(1e-2);
  });
});

test("the reward models are frozen, so backward through a score leaves their weights without gradients", async () => {
  const checkpoint = await readClipCheckpoint(PICKSCORE, { fallback: { activation: "gelu", reason: "test" } });
  const towers = [visionTower(checkpoint), textTower(checkpoint, 49408)];
  for (const tower of towers) {
    expect(tower.parameters().some((p) => p.requiresGrad)).toBe(false);
    tower.dispose();
  }
});

describe("CLIP reward errors", () => {
  test("no weights: names the reward and the files it expects", async () => {
    await expect(pickscore.load(context())).rejects.toThrow(
      'reward "pickscore" needs weights: add :weights=PATH to its spec (--reward pickscore=1:weights=PATH); it expects config.json + model.safetensors',
    );
    await expect(hpsv2.load(context("/nonexistent/HPS_v2_compressed.pt"))).rejects.toThrow(
      "/nonexistent/HPS_v2_compressed.pt does not exist",
    );
  });

  test("weights of another architecture name the tensor and both shapes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pickscore-"));
    try {
      copyFileSync(join(PICKSCORE, "pytorch_model.bin"), join(dir, "pytorch_model.bin"));
      const config = await Bun.file(join(PICKSCORE, "config.json")).json();
      writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, projection_dim: 12 }));
      await expect(pickscore.load(context(dir))).rejects.toThrow(
        'tensor "text_projection.weight": expected shape [12,16], found [8,16]',
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("an image-only checkpoint, a non-CLIP file and a wrong prompt count say what is wrong", async () => {
    await expect(clip.load(context(join(FIXTURES, "aesthetic/clip")))).rejects.toThrow(
      "holds only an image tower; this reward also needs the text tower",
    );
    await expect(clip.load(context(join(FIXTURES, "aesthetic/tiny-linearMSE.pth")))).rejects.toThrow(
      "is not a CLIP checkpoint",
    );
    await expect(clip.load(context(PICKSCORE, { preprocess: "bicubic" }))).rejects.toThrow(
      "option preprocess=bicubic: expected pool or resize-crop",
    );
    const reward = await load(clip, PICKSCORE);
    expect(() => scope(() => reward.score(Tensor.zeros([2, 3, 32, 32]), PROMPTS.slice(0, 1)))).toThrow(
      'reward "clip": 1 prompts for 2 images',
    );
  });
});
