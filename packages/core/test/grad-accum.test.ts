/**
 * Gradient accumulation: N micro-batches of B, their gradients summed as one batch of N×B. Each sample's noise
 * comes from its index in the step's global batch, so the accumulated run must land where the single big batch does.
 */
import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { relError } from "./gradcheck.ts";
import { brightness, tinyStableDiffusion } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const prompts = ["a red apple", "a blue car", "a green tree", "a yellow sun", "a white cat", "a black dog"];

async function trainWith(batchSize: number, gradAccum: number) {
  const sd = await tinyStableDiffusion(0);
  const frozenTextEncoder = await T.cloneTextEncoder(sd.textEncoder);
  const config: T.TrainConfig = {
    ...T.TRAIN_DEFAULTS,
    steps: 3,
    batchSize,
    gradAccum,
    inferenceSteps: 4,
    gradSteps: 2,
    resolution: 16,
    lr: 3e-3,
    checkpointEvery: 3,
    sampleEvery: 100,
    seed: 7,
  };
  const metrics: T.StepMetrics[] = [];
  await T.train({
    models: { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] },
    config,
    prompts,
    runDir: mkdtempSync(join(tmpdir(), "tc-accum-")),
    onStep: (m) => metrics.push(m),
  });
  const weights = await sd.textEncoder.stateDict();
  sd.dispose();
  frozenTextEncoder.dispose();
  return { weights, metrics };
}

test("--grad-accum 2 --batch-size 2 ends with the weights of --batch-size 4 after 3 steps", async () => {
  const whole = await trainWith(4, 1),
    accumulated = await trainWith(2, 2);
  let worst = 0;
  for (const [name, t] of whole.weights) worst = Math.max(worst, relError(accumulated.weights.get(name)!.data, t.data));
  if (process.env.TEXTCRAFTOR_REPORT_ERRORS) console.log("worst relative difference of a weight:", worst);
  expect(worst).toBeLessThan(1e-5);
  // One metrics line per optimizer step, with the global batch's loss and rewards.
  expect(accumulated.metrics).toHaveLength(3);
  accumulated.metrics.forEach((m, i) => {
    expect(m.loss).toBeCloseTo(whole.metrics[i]!.loss, 5);
    expect(m.rewards.brightness!).toBeCloseTo(whole.metrics[i]!.rewards.brightness!, 5);
  });
}, 600_000);
