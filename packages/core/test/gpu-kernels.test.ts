/**
 * On a CPU driver (CI's lavapipe) the runtime picks the barrier-free kernel variants, so the model tests never
 * run the tiled kernels a GPU uses. This file binds the tiled ones and repeats the PyTorch golden training step
 * (text encoder, UNet, VAE, CFG, autograd, checkpointing): the GPU code path inside whole models, checked in CI.
 * The kernels themselves are checked one by one against their CPU references in packages/webgpu-kernels.
 */
import { beforeAll, expect, test } from "bun:test";
import * as T from "../src/index.ts";
import { checkTrainingStepGolden } from "./trainer-golden.ts";

beforeAll(async () => {
  T.useDevice(await T.openDevice(), { kernels: "gpu" });
});

test("the golden training step matches PyTorch through the tiled GPU kernels", async () => {
  expect(T.runtime().runner.cpu).toBe(false);
  await checkTrainingStepGolden(true);
});
