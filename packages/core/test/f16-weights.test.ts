/**
 * Frozen weights stored as f16 (mixed precision): half the memory, outputs within measured bounds of f32.
 * The models are the PyTorch-checked tiny SD of the trainer fixture; bounds are the measured errors with margin.
 */
import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { fromFloat32, rewardGraph, toFloat32 } from "../src/internal.ts";
import { relError } from "./gradcheck.ts";
import { tinyStableDiffusion } from "./tiny-sd.ts";
import { checkTrainingStepGolden } from "./trainer-golden.ts";

const FIX = join(import.meta.dir, "fixtures/trainer");
const g = await Bun.file(join(FIX, "golden.json")).json();
const report = (what: string, err: number) => {
  if (process.env.TEXTCRAFTOR_REPORT_ERRORS) console.log(`${what}: f16 vs f32 relative error ${err.toExponential(2)}`);
  return err;
};

beforeAll(async () => {
  await T.initRuntime();
});

/**
 * Builds a model twice, f32 and f16. `load` fills both from the fixture (f16-exact values: the f16 copy must then
 * compute exactly what the f32 one does), or, when absent, both keep the same seeded random f32 init and the second
 * is rounded by `half()` (the rounding error a real f32 checkpoint sees).
 */
async function both<M extends T.Module>(build: () => M, load?: (m: M) => Promise<void>) {
  let f16: M;
  const f32 = load ? T.withInitMode("none", build) : build();
  if (load) {
    await load(f32);
    f16 = T.withInitMode("none", () => T.withParamDtype("f16", build));
    await load(f16);
  } else f16 = build().half();
  const bytes = (m: M) => m.parameters().reduce((s, p) => s + p.size * (p.dtype === "f16" ? 2 : 4), 0);
  expect(f16.parameters().every((p) => p.dtype === "f16" && !p.requiresGrad)).toBe(true);
  expect(bytes(f16)).toBe(bytes(f32) / 2);
  return { f32, f16 };
}

const textEncoder = () => new T.CLIPTextModel(T.parseCLIPTextConfig(g.text_config));
const unet = () => new T.UNet2DConditionModel(g.unet_config);
const vae = () => T.AutoencoderKL.fromConfig(g.vae_config);
const ids = [...g.ids[1], ...g.ids[0]];
const rng = new T.Rng(5);
const latents = rng.normal(2 * 4 * 8 * 8),
  context = rng.normal(2 * 77 * g.text_config.hidden_size);

async function outputs(kind: "text encoder" | "UNet" | "VAE decode", m: T.Module): Promise<Float32Array> {
  return T.scopeAsync(async () => {
    if (kind === "text encoder") return (m as T.CLIPTextModel).forward(ids).toArray();
    const x = T.Tensor.from(latents, [2, 4, 8, 8]);
    if (kind === "VAE decode") return (m as T.AutoencoderKL).decode(x).toArray();
    return (m as T.UNet2DConditionModel)
      .forward(x, 500, T.Tensor.from(context, [2, 77, g.text_config.hidden_size]))
      .toArray();
  });
}

const roundedToF16 = (weights: Map<string, T.TensorData>) =>
  new Map([...weights].map(([name, t]) => [name, { ...t, data: toFloat32(fromFloat32(t.data, "F16"), "F16") }]));

const fixtureLoads = {
  // The fixture keeps the text encoder in f32 (only its UNet and VAE were saved as f16): round it first.
  "text encoder": async (m: T.Module) =>
    (m as T.CLIPTextModel).loadWeights(roundedToF16(await T.readWeights(join(FIX, "text_encoder.bin")))),
  UNet: async (m: T.Module) => m.loadStateDict(await T.readWeights(join(FIX, "unet.bin"))),
  "VAE decode": async (m: T.Module) => (m as T.AutoencoderKL).loadWeights(await T.readWeights(join(FIX, "vae.bin"))),
};
const builders = { "text encoder": textEncoder, UNet: unet, "VAE decode": vae } as Record<
  keyof typeof fixtureLoads,
  () => T.Module
>;

/** Measured with TEXTCRAFTOR_REPORT_ERRORS=1 (see the file's header), times about 3. */
const BOUND = { "text encoder": 1e-3, UNet: 2e-3, "VAE decode": 3e-3 }; // measured 3.1e-4, 5.4e-4, 9.4e-4

for (const kind of ["text encoder", "UNet", "VAE decode"] as const) {
  test(`${kind}: f16 storage of f16-exact weights computes exactly what f32 does`, async () => {
    const { f32, f16 } = await both(builders[kind], fixtureLoads[kind]);
    expect(Array.from(await outputs(kind, f16))).toEqual(Array.from(await outputs(kind, f32)));
  });

  test(`${kind}: random f32 weights rounded to f16 stay within a measured bound`, async () => {
    const { f32, f16 } = await both(builders[kind]);
    const err = report(kind, relError(await outputs(kind, f16), await outputs(kind, f32)));
    expect(err).toBeGreaterThan(0); // the weights really were rounded
    expect(err).toBeLessThan(BOUND[kind]);
  });
}

test("a training step with the frozen parts in f16 stays close to PyTorch's f32 step", async () => {
  await checkTrainingStepGolden(true, { weightDtype: "f16", tolerance: { images: 1e-4, reward: 5e-6, grads: 1e-4 } });
});

test("training with the frozen parts in f16 still raises the reward; the f16 parts stay as they were", async () => {
  const sd = await tinyStableDiffusion(0);
  const frozenTextEncoder = await T.cloneTextEncoder(sd.textEncoder, "f16");
  sd.unet.half();
  sd.vae.half();
  const brightness: T.LoadedReward = { score: (images) => T.mean(images.reshape([images.shape[0]!, -1]), 1) };
  const models = { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] };
  const config: T.TrainConfig = {
    ...T.TRAIN_DEFAULTS,
    steps: 6,
    batchSize: 2,
    inferenceSteps: 4,
    gradSteps: 2,
    resolution: 16,
    lr: 3e-3,
    weightDecay: 0,
    checkpointEvery: 6,
    sampleEvery: 100,
    seed: 5,
  };
  const reward = () =>
    T.scopeAsync(async () =>
      T.noGrad(
        () => rewardGraph(models, T.ddimFor(sd, 4, config.spacing), config, ["a red apple", "a blue car"], 0).total,
      ).item(),
    );
  const unetBefore = await sd.unet.stateDict();
  const before = await reward();
  await T.train({
    models,
    config,
    prompts: ["a red apple", "a blue car", "a green tree", "a yellow sun"],
    runDir: mkdtempSync(join(tmpdir(), "tc-f16-")),
  });
  expect(await reward()).toBeGreaterThan(before);
  for (const [name, t] of await sd.unet.stateDict())
    expect(Array.from(t.data), name).toEqual(Array.from(unetBefore.get(name)!.data));
  expect(() => new T.AdamW(sd.unet.parameters())).toThrow("is stored as f16, which only frozen weights may be");
});
