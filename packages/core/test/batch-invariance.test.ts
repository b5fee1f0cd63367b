/**
 * Results must not depend on how prompts are batched: the same prompts and seeds give the same per-image
 * scores at batch sizes 1, 3 and 16, for sampling, evaluation and a training step's reward graph.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import * as T from "../src/index.ts";
import { rewardGraph } from "../src/training/step.ts";
import { TINY_TEXT_CONFIG, tinyStableDiffusion } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const PROMPTS = Array.from({ length: 16 }, (_, i) => `prompt number ${i} ${"abcdefghijklmnop"[i]}`);
const SIZES = [1, 3, 16];

/** A per-image reward that is not symmetric in the channels, so a mixed-up image would show. */
const weighted: T.LoadedReward = {
  score: (images) =>
    T.mean(images.mul(T.Tensor.from([0.2, 0.5, 0.3], [1, 3, 1, 1])).reshape([images.shape[0]!, -1]), 1),
};

const batches = <X>(xs: readonly X[], size: number) =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, b) => xs.slice(b * size, (b + 1) * size));

function expectClose(actual: readonly number[], expected: readonly number[]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) =>
    expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected[i]!))),
  );
}

describe("batch invariance", () => {
  test.each(["ddim", "euler-ancestral"] as const)(
    "textToImage (%s): a batch cut from a prompt list draws the images the whole list gives",
    async (scheduler) => {
      const sd = await tinyStableDiffusion(3);
      const options = { seed: 11, steps: 2, height: 16, width: 16, scheduler };
      const pixels = async (prompts: string[], firstSample: number) => {
        const images = T.textToImage(sd, { ...options, prompts, firstSample });
        const data = await images.toArray();
        images.dispose();
        return Array.from(data);
      };
      const whole = await pixels(PROMPTS, 0);
      for (const size of [1, 3]) {
        const parts: number[] = [];
        for (const [b, part] of batches(PROMPTS, size).entries()) parts.push(...(await pixels(part, b * size)));
        expect(parts.length).toBe(whole.length);
        expect(Math.max(...parts.map((v, i) => Math.abs(v - whole[i]!)))).toBeLessThanOrEqual(1e-5);
      }
      expect(() => T.textToImage(sd, { ...options, prompts: PROMPTS, firstSample: -1 })).toThrow(/firstSample/);
      sd.dispose();
    },
  );

  test("evaluateRewards: every per-image score is the same at batch sizes 1, 3 and 16", async () => {
    const sd = await tinyStableDiffusion(4);
    const rewards = [{ name: "weighted", weight: 1, reward: weighted }];
    const scores = [];
    for (const batchSize of SIZES) {
      const stats = await T.evaluateRewards(sd, rewards, PROMPTS, {
        seeds: [7],
        batchSize,
        steps: 2,
        height: 16,
        width: 16,
      });
      scores.push(stats.get("weighted")!.scores);
    }
    expect(scores[0]!.length).toBe(PROMPTS.length);
    // Different prompts do give different images: the comparison below is not between constants.
    expect(new Set(scores[0]!.map((s) => s.toFixed(6))).size).toBe(PROMPTS.length);
    expectClose(scores[1]!, scores[0]!);
    expectClose(scores[2]!, scores[0]!);
    sd.dispose();
  });

  test("a training step: each image's reward is the same whether the step's batch holds 1, 3 or 16 prompts", async () => {
    const sd = await tinyStableDiffusion(5);
    const frozen = T.withInitMode("none", () => new T.CLIPTextModel(T.parseCLIPTextConfig(TINY_TEXT_CONFIG)));
    frozen.loadStateDict(await sd.textEncoder.stateDict());
    const seen: T.Tensor[] = [];
    const recording: T.LoadedReward = {
      score: (images, prompts) => {
        const s = weighted.score(images, prompts);
        seen.push(s);
        return s;
      },
    };
    const models = { sd, frozenTextEncoder: frozen, rewards: [{ name: "weighted", weight: 1, reward: recording }] };
    const c: T.TrainConfig = {
      ...T.TRAIN_DEFAULTS,
      inferenceSteps: 3,
      gradSteps: 2,
      resolution: 16,
      seed: 9,
      gradientCheckpointing: false,
    };
    const sampler = T.ddimFor(sd, c.inferenceSteps, c.spacing);
    // Step s of a run with batch size B draws the noise of images s·B … s·B + B − 1: only whole batches line up.
    const perImage = async (size: number) => {
      const out: number[] = [];
      for (const [step, part] of batches(PROMPTS, size).entries()) {
        if (part.length < size) break;
        out.push(
          ...(await T.scopeAsync(async () => {
            seen.length = 0;
            T.noGrad(() => rewardGraph(models, sampler, c, part, step));
            return Array.from(await seen[0]!.toArray());
          })),
        );
      }
      return out;
    };
    const [one, three, sixteen] = [await perImage(1), await perImage(3), await perImage(16)];
    expectClose(three, one.slice(0, three.length));
    expectClose(sixteen, one);
    sd.dispose();
    frozen.dispose();
  });
});
