/**
 * The tiny model's architecture, as the config.json objects diffusers and transformers write: SD 1.x's
 * classes (CLIPTextModel with CLIP's 49,408-token vocabulary, UNet2DConditionModel, AutoencoderKL) shrunk
 * for 32×32 emoji, plus a CLIP image tower for the alignment reward. The UNet works on 8×8×4 latents.
 * The token table is most of the text encoder (49,408 × 32), so the width stays small to keep the files small.
 */
export const IMAGE_SIZE = 32;

export const TEXT_CONFIG = {
  architectures: ["CLIPTextModel"],
  model_type: "clip_text_model",
  vocab_size: 49408,
  hidden_size: 32,
  intermediate_size: 128,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 32,
  bos_token_id: 49406,
  eos_token_id: 2,
  pad_token_id: 1,
};

export const VISION_CONFIG = {
  model_type: "clip_vision_model",
  hidden_size: 64,
  intermediate_size: 256,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  image_size: IMAGE_SIZE,
  patch_size: 8,
  num_channels: 3,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 32,
};

export const CLIP_CONFIG = {
  architectures: ["CLIPModel"],
  model_type: "clip",
  projection_dim: 32,
  text_config: TEXT_CONFIG,
  vision_config: VISION_CONFIG,
};

export const VAE_CONFIG = {
  _class_name: "AutoencoderKL",
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  block_out_channels: [16, 32, 64],
  layers_per_block: 1,
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  act_fn: "silu",
  norm_num_groups: 8,
  sample_size: IMAGE_SIZE,
  // Replaced after training by 1 / std of the training latents, as SD's 0.18215 was chosen.
  scaling_factor: 1,
};

export const UNET_CONFIG = {
  _class_name: "UNet2DConditionModel",
  sample_size: IMAGE_SIZE / 4,
  in_channels: 4,
  out_channels: 4,
  layers_per_block: 1,
  block_out_channels: [32, 64],
  down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"],
  cross_attention_dim: TEXT_CONFIG.hidden_size,
  attention_head_dim: 4,
  norm_num_groups: 8,
  act_fn: "silu",
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
};
