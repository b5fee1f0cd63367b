/** A tiny random Stable Diffusion in the real classes, for pipeline and trainer tests. */
import {
  AutoencoderKL,
  CLIPTextModel,
  type LoadedReward,
  Rng,
  UNet2DConditionModel,
  cloneTextEncoder,
  createStableDiffusion,
  mean,
  parseCLIPTextConfig,
} from "../src/index.ts";

export const TINY_TEXT_CONFIG = {
  vocab_size: 49408,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 32,
};
export const TINY_UNET_CONFIG = {
  block_out_channels: [16, 32],
  layers_per_block: 1,
  down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"],
  norm_num_groups: 8,
  attention_head_dim: 2,
  cross_attention_dim: 32,
  in_channels: 4,
  out_channels: 4,
  sample_size: 8,
};
export const TINY_VAE_CONFIG = {
  block_out_channels: [8, 16],
  layers_per_block: 1,
  latent_channels: 4,
  norm_num_groups: 4,
  in_channels: 3,
  out_channels: 3,
  sample_size: 16,
  scaling_factor: 0.18215,
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
};

export function tinyStableDiffusion(seed = 0, gradientCheckpointing = false) {
  return createStableDiffusion({
    textEncoder: new CLIPTextModel(parseCLIPTextConfig(TINY_TEXT_CONFIG), { rng: new Rng(seed) }),
    unet: new UNet2DConditionModel(TINY_UNET_CONFIG, { rng: new Rng(seed + 1), gradientCheckpointing }),
    vae: AutoencoderKL.fromConfig(TINY_VAE_CONFIG, { seed: seed + 2, gradientCheckpointing }),
    source: {
      path: "(memory)",
      layout: "diffusers",
      configs: { textEncoder: TINY_TEXT_CONFIG, unet: TINY_UNET_CONFIG, vae: TINY_VAE_CONFIG },
    },
  });
}

/** Mean brightness: a weight-free differentiable reward, enough to see the trainer move the encoder. */
export const brightness: LoadedReward = { score: (images) => mean(images.reshape([images.shape[0]!, -1]), 1) };

/** The tiny SD with its frozen original encoder and the brightness reward: what the trainer tests train. */
export async function tinyTrainingModels(seed = 0) {
  const sd = await tinyStableDiffusion(seed);
  const frozenTextEncoder = await cloneTextEncoder(sd.textEncoder);
  return { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] };
}
