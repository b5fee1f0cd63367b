/**
 * UNet2DConditionModel configuration, read from a diffusers `unet/config.json` object (snake_case keys):
 * diffusers' defaults fill what is missing, per-block values may be a number or a per-block list (as in
 * SD 2.x's `attention_head_dim [5, 10, 20, 20]`), every field is checked (type, integer, range) with all problems
 * in one error, and variants this model does not implement are refused.
 */
import { Schema } from "effect";
import { IntUpTo, PositiveFinite, decodeConfig } from "../config-schema.ts";

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

/** Channel counts beyond this are a broken file, not a model (SD's largest is 1280). */
const MAX_CHANNELS = 16_384;
const Channels = IntUpTo(MAX_CHANNELS);
/** A count per block, or one for all blocks. */
const PerBlock = Schema.Union([IntUpTo(1024), Schema.NonEmptyArray(IntUpTo(1024))]);

/**
 * diffusers' defaults of the fields read here. Those whose default is None (time_embedding_dim,
 * num_attention_heads) may be null; any other field given as null is an error, as in diffusers.
 */
const DEFAULTS = {
  in_channels: 4,
  out_channels: 4,
  sample_size: 64,
  block_out_channels: [320, 640, 1280, 1280],
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  layers_per_block: 2,
  attention_head_dim: 8,
  num_attention_heads: null,
  transformer_layers_per_block: 1,
  cross_attention_dim: 1280,
  use_linear_projection: false,
  norm_num_groups: 32,
  norm_eps: 1e-5,
  flip_sin_to_cos: true,
  freq_shift: 0,
  time_embedding_dim: null,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  center_input_sample: false,
};
const UNetJson = Schema.Struct({
  in_channels: Channels,
  out_channels: Channels,
  sample_size: Channels,
  block_out_channels: Schema.NonEmptyArray(Channels),
  down_block_types: Schema.NonEmptyArray(Schema.Literals(DOWN_TYPES)),
  up_block_types: Schema.NonEmptyArray(Schema.Literals(UP_TYPES)),
  layers_per_block: PerBlock,
  attention_head_dim: PerBlock,
  num_attention_heads: Schema.NullOr(PerBlock),
  transformer_layers_per_block: PerBlock,
  cross_attention_dim: Channels,
  use_linear_projection: Schema.Boolean,
  norm_num_groups: Channels,
  norm_eps: PositiveFinite,
  flip_sin_to_cos: Schema.Boolean,
  freq_shift: Schema.Finite,
  time_embedding_dim: Schema.NullOr(Channels),
  downsample_padding: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 8 }))),
  mid_block_scale_factor: PositiveFinite,
  center_input_sample: Schema.Boolean,
});

/** Parses a diffusers `unet/config.json` object. Errors name every offending field. */
export function parseUNetConfig(json: Record<string, unknown>): UNetConfig {
  const c = decodeConfig(UNetJson, { ...DEFAULTS, ...json }, "unet config");
  const n = c.block_out_channels.length;
  const perBlock = (key: string, value: number | readonly number[]): number[] => {
    const list = typeof value === "number" ? Array<number>(n).fill(value) : [...value];
    if (list.length !== n)
      fail(
        `"${key}" has ${list.length} entries for ${n} blocks (block_out_channels); give one per block or a single number`,
      );
    return list;
  };
  for (const [key, list] of [
    ["down_block_types", c.down_block_types],
    ["up_block_types", c.up_block_types],
  ] as const) {
    if (list.length !== n)
      fail(`"${key}" has ${list.length} blocks but "block_out_channels" has ${n}; they must match`);
  }

  const config: UNetConfig = {
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    sampleSize: c.sample_size,
    blockOutChannels: [...c.block_out_channels],
    downBlockTypes: [...c.down_block_types],
    upBlockTypes: [...c.up_block_types],
    layersPerBlock: perBlock("layers_per_block", c.layers_per_block),
    heads:
      c.num_attention_heads !== null
        ? perBlock("num_attention_heads", c.num_attention_heads)
        : perBlock("attention_head_dim", c.attention_head_dim),
    transformerLayersPerBlock: perBlock("transformer_layers_per_block", c.transformer_layers_per_block),
    crossAttentionDim: c.cross_attention_dim,
    useLinearProjection: c.use_linear_projection,
    normNumGroups: c.norm_num_groups,
    normEps: c.norm_eps,
    flipSinToCos: c.flip_sin_to_cos,
    freqShift: c.freq_shift,
    timeEmbeddingDim: c.time_embedding_dim ?? c.block_out_channels[0]! * 4,
    downsamplePadding: c.downsample_padding,
    midBlockScaleFactor: c.mid_block_scale_factor,
    centerInputSample: c.center_input_sample,
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
    if (v !== undefined && v !== expected)
      fail(
        `"${key}" is ${JSON.stringify(v)}, but only ${JSON.stringify(expected)} is implemented (the Stable Diffusion 1.x/2.x layout)`,
      );
  }
  if ([json.only_cross_attention].flat().some(Boolean))
    fail(`"only_cross_attention" is set; only self- plus cross-attention blocks are implemented`);
  c.blockOutChannels.forEach((ch, i) => {
    if (ch % c.normNumGroups !== 0)
      fail(`block_out_channels[${i}] = ${ch} is not divisible by norm_num_groups ${c.normNumGroups}`);
    const key = json.num_attention_heads != null ? "num_attention_heads" : "attention_head_dim";
    if (ch % c.heads[i]! !== 0)
      fail(`block_out_channels[${i}] = ${ch} does not split into ${key}[${i}] = ${c.heads[i]} heads`);
  });
  if (c.blockOutChannels[0]! % 2 !== 0)
    fail(
      `block_out_channels[0] = ${c.blockOutChannels[0]} must be even (it is the sinusoidal timestep embedding's size)`,
    );
}
