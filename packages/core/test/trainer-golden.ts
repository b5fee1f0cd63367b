/** One TextCraftor training step's text-encoder gradient against PyTorch (scripts/fixtures/trainer_golden.py). */
import { expect } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { rewardGraph } from "../src/internal.ts";
import { relError } from "./gradcheck.ts";

const FIX = join(import.meta.dir, "fixtures/trainer");

/** Builds the fixture's tiny SD, runs one step's reward graph and compares images, reward and encoder gradients. */
export async function checkTrainingStepGolden(gradientCheckpointing: boolean) {
  const g = await Bun.file(join(FIX, "golden.json")).json();
  const textEncoder = T.withInitMode("none", () => new T.CLIPTextModel(T.parseCLIPTextConfig(g.text_config)));
  textEncoder.loadWeights(await T.readWeights(join(FIX, "text_encoder.bin")));
  const unet = T.withInitMode("none", () => new T.UNet2DConditionModel(g.unet_config, { gradientCheckpointing }));
  unet.loadStateDict(await T.readWeights(join(FIX, "unet.bin")));
  const vae = T.withInitMode("none", () => T.AutoencoderKL.fromConfig(g.vae_config, { gradientCheckpointing }));
  vae.loadWeights(await T.readWeights(join(FIX, "vae.bin")));
  const sd = await T.createStableDiffusion({ textEncoder, unet, vae });
  const brightness: T.LoadedReward = { score: (images) => T.mean(images.reshape([images.shape[0]!, -1]), 1) };
  const models = { sd, frozenTextEncoder: await T.cloneTextEncoder(textEncoder), rewards: [{ name: "brightness", weight: 1, reward: brightness }] };
  const config: T.TrainConfig = { ...T.TRAIN_DEFAULTS, batchSize: 2, inferenceSteps: g.steps, gradSteps: g.grad_steps, guidanceScale: g.guidance, resolution: 16, gradientCheckpointing };
  const sampler = T.ddimFor(sd, config.inferenceSteps, config.spacing);
  expect([...sampler.timesteps]).toEqual(g.timesteps);
  // The prompts tokenize to the ids the fixture used.
  expect(Array.from(sd.tokenizer.callInt32(["a", "a a"]))).toEqual(g.ids.flat());

  await T.scopeAsync(async () => {
    const noise = T.Tensor.from(g.noise, [2, 4, 8, 8]);
    const graph = rewardGraph(models, sampler, config, ["a", "a a"], 0, noise);
    expect(relError(await graph.images.toArray(), g.images)).toBeLessThan(1e-4);
    expect(await graph.total.item()).toBeCloseTo(g.reward, 5);
    graph.total.neg().backward();
    const params = new Map(textEncoder.namedParameters());
    for (const [name, expected] of Object.entries(g.grads as Record<string, number[]>)) {
      expect(relError(await params.get(name)!.grad!.toArray(), expected), name).toBeLessThan(1e-4); // measured ~7e-7
    }
  });
}
