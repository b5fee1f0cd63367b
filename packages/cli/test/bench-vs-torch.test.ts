import { beforeAll, expect, test } from "bun:test";
import { initRuntime, memoryStats } from "@textcraftor/core";
import { timeGpu } from "../src/bench/timing.ts";
import { TINY_SIZES, modelVsTorchCases, runVsTorch, tinyStepCase } from "../src/bench/vs-torch.ts";

beforeAll(async () => {
  await initRuntime();
});

test("a whole-model timing without a minimum sample length runs once to warm up, then once per sample", async () => {
  let runs = 0;
  const t = await timeGpu(() => runs++, { samples: 3, minSampleMs: 0 });
  expect(runs).toBe(4);
  expect(t.samples).toHaveLength(3);
  expect(t.reps).toBe(1);
});

test("the models against PyTorch: UNet and ViT, forward and forward+backward, with dispatches, all freed", async () => {
  const before = memoryStats().liveBytes;
  // Tiny widths, one sample: this checks the cases run under the names bench/torch_models.py gives them.
  const rows = await runVsTorch(modelVsTorchCases(TINY_SIZES), 1);
  expect(rows.map((r) => `${r.model} ${r.pass} ${r.shape}`)).toEqual([
    "unet forward 1×4×8², text 1×77×64",
    "unet forward+backward (∂/∂text) 1×4×8², text 1×77×64",
    "vit forward 1×3×56² → image embeds",
    "vit forward+backward (∂/∂pixels) 1×3×56² → image embeds",
  ]);
  for (const r of rows) {
    expect(r.medianMs).toBeGreaterThan(0);
    expect(r.params).toBeGreaterThan(0);
  }
  // The backward passes encode more kernels than the forward ones they contain.
  expect(rows[1]!.dispatches).toBeGreaterThan(rows[0]!.dispatches);
  expect(rows[3]!.dispatches).toBeGreaterThan(rows[2]!.dispatches);
  expect(memoryStats().liveBytes).toBe(before);
}, 300_000);

test("the tiny model's training step runs on the trainer fixture and counts its dispatches", async () => {
  const before = memoryStats().liveBytes;
  const [row] = await runVsTorch([tinyStepCase()], 1);
  expect(row!.pass).toBe("train step (N=4, K=2) + AdamW");
  expect(row!.params).toBeCloseTo(1.6, 1); // the trained text encoder (49408×32 token table and two layers)
  expect(row!.dispatches).toBeGreaterThan(100);
  expect(memoryStats().liveBytes).toBe(before);
}, 300_000);
