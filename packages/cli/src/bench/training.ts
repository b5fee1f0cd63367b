/**
 * `bun run bench train`: the product's two jobs end to end at SD 1.5 sizes, with random weights (time does not
 * depend on their values): a text-to-image sample (N DDIM steps with CFG, VAE decode), and one TextCraftor
 * training step (N steps from seeded noise, the last K with gradient through checkpointed UNet calls, VAE
 * decode, an aesthetic-shaped reward on CLIP ViT-L/14, backward into the text encoder, AdamW).
 */
import {
  AdamW,
  AutoencoderKL,
  CLIPTextModel,
  CLIPVisionModelWithProjection,
  Linear,
  ModuleList,
  TRAIN_DEFAULTS,
  UNet2DConditionModel,
  cloneTextEncoder,
  createStableDiffusion,
  ddimFor,
  noGrad,
  parseCLIPTextConfig,
  parseCLIPVisionConfig,
  scope,
  textToImage,
  withInitMode,
  type LoadedReward,
  type TrainConfig,
} from "@textcraftor/core";
import { rewardGraph } from "@textcraftor/core/internal";
import { l2Normalize, preprocessForClip } from "@textcraftor/rewards";
import { SD15_SIZES, SMALL_SIZES, pixelSide, type ModelCase, type ModelSizes } from "./models.ts";

export interface TrainBenchSizes {
  models: ModelSizes;
  /** The reward's image tower (a transformers CLIPVisionConfig). */
  vision: Record<string, unknown>;
  /** DDIM steps (N), steps with gradient (K) and prompts per training step. */
  steps: number;
  gradSteps: number;
  batchSize: number;
}

/** CLIP ViT-L/14, the backbone of the LAION aesthetic predictor that TextCraftor's main reward uses. */
export const VIT_L14 = {
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  image_size: 224,
  patch_size: 14,
  num_channels: 3,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 768,
};

/** The paper's settings: N = 25, K = 5, 4 prompts per GPU (here 1, the least memory; `--batch-size` for more). */
export const SD15_TRAIN: TrainBenchSizes = {
  models: SD15_SIZES,
  vision: VIT_L14,
  steps: 25,
  gradSteps: 5,
  batchSize: 1,
};

/** Every path of the SD-sized step at tiny widths, for CPU adapters and the tests. */
export const SMALL_TRAIN: TrainBenchSizes = {
  models: SMALL_SIZES,
  vision: {
    ...VIT_L14,
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    image_size: 56,
    projection_dim: 32,
  },
  steps: 4,
  gradSteps: 2,
  batchSize: 2,
};

const PROMPT = "a photograph of an astronaut riding a horse";

/** The three SD parts, built from their configs with random weights. */
function buildParts(s: ModelSizes) {
  return withInitMode("gpu", () => ({
    textEncoder: new CLIPTextModel(parseCLIPTextConfig(s.textEncoder)),
    unet: new UNet2DConditionModel(s.unet, { gradientCheckpointing: true }),
    vae: AutoencoderKL.fromConfig(s.vae, { gradientCheckpointing: true }),
  }));
}

/** The aesthetic predictor's shape: score = head(normalised ViT embedding); its MLP's cost is negligible. */
function aestheticShapedReward(vision: Record<string, unknown>) {
  const config = parseCLIPVisionConfig(vision);
  const { tower, head } = withInitMode("gpu", () => ({
    tower: new CLIPVisionModelWithProjection(config),
    head: new Linear(config.projectionDim, 1),
  }));
  tower.requiresGrad(false);
  head.requiresGrad(false);
  const reward: LoadedReward = {
    score: (images) =>
      head.forward(l2Normalize(tower.imageEmbeds(preprocessForClip(images, config.imageSize)))).reshape([-1]),
  };
  return { modules: [tower, head], reward };
}

export function trainCases(t: TrainBenchSizes): ModelCase[] {
  const side = pixelSide(t.models);
  return [
    {
      model: "sd",
      pass: `text-to-image (N=${t.steps}, CFG)`,
      shape: `1 × ${side}²`,
      setup: async () => {
        const parts = buildParts(t.models);
        const sd = await createStableDiffusion(parts);
        // The images belong to the caller, outside any scope: dispose them, and let the scope free the rest.
        const run = () =>
          noGrad(() =>
            scope(() =>
              textToImage(sd, {
                prompts: [PROMPT],
                seed: 0,
                steps: t.steps,
                guidanceScale: 7.5,
                height: side,
                width: side,
              }).dispose(),
            ),
          );
        return { module: new ModuleList([parts.textEncoder, parts.unet, parts.vae]), run, inputs: [] };
      },
    },
    {
      model: "textcraftor",
      pass: `train step (N=${t.steps}, K=${t.gradSteps})`,
      shape: `${t.batchSize} × ${side}², reward ViT`,
      setup: async () => {
        const parts = buildParts(t.models);
        const sd = await createStableDiffusion(parts);
        const frozenTextEncoder = await cloneTextEncoder(parts.textEncoder);
        parts.unet.requiresGrad(false);
        parts.vae.requiresGrad(false);
        const aesthetic = aestheticShapedReward(t.vision);
        const models = { sd, frozenTextEncoder, rewards: [{ name: "aesthetic", weight: 1, reward: aesthetic.reward }] };
        const config: TrainConfig = {
          ...TRAIN_DEFAULTS,
          inferenceSteps: t.steps,
          gradSteps: t.gradSteps,
          batchSize: t.batchSize,
          resolution: side,
        };
        const sampler = ddimFor(sd, config.inferenceSteps, config.spacing);
        const params = [...parts.textEncoder.parameters()];
        const optimizer = new AdamW(params, { lr: config.lr, weightDecay: config.weightDecay });
        const prompts = Array.from({ length: t.batchSize }, () => PROMPT);
        let step = 0;
        const run = () =>
          scope(() => {
            rewardGraph(models, sampler, config, prompts, step++).total.neg().backward();
            optimizer.update();
            optimizer.zeroGrad();
          });
        return {
          module: new ModuleList([parts.textEncoder, parts.unet, parts.vae, frozenTextEncoder, ...aesthetic.modules]),
          run,
          inputs: [],
          dispose: () => optimizer.dispose(),
        };
      },
    },
  ];
}
