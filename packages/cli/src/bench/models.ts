/**
 * `bun run bench models`: whole Stable Diffusion 1.5 models as sampling and TextCraftor training run them:
 * UNet forward on a CFG batch, UNet forward+backward to the text states (the training step's core), VAE
 * decode, CLIP text encoder. Weights are random, since time does not depend on their values.
 */
import {
  AutoencoderKL,
  CLIPTextModel,
  SD15_TEXT_ENCODER_CONFIG,
  SD15_UNET_CONFIG,
  SD15_VAE_CONFIG,
  UNet2DConditionModel,
  type Module,
  type Tensor,
  memoryStats,
  noGrad,
  parseCLIPTextConfig,
  randn,
  runtime,
  scope,
  scopeAsync,
  withInitMode,
} from "@textcraftor/core";
import { timeGpu, type Timing } from "./timing.ts";

export interface ModelBenchRow {
  model: string;
  pass: string;
  shape: string;
  /** Millions of parameters: the weights are resident through the run and are part of the peak. */
  params: number;
  medianMs: number;
  /** Pool peak during the timed runs: weights, inputs, activations and gradients. */
  peakMiB: number;
}

interface Prepared {
  module: Module;
  run: () => void;
  inputs: Tensor[];
  dispose?: () => void;
}

export interface ModelCase {
  model: string;
  pass: string;
  shape: string;
  /** Builds the model and its inputs; `run` encodes one pass. */
  setup: () => Prepared | Promise<Prepared>;
}

/** A Stable Diffusion family at one size: configs (diffusers/transformers JSON) and input sizes. */
export interface ModelSizes {
  unet: Record<string, unknown>;
  vae: Record<string, unknown>;
  textEncoder: Record<string, unknown>;
  /** Latent side (SD 1.5: 64, i.e. 512-pixel images) and the CFG batch (uncond + cond). */
  latent: number;
  batch: number;
  tokens: number;
}

export const SD15_SIZES: ModelSizes = {
  unet: SD15_UNET_CONFIG,
  vae: SD15_VAE_CONFIG,
  textEncoder: SD15_TEXT_ENCODER_CONFIG,
  latent: 64,
  batch: 2,
  tokens: 77,
};

/**
 * SD 1.5's layout (the same blocks, attention placement and 8 heads) at tiny widths and 8×8 latents, so
 * that every kernel path of the full models runs in seconds on a 2-core CPU adapter (lavapipe does about
 * 1 GFLOP/s, and there even these sizes are bound by per-dispatch cost rather than arithmetic).
 */
export const SMALL_SIZES: ModelSizes = {
  unet: { ...SD15_UNET_CONFIG, block_out_channels: [16, 32, 64, 64], norm_num_groups: 8, cross_attention_dim: 64 },
  vae: { ...SD15_VAE_CONFIG, block_out_channels: [16, 32, 32, 32], norm_num_groups: 8 },
  textEncoder: {
    ...SD15_TEXT_ENCODER_CONFIG,
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 4,
  },
  latent: 8,
  batch: 2,
  tokens: 77,
};

const BOS = 49406,
  EOS = 49407;
/** A middling diffusion timestep: the UNet's cost is the same at every t. */
const TIMESTEP = 500;

/** Image side in pixels: the latent side times the VAE's upscale. */
export const pixelSide = (s: ModelSizes) => s.latent * 2 ** ((s.vae.block_out_channels as number[]).length - 1);

export function modelCases(s: ModelSizes): ModelCase[] {
  const latentShape = [s.batch, 4, s.latent, s.latent];
  const textDim = s.unet.cross_attention_dim as number;
  const latentLabel = `${s.batch}×4×${s.latent}², text ${s.batch}×${s.tokens}×${textDim}`;
  const unet = (gradientCheckpointing: boolean) =>
    withInitMode("gpu", () => new UNet2DConditionModel(s.unet, { gradientCheckpointing }));
  const imageSide = pixelSide(s);
  return [
    {
      model: "unet",
      pass: "forward",
      shape: latentLabel,
      setup: () => {
        const m = unet(false),
          x = randn(latentShape, 1),
          states = randn([s.batch, s.tokens, textDim], 2);
        return {
          module: m,
          run: () =>
            noGrad(() =>
              scope(() => {
                m.forward(x, TIMESTEP, states);
              }),
            ),
          inputs: [x, states],
        };
      },
    },
    {
      // TextCraftor's step: the UNet is frozen and the reward's gradient flows through it to the text
      // states, with gradient checkpointing as the trainer uses it to fit the unrolled steps in memory.
      model: "unet",
      pass: "forward+backward (∂/∂text, ckpt)",
      shape: latentLabel,
      setup: () => {
        const m = unet(true).requiresGrad(false),
          x = randn(latentShape, 1),
          states = randn([s.batch, s.tokens, textDim], 2),
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
      model: "clip-text",
      pass: "forward",
      shape: `${s.batch}×${s.tokens} tokens`,
      setup: () => {
        const m = withInitMode("gpu", () => new CLIPTextModel(parseCLIPTextConfig(s.textEncoder)));
        // The empty prompt's ids (CFG's uncond row) for every row: the cost does not depend on the ids.
        const ids = Int32Array.from({ length: s.batch * s.tokens }, (_, i) => (i % s.tokens === 0 ? BOS : EOS));
        return {
          module: m,
          run: () =>
            noGrad(() =>
              scope(() => {
                m.forward(ids, s.tokens);
              }),
            ),
          inputs: [],
        };
      },
    },
    {
      model: "vae",
      pass: "decode",
      shape: `1×4×${s.latent}² → 1×3×${imageSide}²`,
      setup: () => {
        const m = withInitMode("gpu", () => AutoencoderKL.fromConfig(s.vae)),
          z = randn([1, 4, s.latent, s.latent], 4);
        return {
          module: m,
          run: () =>
            noGrad(() =>
              scope(() => {
                m.decode(z);
              }),
            ),
          inputs: [z],
        };
      },
    },
  ];
}

export async function runModelBench(
  cases: ModelCase[],
  onRow?: (row: ModelBenchRow) => void,
  timing?: Parameters<typeof timeGpu>[1],
): Promise<ModelBenchRow[]> {
  const rows: ModelBenchRow[] = [];
  for (const c of cases) {
    const { pool } = runtime();
    pool.trim(); // hand the previous model's buffers back to the device before the next one is built
    const { module, run, inputs, dispose } = await c.setup();
    let t: Timing;
    try {
      pool.resetPeak();
      t = await scopeAsync(() => timeGpu(run, timing));
    } finally {
      module.dispose();
      for (const x of inputs) x.dispose();
      dispose?.();
    }
    const row: ModelBenchRow = {
      model: c.model,
      pass: c.pass,
      shape: c.shape,
      params: module.parameterCount() / 1e6,
      medianMs: t.medianMs,
      peakMiB: memoryStats().peakBytes / 2 ** 20,
    };
    rows.push(row);
    onRow?.(row);
  }
  return rows;
}

export const MODEL_HEADER = `${"model".padEnd(10)} ${"pass".padEnd(34)} ${"shape".padEnd(36)} ${"params".padStart(8)} ${"median".padStart(13)} ${"peak".padStart(12)}`;

export function formatModelRow(r: ModelBenchRow): string {
  return `${r.model.padEnd(10)} ${r.pass.padEnd(34)} ${r.shape.padEnd(36)} ${`${r.params.toFixed(1)}M`.padStart(8)} ${r.medianMs.toFixed(2).padStart(10)} ms ${r.peakMiB.toFixed(1).padStart(8)} MiB`;
}
