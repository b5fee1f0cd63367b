/**
 * CLIP text and vision configs, read from a transformers `config.json`: a CLIPTextModel / CLIPVisionModel
 * config (SD's `text_encoder/config.json`), or a full CLIPModel config holding `text_config` and
 * `vision_config` (PickScore, the LAION CLIP-H release). Every field is checked (type, integer, range), with
 * all problems in one error.
 */
import { Schema } from "effect";
import { IntUpTo, PositiveFinite, decodeConfig } from "../config-schema.ts";

/** The MLP activation: OpenAI's weights were trained with quick_gelu, LAION/open_clip ones with exact gelu. */
export type CLIPActivation = "quick_gelu" | "gelu";

/** The transformer shape both towers share. */
export interface CLIPEncoderConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  hiddenAct: CLIPActivation;
  layerNormEps: number;
  /** Width of the text_projection / visual_projection output (the joint embedding space). */
  projectionDim: number;
}

export interface CLIPTextConfig extends CLIPEncoderConfig {
  vocabSize: number;
  maxPositionEmbeddings: number;
}

export interface CLIPVisionConfig extends CLIPEncoderConfig {
  imageSize: number;
  patchSize: number;
  numChannels: number;
}

type Json = Record<string, unknown>;

/**
 * transformers' CLIPTextConfig / CLIPVisionConfig defaults. They apply only inside a CLIPModel config:
 * recent transformers save sub-configs as a diff against these defaults, so a field may be absent there
 * on purpose. A standalone config is saved with every field, so there a missing field is an error.
 */
const TEXT_DEFAULTS: Json = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
};
const VISION_DEFAULTS: Json = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  image_size: 224,
  patch_size: 32,
  num_channels: 3,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
};

/** Bounds well past every released CLIP (ViT-bigG: width 1664, 48 layers): beyond them a file is broken. */
const Width = IntUpTo(16_384);
const encoderFields = {
  hidden_size: Width,
  intermediate_size: IntUpTo(65_536),
  num_hidden_layers: IntUpTo(256),
  num_attention_heads: IntUpTo(1024),
  hidden_act: Schema.Literals(["quick_gelu", "gelu"]),
  layer_norm_eps: PositiveFinite,
  projection_dim: Width,
};
const TextJson = Schema.Struct({
  ...encoderFields,
  vocab_size: IntUpTo(1 << 20),
  max_position_embeddings: IntUpTo(4096),
});
const VisionJson = Schema.Struct({
  ...encoderFields,
  image_size: IntUpTo(4096),
  patch_size: IntUpTo(1024),
  num_channels: IntUpTo(16),
});

export function parseCLIPTextConfig(json: unknown): CLIPTextConfig {
  const src = towerSource(json, "text");
  const c = decodeConfig(TextJson, src.fields, src.where);
  return { ...encoderConfig(src, c), vocabSize: c.vocab_size, maxPositionEmbeddings: c.max_position_embeddings };
}

export function parseCLIPVisionConfig(json: unknown): CLIPVisionConfig {
  const src = towerSource(json, "vision");
  const c = decodeConfig(VisionJson, src.fields, src.where);
  const config = {
    ...encoderConfig(src, c),
    imageSize: c.image_size,
    patchSize: c.patch_size,
    numChannels: c.num_channels,
  };
  if (config.imageSize % config.patchSize)
    fail(src, `image_size ${config.imageSize} is not a multiple of patch_size ${config.patchSize}`);
  return config;
}

interface Source {
  fields: Json;
  where: string;
}

/** The fields of one tower, with the CLIPModel-level overrides transformers applies. */
function towerSource(json: unknown, tower: "text" | "vision"): Source {
  if (!isObject(json))
    throw new Error(
      `CLIP ${tower} config: expected the parsed config.json object, got ${json === null ? "null" : typeof json}`,
    );
  const nested = json[`${tower}_config`];
  if (!isObject(nested)) return { fields: json, where: `CLIP ${tower} config` };
  // Old configs also carry `<tower>_config_dict`, which transformers lets override `<tower>_config`.
  const legacy = json[`${tower}_config_dict`];
  const fields = {
    ...(tower === "text" ? TEXT_DEFAULTS : VISION_DEFAULTS),
    ...nested,
    ...(isObject(legacy) ? legacy : {}),
  };
  // CLIPModel sizes both projections by its top-level projection_dim; the sub-configs' copies are often stale (512).
  if (json.projection_dim !== undefined) fields.projection_dim = json.projection_dim;
  return { fields, where: `CLIP ${tower} config (${tower}_config of a CLIPModel config)` };
}

function encoderConfig(src: Source, c: Schema.Schema.Type<typeof TextJson | typeof VisionJson>): CLIPEncoderConfig {
  const config: CLIPEncoderConfig = {
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numHiddenLayers: c.num_hidden_layers,
    numAttentionHeads: c.num_attention_heads,
    hiddenAct: c.hidden_act,
    layerNormEps: c.layer_norm_eps,
    projectionDim: c.projection_dim,
  };
  if (config.hiddenSize % config.numAttentionHeads)
    fail(src, `hidden_size ${config.hiddenSize} is not divisible by num_attention_heads ${config.numAttentionHeads}`);
  return config;
}

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function fail(src: Source, message: string): never {
  throw new Error(`${src.where}: ${message}`);
}
