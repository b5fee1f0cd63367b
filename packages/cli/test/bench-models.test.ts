import { beforeAll, describe, expect, test } from "bun:test";
import { initRuntime, memoryStats } from "@textcraftor/core";
import { SMALL_SIZES, formatModelRow, modelCases, runModelBench } from "../src/bench/models.ts";
import { SMALL_SCALE, runScale } from "../src/bench/scale.ts";
import { SMALL_TRAIN, trainCases } from "../src/bench/training.ts";

beforeAll(async () => {
  await initRuntime();
});

describe("bench models", () => {
  test("the small variant times every model pass and frees what it built", async () => {
    const before = memoryStats().liveBytes;
    // One sample per case: this checks the cases run, not how fast.
    const rows = await runModelBench(modelCases(SMALL_SIZES), undefined, { samples: 1, minSampleMs: 0 });
    expect(rows.map((r) => `${r.model} ${r.pass}`)).toEqual([
      "unet forward",
      "unet forward+backward (∂/∂text, ckpt)",
      "clip-text forward",
      "vae decode",
    ]);
    for (const r of rows) {
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.params).toBeGreaterThan(0);
      // The weights alone are params × 4 bytes, and they stay resident through the timed runs.
      expect(r.peakMiB).toBeGreaterThan((r.params * 1e6 * 4) / 2 ** 20);
      expect(formatModelRow(r)).toContain(r.shape);
    }
    expect(memoryStats().liveBytes).toBe(before);
  }, 120_000);

  test("bench train times text-to-image and a TextCraftor step, and frees models and optimizer state", async () => {
    const before = memoryStats().liveBytes;
    const rows = await runModelBench(trainCases(SMALL_TRAIN), undefined, { samples: 1, minSampleMs: 0 });
    expect(rows.map((r) => `${r.model} ${r.pass}`)).toEqual([
      "sd text-to-image (N=4, CFG)",
      "textcraftor train step (N=4, K=2)",
    ]);
    const [sample, step] = rows as [(typeof rows)[0], (typeof rows)[0]];
    // The step holds two text encoders, the reward's tower and AdamW's two moments beside the SD parts.
    expect(step.params).toBeGreaterThan(sample.params);
    expect(step.peakMiB).toBeGreaterThan((step.params * 1e6 * 4) / 2 ** 20);
    expect(memoryStats().liveBytes).toBe(before);
  }, 120_000);

  test("bench scale: the real step's pool peak is the plan's, f16 frozen weights plan less memory than f32, and all is freed", async () => {
    const rt = await initRuntime();
    const before = memoryStats().liveBytes;
    const f32 = await runScale(rt.gpu, SMALL_SCALE, "f32", "plan");
    const f16 = await runScale(rt.gpu, SMALL_SCALE, "f16", "step");
    expect(f16.plan.problem).toBeNull();
    expect(f16.plan.peakBytes).toBeLessThan(f32.plan.peakBytes);
    expect(f16.plan.parts.map((p) => p.name)).toContain("pickscore image tower");
    expect(f16.measured!.poolPeakBytes - before).toBe(f16.plan.peakBytes);
    expect(f16.measured!.stepSeconds).toBeGreaterThan(0);
    expect(memoryStats().liveBytes).toBe(before);
  }, 300_000);
});
