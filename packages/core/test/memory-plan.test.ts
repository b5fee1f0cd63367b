/**
 * The memory plan (`train --dry-run`) against the peak a real `train()` run reaches: run on a meta device, the plan
 * must land within 15 % of the measured pool peak (the bar) at two sizes and with mixed precision. It runs the
 * trainer's own step code, so it lands on the byte (measured: 51,052,544 and 85,294,848 bytes both ways): 2 % is asserted.
 */
import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { brightness, tinyStableDiffusion } from "./tiny-sd.ts";

const gpu = await T.openDevice();
const prompts = ["a red apple", "a blue car", "a green tree", "a yellow sun"];

async function models(dtype: T.DType) {
  const sd = await tinyStableDiffusion(0, true);
  const frozenTextEncoder = await T.cloneTextEncoder(sd.textEncoder, dtype);
  if (dtype === "f16") {
    sd.unet.half();
    sd.vae.half();
  }
  const parts: [string, T.Module][] = [
    ["text encoder", sd.textEncoder],
    ["UNet", sd.unet],
    ["VAE", sd.vae],
    ["original text encoder", frozenTextEncoder],
  ];
  return { models: { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] }, parts };
}

const cases = [
  { name: "16 px, batch 2, K = 2", resolution: 16, batchSize: 2, gradSteps: 2, dtype: "f32" as const },
  {
    name: "48 px, batch 3, K = 3, f16 frozen weights",
    resolution: 48,
    batchSize: 3,
    gradSteps: 3,
    dtype: "f16" as const,
  },
];

for (const c of cases) {
  test(`the plan is within 2 % of a real run's peak: ${c.name}`, async () => {
    const config: T.TrainConfig = {
      ...T.TRAIN_DEFAULTS,
      steps: 1,
      batchSize: c.batchSize,
      inferenceSteps: 4,
      gradSteps: c.gradSteps,
      resolution: c.resolution,
      lr: 1e-3,
      checkpointEvery: 1,
      sampleEvery: 1,
      seed: 3,
    };
    const plan = await T.planTrainingMemory(gpu, {
      build: () => models(c.dtype),
      config,
      prompts,
      evalPrompts: prompts.slice(0, 2),
    });
    expect(plan.problem).toBeNull();
    expect(plan.parts.map((p) => p.dtype)).toEqual(["f32", c.dtype, c.dtype, c.dtype]);

    const rt = T.useDevice(gpu);
    // The plan's pipelines compiled ahead are every pipeline the real run dispatches (same keys, same code).
    rt.runner.warmUp(plan.pipelines);
    const warm = new Set(rt.runner.pipelineSources().map((p) => p.key));
    expect(plan.pipelines.every((p) => warm.has(p.key))).toBe(true);
    const real = await models(c.dtype);
    rt.pool.resetPeak();
    await T.train({
      models: real.models,
      config,
      prompts,
      evalPrompts: prompts.slice(0, 2),
      runDir: mkdtempSync(join(tmpdir(), "tc-plan-")),
    });
    expect(
      rt.runner
        .pipelineSources()
        .filter((p) => !warm.has(p.key))
        .map((p) => p.key),
    ).toEqual([]);
    const measured = rt.pool.peakBytes;
    if (process.env.TEXTCRAFTOR_REPORT_ERRORS) console.log(c.name, { plan: plan.peakBytes, measured });
    expect(Math.abs(plan.peakBytes - measured) / measured).toBeLessThan(0.02);
    expect(plan.peakBytes).toBeGreaterThan(plan.parts.reduce((s, p) => s + p.bytes, 0) + plan.optimizerBytes);
  }, 600_000);
}

test("a plan past the adapter's limits says why instead of failing later", async () => {
  const config: T.TrainConfig = {
    ...T.TRAIN_DEFAULTS,
    steps: 1,
    batchSize: 1,
    inferenceSteps: 2,
    gradSteps: 1,
    resolution: 16,
  };
  const tight = { ...gpu, info: { ...gpu.info, limits: { ...gpu.info.limits, maxBufferSize: 4096 } } };
  const plan = await T.planTrainingMemory(tight, { build: () => models("f32"), config, prompts });
  expect(plan.problem).toContain("exceeds this adapter's largest buffer");
  expect(T.formatMemoryPlan(plan)).toContain("does not fit this adapter");
});
