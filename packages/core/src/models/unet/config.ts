/**
 * UNet2DConditionModel configuration, read from a diffusers `unet/config.json` object (snake_case keys):
 * diffusers' defaults fill what is missing, per-block values may be a number or a per-block list (as in
 * SD 2.x's `attention_head_dim [5, 10, 20, 20]`), and variants this model does not implement are refused.
 */

export type DownBlockType = "CrossAttnDownBlock2D" | "DownBlock2D";
export type UpBlockType = "CrossAttnUpBlock2D" | "UpBlock2D";

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  sampleSize: number;
  blockOutChannels: number[];
  downBlockTypes: DownBlockType[];
  upBlockTypes: UpBlockType[];
  /** Resnets per down block (up blocks have one more, to take the downsampler's skip too). */
  layersPerBlock: number[];
  /**
   * Attention heads per down block. diffusers' legacy `attention_head_dim` means the number of heads
   * (SD 1.5's 8 gives head dims 40/80/160/160); `num_attention_heads` wins when given.
   */
  heads: number[];
  transformerLayersPerBlock: number[];
  crossAttentionDim: number;
  /** Linear proj_in/proj_out (SD 2.x) instead of 1×1 convs (SD 1.x). */
  useLinearProjection: boolean;
  normNumGroups: number;
  normEps: number;
  flipSinToCos: boolean;
  freqShift: number;
  timeEmbeddingDim: number;
  downsamplePadding: number;
  midBlockScaleFactor: number;
  centerInputSample: boolean;
}

const DOWN_TYPES: readonly DownBlockType[] = ["CrossAttnDownBlock2D", "DownBlock2D"];
const UP_TYPES: readonly UpBlockType[] = ["CrossAttnUpBlock2D", "UpBlock2D"];

const fail = (message: string): never => {
  throw new Error(`unet config: ${message}`);
};

/** Parses a diffusers `unet/config.json` object. Errors name the offending field. */
export function parseUNetConfig(json: Record<string, unknown>): UNetConfig {
  const int = (key: string, fallback: number): number => {
    const v = json[key] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < 0) fail(`"${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (key: string, fallback: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) fail(`"${key}" must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = json[key] ?? fallback;
    if (typeof v !== "boolean") fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const types = <T extends string>(key: string, allowed: readonly T[], fallback: T[]): T[] => {
    const v = json[key] ?? fallback;
    if (!Array.isArray(v) || !v.length) fail(`"${key}" must be a non-empty list of block types, got ${JSON.stringify(v)}`);
    for (const t of v as unknown[]) {
      if (!allowed.includes(t as T)) fail(`"${key}" contains unknown block type ${JSON.stringify(t)}; supported: ${allowed.join(", ")}`);
    }
    return v as T[];
  };

  const blockOutChannels = (json.block_out_channels ?? [320, 640, 1280, 1280]) as number[];
  if (!Array.isArray(blockOutChannels) || !blockOutChannels.length || blockOutChannels.some((c) => !Number.isInteger(c) || c <= 0)) {
    fail(`"block_out_channels" must be a non-empty list of positive integers, got ${JSON.stringify(json.block_out_channels)}`);
  }
  const n = blockOutChannels.length;
  const perBlock = (key: string, value: unknown): number[] => {
    const list = Array.isArray(value) ? value : Array<unknown>(n).fill(value);
    if (list.length !== n) fail(`"${key}" has ${list.length} entries for ${n} blocks (block_out_channels); give one per block or a single number`);
    if (list.some((v) => !Number.isInteger(v) || (v as number) <= 0)) fail(`"${key}" must be a positive integer or a list of them, got ${JSON.stringify(value)}`);
    return list as number[];
  };

  const downBlockTypes = types("down_block_types", DOWN_TYPES, ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]);
  const upBlockTypes = types("up_block_types", UP_TYPES, ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]);
  for (const [key, list] of [["down_block_types", downBlockTypes], ["up_block_types", upBlockTypes]] as const) {
    if (list.length !== n) fail(`"${key}" has ${list.length} blocks but "block_out_channels" has ${n}; they must match`);
  }

  const config: UNetConfig = {
    inChannels: int("in_channels", 4),
    outChannels: int("out_channels", 4),
    sampleSize: int("sample_size", 64),
    blockOutChannels,
    downBlockTypes,
    upBlockTypes,
    layersPerBlock: perBlock("layers_per_block", json.layers_per_block ?? 2),
    heads: perBlock(json.num_attention_heads != null ? "num_attention_heads" : "attention_head_dim", json.num_attention_heads ?? json.attention_head_dim ?? 8),
    transformerLayersPerBlock: perBlock("transformer_layers_per_block", json.transformer_layers_per_block ?? 1),
    crossAttentionDim: int("cross_attention_dim", 1280),
    useLinearProjection: bool("use_linear_projection", false),
    normNumGroups: int("norm_num_groups", 32),
    normEps: num("norm_eps", 1e-5),
    flipSinToCos: bool("flip_sin_to_cos", true),
    freqShift: num("freq_shift", 0),
    timeEmbeddingDim: int("time_embedding_dim", blockOutChannels[0]! * 4),
    downsamplePadding: int("downsample_padding", 1),
    midBlockScaleFactor: num("mid_block_scale_factor", 1),
    centerInputSample: bool("center_input_sample", false),
  };
  checkSupported(json, config);
  return config;
}

/** Options diffusers offers that SD 1.x/2.x leave at these values; anything else is a different model. */
const FIXED: Record<string, unknown> = {
  act_fn: "silu",
  time_embedding_type: "positional",
  resnet_time_scale_shift: "default",
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  dual_cross_attention: false,
  mid_block_type: "UNetMidBlock2DCrossAttn",
  attention_type: "default",
  class_embed_type: null,
  num_class_embeds: null,
  addition_embed_type: null,
  encoder_hid_dim: null,
  time_cond_proj_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  addition_time_embed_dim: null,
  cross_attention_norm: null,
  reverse_transformer_layers_per_block: null,
};

function checkSupported(json: Record<string, unknown>, c: UNetConfig): void {
  for (const [key, expected] of Object.entries(FIXED)) {
    const v = json[key];
    if (v !== undefined && v !== expected) fail(`"${key}" is ${JSON.stringify(v)}, but only ${JSON.stringify(expected)} is implemented (the Stable Diffusion 1.x/2.x layout)`);
  }
  if ([json.only_cross_attention].flat().some(Boolean)) fail(`"only_cross_attention" is set; only self- plus cross-attention blocks are implemented`);
  if (Array.isArray(json.cross_attention_dim)) fail(`"cross_attention_dim" is a per-block list; only one value for all blocks is implemented`);
  c.blockOutChannels.forEach((ch, i) => {
    if (ch % c.normNumGroups !== 0) fail(`block_out_channels[${i}] = ${ch} is not divisible by norm_num_groups ${c.normNumGroups}`);
    const key = json.num_attention_heads != null ? "num_attention_heads" : "attention_head_dim";
    if (ch % c.heads[i]! !== 0) fail(`block_out_channels[${i}] = ${ch} does not split into ${key}[${i}] = ${c.heads[i]} heads`);
  });
  if (c.blockOutChannels[0]! % 2 !== 0) fail(`block_out_channels[0] = ${c.blockOutChannels[0]} must be even (it is the sinusoidal timestep embedding's size)`);
}
