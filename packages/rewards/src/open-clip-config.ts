/**
 * Configs for an open_clip (or OpenAI CLIP) state_dict, which ships without a transformers config.json.
 * Every size comes from the tensor shapes; the two things shapes cannot tell, the number of attention heads
 * and the MLP activation, come from an `open_clip_config.json` beside the weights when there is one (the
 * file open_clip's hub releases carry), else from open_clip's own model configs: text heads = width / 64,
 * vision heads = width / head_width with head_width 64 except ViT-H-14 (80), ViT-g-14 (88), ViT-bigG-14 (104).
 */
import {
  OPEN_CLIP_VIT_H_14,
  type CLIPActivation,
  type CLIPTextConfig,
  type CLIPVisionConfig,
  type TensorData,
} from "@textcraftor/core";

const VISION_HEAD_WIDTH: Record<number, number> = { [OPEN_CLIP_VIT_H_14.vision.hiddenSize]: 80, 1408: 88, 1664: 104 };
const DEFAULT_HEAD_WIDTH = 64;

export interface OpenClipConfigs {
  vision: CLIPVisionConfig;
  text?: CLIPTextConfig;
}

/**
 * `activation` is what the caller knows about the weights' training: OpenAI's own CLIPs used quick_gelu,
 * LAION's open_clip models exact gelu; `quick_gelu` in open_clip_config.json overrides it.
 */
export function openClipConfigs(
  tensors: ReadonlyMap<string, TensorData>,
  json: unknown,
  activation: CLIPActivation,
): OpenClipConfigs {
  const cfg = modelConfig(json);
  const shape = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`open_clip checkpoint: missing "${name}"; is this a CLIP ViT state_dict?`);
    return t.shape;
  };
  const hiddenAct: CLIPActivation =
    typeof cfg.quick_gelu === "boolean" ? (cfg.quick_gelu ? "quick_gelu" : "gelu") : activation;
  const common = { hiddenAct, layerNormEps: 1e-5 };

  const [width, numChannels, patchSize] = shape("visual.conv1.weight") as [number, number, number];
  const positions = shape("visual.positional_embedding")[0]! - 1;
  const vision: CLIPVisionConfig = {
    ...common,
    hiddenSize: width,
    intermediateSize: shape("visual.transformer.resblocks.0.mlp.c_fc.weight")[0]!,
    numHiddenLayers: countBlocks(tensors, "visual.transformer.resblocks."),
    numAttentionHeads: heads(
      "vision",
      width,
      numberField(cfg.vision_cfg, "head_width", VISION_HEAD_WIDTH[width] ?? DEFAULT_HEAD_WIDTH),
      true,
    ),
    projectionDim: shape("visual.proj")[1]!,
    imageSize: Math.round(Math.sqrt(positions)) * patchSize,
    patchSize,
    numChannels,
  };
  if ((vision.imageSize / patchSize) ** 2 !== positions)
    throw new Error(
      `open_clip checkpoint: visual.positional_embedding has ${positions} patch positions, not a square grid`,
    );
  if (!tensors.has("token_embedding.weight")) return { vision };

  const [vocabSize, textWidth] = shape("token_embedding.weight") as [number, number];
  const text: CLIPTextConfig = {
    ...common,
    hiddenSize: textWidth,
    intermediateSize: shape("transformer.resblocks.0.mlp.c_fc.weight")[0]!,
    numHiddenLayers: countBlocks(tensors, "transformer.resblocks."),
    numAttentionHeads: heads(
      "text",
      textWidth,
      numberField(cfg.text_cfg, "heads", textWidth / DEFAULT_HEAD_WIDTH),
      false,
    ),
    projectionDim: shape("text_projection")[1]!,
    vocabSize,
    maxPositionEmbeddings: shape("positional_embedding")[0]!,
  };
  return { vision, text };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** open_clip_config.json nests the model config under "model_cfg"; open_clip's model_configs/*.json do not. */
function modelConfig(json: unknown): Json {
  if (json === undefined) return {};
  if (!isObject(json)) throw new Error("open_clip_config.json: expected a JSON object");
  return isObject(json.model_cfg) ? json.model_cfg : json;
}

function numberField(section: unknown, key: string, fallback: number): number {
  const v = isObject(section) ? section[key] : undefined;
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !(v > 0))
    throw new Error(`open_clip_config.json: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Heads from a head width (vision) or a head count (text). */
function heads(tower: string, width: number, value: number, isHeadWidth: boolean): number {
  const n = isHeadWidth ? width / value : value;
  if (!Number.isInteger(n) || width % n) {
    throw new Error(
      `open_clip checkpoint: cannot tell the attention heads of the ${width}-wide ${tower} tower; put the model's open_clip_config.json (with vision_cfg.head_width and text_cfg.heads) next to the weights`,
    );
  }
  return n;
}

function countBlocks(tensors: ReadonlyMap<string, TensorData>, prefix: string): number {
  let count = 0;
  for (const name of tensors.keys()) {
    if (!name.startsWith(prefix)) continue;
    count = Math.max(count, Number.parseInt(name.slice(prefix.length), 10) + 1);
  }
  return count;
}
