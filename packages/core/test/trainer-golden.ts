/** One TextCraftor training step's text-encoder gradient against PyTorch (scripts/fixtures/trainer_golden.py). */
import { expect } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { rewardGraph } from "../src/internal.ts";
import { relError } from "./gradcheck.ts";

const FIX = join(import.meta.dir, "fixtures/trainer");

/** Relative-error bounds against the PyTorch f32 step: images, reward (absolute) and each gradient. */
export interface StepTolerance {
  images: number;
  reward: number;
  grads: number;
}
const F32_TOLERANCE: StepTolerance = { images: 1e-4, reward: 5e-6, grads: 1e-4 }; // grads measured ~7e-7

/**
 * Builds the fixture's tiny SD, runs one step's reward graph and compares images, reward and encoder gradients.
 * `weightDtype` "f16" stores the frozen parts (UNet, VAE, the original text encoder) as f16, as mixed precision does.
 */
export async function checkTrainingStepGolden(
  gradientCheckpointing: boolean,
  { weightDtype = "f32", tolerance = F32_TOLERANCE }: { weightDtype?: T.DType; tolerance?: StepTolerance } = {},
) {
  const g = await Bun.file(join(FIX, "golden.json")).json();
  const textEncoder = T.withInitMode("none", () => new T.CLIPTextModel(T.parseCLIPTextConfig(g.text_config)));
  textEncoder.loadWeights(await T.readWeights(join(FIX, "text_encoder.bin")));
  const frozen = <M>(build: () => M) => T.withInitMode("none", () => T.withParamDtype(weightDtype, build));
  const unet = frozen(() => new T.UNet2DConditionModel(g.unet_config, { gradientCheckpointing }));
  unet.loadStateDict(await T.readWeights(join(FIX, "unet.bin")));
  const vae = frozen(() => T.AutoencoderKL.fromConfig(g.vae_config, { gradientCheckpointing }));
  vae.loadWeights(await T.readWeights(join(FIX, "vae.bin")));
  const sd = await T.createStableDiffusion({ textEncoder, unet, vae });
  const brightness: T.LoadedReward = { score: (images) => T.mean(images.reshape([images.shape[0]!, -1]), 1) };
  const models = {
    sd,
    frozenTextEncoder: await T.cloneTextEncoder(textEncoder, weightDtype),
    rewards: [{ name: "brightness", weight: 1, reward: brightness }],
  };
  const config: T.TrainConfig = {
    ...T.TRAIN_DEFAULTS,
    batchSize: 2,
    inferenceSteps: g.steps,
    gradSteps: g.grad_steps,
    guidanceScale: g.guidance,
    resolution: 16,
    gradientCheckpointing,
  };
  const sampler = T.ddimFor(sd, config.inferenceSteps, config.spacing);
  expect([...sampler.timesteps]).toEqual(g.timesteps);
  // The prompts tokenize to the ids the fixture used.
  expect(Array.from(sd.tokenizer.callInt32(["a", "a a"]))).toEqual(g.ids.flat());

  await T.scopeAsync(async () => {
    const noise = T.Tensor.from(g.noise, [2, 4, 8, 8]);
    const graph = rewardGraph(models, sampler, config, ["a", "a a"], 0, noise);
    const errors = {
      images: relError(await graph.images.toArray(), g.images),
      reward: Math.abs((await graph.total.item()) - g.reward),
      grads: 0,
    };
    graph.total.neg().backward();
    const params = new Map(textEncoder.namedParameters());
    for (const [name, expected] of Object.entries(g.grads as Record<string, number[]>)) {
      errors.grads = Math.max(errors.grads, relError(await params.get(name)!.grad!.toArray(), expected));
    }
    if (process.env.TEXTCRAFTOR_REPORT_ERRORS)
      console.log(`training step vs PyTorch (${weightDtype} frozen weights):`, errors);
    expect(errors.images).toBeLessThan(tolerance.images);
    expect(errors.reward).toBeLessThan(tolerance.reward);
    expect(errors.grads).toBeLessThan(tolerance.grads);
  });
}
