/** Train settings that would fail deep inside a step are refused up front, naming the setting. */
import { describe, expect, test } from "bun:test";
import { TRAIN_DEFAULTS, validateTrainConfig, type TrainConfig } from "../src/index.ts";

const check = (change: Partial<TrainConfig>, factor?: number) => () =>
  validateTrainConfig({ ...TRAIN_DEFAULTS, ...change }, factor);

describe("validateTrainConfig", () => {
  test("the paper's defaults and the bundled model's settings pass", () => {
    expect(check({}, 8)()).toMatchObject({ inferenceSteps: 25, gradSteps: 5 });
    expect(check({ resolution: 32, inferenceSteps: 6, gradSteps: 3, lr: 1e-3, lora: { rank: 4 } }, 4)).not.toThrow();
  });

  test.each([
    [{ steps: 0 }, "steps must be a positive integer (got 0)"],
    [{ batchSize: 1.5 }, "batchSize must be a positive integer (got 1.5)"],
    [{ seed: -1 }, "seed must be a non-negative integer (got -1)"],
    [{ maxBadSteps: -1 }, "maxBadSteps must be a non-negative integer (got -1)"],
    [{ gradSteps: 26 }, "gradSteps (26) cannot exceed inferenceSteps (25)"],
    [{ lr: 0 }, "lr must be > 0 (got 0)"],
    [{ lr: Number.NaN }, "lr must be > 0 (got NaN)"],
    [{ weightDecay: -0.1 }, "weightDecay must be >= 0 (got -0.1)"],
    [{ beta2: 1 }, "AdamW betas must be in [0, 1) (got 0.9, 1)"],
    [{ eps: 0 }, "eps must be > 0 (got 0)"],
    [{ guidanceScale: Number.POSITIVE_INFINITY }, "guidanceScale must be a finite number (got Infinity)"],
    [{ lora: { rank: 0 } }, "LoRA rank must be a positive integer (got 0)"],
    [{ lora: { rank: 4, alpha: -1 } }, "LoRA alpha must be > 0 (got -1)"],
  ] as [Partial<TrainConfig>, string][])("%p is refused", (change, message) => {
    expect(check(change)).toThrow(`train config: ${message}`);
  });

  test("the resolution must be a multiple of the VAE's downscale, with a suggestion", () => {
    expect(check({ resolution: 30 }, 4)).toThrow(
      "train config: resolution 30 must be a multiple of 4 (the VAE's downscale), e.g. 32",
    );
    expect(check({ resolution: 500 }, 8)).toThrow("e.g. 504");
    expect(check({ resolution: 30 })).not.toThrow(); // no model, no factor to check against
  });
});
