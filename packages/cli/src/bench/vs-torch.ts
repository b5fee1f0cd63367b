/**
 * Our side of the whole-model tables against PyTorch (bench/vs-torch.sh models|train; bench/torch_models.py is
 * the other side, with the same cases under the same names):
 *  - models: SD 1.5's UNet at 16×16 latents (batch 1, 77×768 text states) and CLIP ViT-L/14's image tower at 224
 *    px, random weights, forward and forward+backward with the weights frozen and the gradient taken where our
 *    trainer takes it (the UNet's text states, the reward tower's pixels); no gradient checkpointing on either side;
 *  - train: the tiny model's TextCraftor step of packages/core/test/trainer-golden.ts (its fixture's configs,
 *    weights and noise; N = 4, K = 2, batch 2, brightness reward) with AdamW, and our dispatches per step.
 */
import { join } from "node:path";
import {
  AdamW,
  AutoencoderKL,
  CLIPTextModel,
  CLIPVisionModelWithProjection,
  SD15_UNET_CONFIG,
  TRAIN_DEFAULTS,
  Tensor,
  UNet2DConditionModel,
  cloneTextEncoder,
  createStableDiffusion,
  ddimFor,
  mean,
  noGrad,
  parseCLIPTextConfig,
  parseCLIPVisionConfig,
  randn,
  readWeights,
  runtime,
  scope,
  scopeAsync,
  withInitMode,
  type LoadedReward,
  type Module,
  type TrainConfig,
} from "@textcraftor/core";
import { rewardGraph } from "@textcraftor/core/internal";
import type { ModelCase } from "./models.ts";
import { timeGpu } from "./timing.ts";
import { VIT_L14 } from "./training.ts";

export interface VsTorchSizes {
  unet: Record<string, unknown>;
  latent: number;
  tokens: number;
  vision: Record<string, unknown>;
}

/** The sizes the issue asks for: SD 1.5's UNet at 16² latents, ViT-L/14 at 224 px (bench/torch_models.py FULL). */
export const FULL_SIZES: VsTorchSizes = { unet: SD15_UNET_CONFIG, latent: 16, tokens: 77, vision: VIT_L14 };

/** Every path of the full cases at tiny widths (bench/torch_models.py TINY), for the tests. */
export const TINY_SIZES: VsTorchSizes = {
  unet: { ...SD15_UNET_CONFIG, block_out_channels: [16, 32, 64, 64], norm_num_groups: 8, cross_attention_dim: 64 },
  latent: 8,
  tokens: 77,
  vision: {
    ...VIT_L14,
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    image_size: 56,
  },
};

/** A middling diffusion timestep: the UNet's cost is the same at every t. */
const TIMESTEP = 500;

export function modelVsTorchCases(s: VsTorchSizes): ModelCase[] {
  const textDim = s.unet.cross_attention_dim as number;
  const latentShape = [1, 4, s.latent, s.latent];
  const unetShape = `1×4×${s.latent}², text 1×${s.tokens}×${textDim}`;
  const side = s.vision.image_size as number;
  const pixelShape = [1, 3, side, side];
  const unet = () => withInitMode("gpu", () => new UNet2DConditionModel(s.unet)).requiresGrad(false);
  const vit = () =>
    withInitMode("gpu", () => new CLIPVisionModelWithProjection(parseCLIPVisionConfig(s.vision))).requiresGrad(false);
  return [
    {
      model: "unet",
      pass: "forward",
      shape: unetShape,
      setup: () => {
        const m = unet(),
          x = randn(latentShape, 1),
          states = randn([1, s.tokens, textDim], 2);
        const run = () =>
          noGrad(() =>
            scope(() => {
              m.forward(x, TIMESTEP, states);
            }),
          );
        return { module: m, run, inputs: [x, states] };
      },
    },
    {
      model: "unet",
      pass: "forward+backward (∂/∂text)",
      shape: unetShape,
      setup: () => {
        const m = unet(),
          x = randn(latentShape, 1),
          states = randn([1, s.tokens, textDim], 2),
          gradOut = randn(latentShape, 3);
        const run = () =>
          scope(() => {
            const leaf = states.detach().requireGrad();
            m.forward(x, TIMESTEP, leaf).backward(gradOut);
            leaf.grad!.dispose(); // leaf gradients outlive scopes
          });
        return { module: m, run, inputs: [x, states, gradOut] };
      },
    },
    {
      model: "vit",
      pass: "forward",
      shape: `1×3×${side}² → image embeds`,
      setup: () => {
        const m = vit(),
          pixels = randn(pixelShape, 4);
        const run = () =>
          noGrad(() =>
            scope(() => {
              m.imageEmbeds(pixels);
            }),
          );
        return { module: m, run, inputs: [pixels] };
      },
    },
    {
      model: "vit",
      pass: "forward+backward (∂/∂pixels)",
      shape: `1×3×${side}² → image embeds`,
      setup: () => {
        const m = vit(),
          pixels = randn(pixelShape, 4),
          gradOut = randn([1, s.vision.projection_dim as number], 5);
        const run = () =>
          scope(() => {
            const leaf = pixels.detach().requireGrad();
            m.imageEmbeds(leaf).backward(gradOut);
            leaf.grad!.dispose();
          });
        return { module: m, run, inputs: [pixels, gradOut] };
      },
    },
  ];
}

const TRAINER_FIXTURE = join(import.meta.dir, "../../../core/test/fixtures/trainer");

/** The step of packages/core/test/trainer-golden.ts without gradient checkpointing (PyTorch's golden has none), plus AdamW. */
export function tinyStepCase(): ModelCase {
  return {
    model: "tiny sd",
    pass: "train step (N=4, K=2) + AdamW",
    shape: "2 × 16², brightness reward",
    setup: async () => {
      const g = await Bun.file(join(TRAINER_FIXTURE, "golden.json")).json();
      const textEncoder = withInitMode("none", () => new CLIPTextModel(parseCLIPTextConfig(g.text_config)));
      textEncoder.loadWeights(await readWeights(join(TRAINER_FIXTURE, "text_encoder.bin")));
      const unet = withInitMode("none", () => new UNet2DConditionModel(g.unet_config));
      unet.loadStateDict(await readWeights(join(TRAINER_FIXTURE, "unet.bin")));
      const vae = withInitMode("none", () => AutoencoderKL.fromConfig(g.vae_config));
      vae.loadWeights(await readWeights(join(TRAINER_FIXTURE, "vae.bin")));
      unet.requiresGrad(false);
      vae.requiresGrad(false);
      const sd = await createStableDiffusion({ textEncoder, unet, vae });
      const frozenTextEncoder = await cloneTextEncoder(textEncoder);
      const brightness: LoadedReward = { score: (images) => mean(images.reshape([images.shape[0]!, -1]), 1) };
      const models = { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] };
      const config: TrainConfig = {
        ...TRAIN_DEFAULTS,
        batchSize: 2,
        inferenceSteps: g.steps,
        gradSteps: g.grad_steps,
        guidanceScale: g.guidance,
        resolution: 16,
        gradientCheckpointing: false,
      };
      const sampler = ddimFor(sd, config.inferenceSteps, config.spacing);
      const optimizer = new AdamW([...textEncoder.parameters()], { lr: config.lr, weightDecay: config.weightDecay });
      const noise = Tensor.from(g.noise, [2, 4, 8, 8]);
      const run = () =>
        scope(() => {
          rewardGraph(models, sampler, config, ["a", "a a"], 0, noise).total.neg().backward();
          optimizer.update();
          optimizer.zeroGrad();
        });
      const parts: Module[] = [textEncoder, unet, vae, frozenTextEncoder];
      return {
        module: textEncoder,
        run,
        inputs: [noise],
        dispose: () => {
          optimizer.dispose();
          for (const m of parts.slice(1)) m.dispose();
        },
      };
    },
  };
}

export interface VsTorchRow {
  model: string;
  pass: string;
  shape: string;
  /** Millions of parameters of the timed module (the tiny step: the trained text encoder's). */
  params: number;
  medianMs: number;
  samples: number[];
  /** Kernel dispatches one run encodes. */
  dispatches: number;
}

/** One warm-up run, then `samples` timed runs, one run each (median); and the dispatches of one run. */
export async function runVsTorch(
  cases: ModelCase[],
  samples: number,
  onRow?: (row: VsTorchRow) => void,
): Promise<VsTorchRow[]> {
  const rows: VsTorchRow[] = [];
  for (const c of cases) {
    const { pool, runner } = runtime();
    pool.trim(); // hand the previous model's buffers back before the next one is built
    const { module, run, inputs, dispose } = await c.setup();
    let dispatches = 0;
    const counted = () => {
      const before = runner.dispatches;
      run();
      dispatches = runner.dispatches - before;
    };
    try {
      const t = await scopeAsync(() => timeGpu(counted, { samples, minSampleMs: 0 }));
      const row = {
        model: c.model,
        pass: c.pass,
        shape: c.shape,
        params: module.parameterCount() / 1e6,
        medianMs: t.medianMs,
        samples: t.samples,
        dispatches,
      };
      rows.push(row);
      onRow?.(row);
    } finally {
      module.dispose();
      for (const x of inputs) x.dispose();
      dispose?.();
    }
  }
  return rows;
}
