/**
 * open_clip checkpoints (HPSv2's ViT-H-14) in transformers' CLIPModel layout, so the same model classes
 * serve both. open_clip checkpoints carry no config.json: OPEN_CLIP_VIT_H_14 gives the matching configs.
 */
import type { TensorData } from "../../nn/index.ts";
import type { CLIPTextConfig, CLIPVisionConfig } from "./config.ts";

/**
 * open_clip's ViT-H-14 (laion2B-s32B-b79K, HPSv2's backbone): vision width 1280, 32 layers, head width 80,
 * patch 14 at 224 px; text width 1024, 16 heads, 24 layers; embed_dim 1024; MLP ratio 4. Non-OpenAI
 * open_clip models use nn.GELU (quick_gelu is only for OpenAI's weights).
 */
export const OPEN_CLIP_VIT_H_14: { readonly text: CLIPTextConfig; readonly vision: CLIPVisionConfig } = Object.freeze({
  text: Object.freeze({
    vocabSize: 49408,
    maxPositionEmbeddings: 77,
    hiddenSize: 1024,
    intermediateSize: 4096,
    numHiddenLayers: 24,
    numAttentionHeads: 16,
    hiddenAct: "gelu",
    layerNormEps: 1e-5,
    projectionDim: 1024,
  }),
  vision: Object.freeze({
    imageSize: 224,
    patchSize: 14,
    numChannels: 3,
    hiddenSize: 1280,
    intermediateSize: 5120,
    numHiddenLayers: 32,
    numAttentionHeads: 16,
    hiddenAct: "gelu",
    layerNormEps: 1e-5,
    projectionDim: 1024,
  }),
});

/** Whole-tensor renames, open_clip → transformers. */
const NAMES: Record<string, string> = {
  "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
  "visual.class_embedding": "vision_model.embeddings.class_embedding",
  "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
  "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
  positional_embedding: "text_model.embeddings.position_embedding.weight",
  logit_scale: "logit_scale",
};

/** Prefix renames; inside a residual block, the sub-module renames below follow. */
const PREFIXES: [string, string][] = [
  ["visual.transformer.resblocks.", "vision_model.encoder.layers."],
  ["visual.ln_pre.", "vision_model.pre_layrnorm."],
  ["visual.ln_post.", "vision_model.post_layernorm."],
  ["transformer.resblocks.", "text_model.encoder.layers."],
  ["ln_final.", "text_model.final_layer_norm."],
];

const BLOCK_PARTS: [string, string][] = [
  ["ln_1.", "layer_norm1."],
  ["ln_2.", "layer_norm2."],
  ["attn.out_proj.", "self_attn.out_proj."],
  ["mlp.c_fc.", "mlp.fc1."],
  ["mlp.c_proj.", "mlp.fc2."],
];

/** open_clip stores the projections [width, embed] and applies them as x @ proj; nn.Linear wants [embed, width]. */
const PROJECTIONS: Record<string, string> = {
  "visual.proj": "visual_projection.weight",
  text_projection: "text_projection.weight",
};

/**
 * Renames an open_clip state_dict to transformers' CLIPModel names: nn.MultiheadAttention's packed
 * `attn.in_proj_{weight,bias}` (q, k, v stacked on dim 0) become `self_attn.{q,k,v}_proj`, and the
 * projections are transposed into Linear weights. The split tensors are views of the input's data.
 */
export function openClipToHf(tensors: ReadonlyMap<string, TensorData>): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  const unknown: string[] = [];
  for (const [name, t] of tensors) {
    if (name in PROJECTIONS) {
      out.set(PROJECTIONS[name]!, transpose2d(name, t));
      continue;
    }
    if (name in NAMES) {
      out.set(NAMES[name]!, t);
      continue;
    }
    const prefix = PREFIXES.find(([from]) => name.startsWith(from));
    if (!prefix) {
      unknown.push(name);
      continue;
    }
    const renamed = prefix[1] + name.slice(prefix[0].length);
    const packed = /^(.*)\.attn\.in_proj_(weight|bias)$/.exec(renamed);
    if (packed) {
      splitQkv(name, t).forEach((part, i) => out.set(`${packed[1]}.self_attn.${"qkv"[i]}_proj.${packed[2]}`, part));
      continue;
    }
    const part = BLOCK_PARTS.find(([from]) => renamed.includes(`.${from}`));
    out.set(part ? renamed.replace(`.${part[0]}`, `.${part[1]}`) : renamed, t);
  }
  if (unknown.length) {
    throw new Error(
      `openClipToHf: ${unknown.length} tensor(s) are not part of an open_clip CLIP model: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", ..." : ""}. ` +
        "Strip any wrapper prefix first (e.g. `module.` from DDP training, or `state_dict.`).",
    );
  }
  return out;
}

function splitQkv(name: string, t: TensorData): TensorData[] {
  const rows = t.shape[0]!;
  if (rows % 3)
    throw new Error(`openClipToHf: "${name}" has ${rows} rows, not a multiple of 3 (expected q, k and v stacked)`);
  const size = t.data.length / 3;
  return [0, 1, 2].map((i) => ({
    data: t.data.subarray(i * size, (i + 1) * size),
    shape: [rows / 3, ...t.shape.slice(1)],
  }));
}

function transpose2d(name: string, t: TensorData): TensorData {
  if (t.shape.length !== 2)
    throw new Error(`openClipToHf: "${name}" should be a [width, embed] matrix, got shape [${t.shape}]`);
  const [rows, cols] = t.shape as [number, number];
  const data = new Float32Array(t.data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = t.data[r * cols + c]!;
  return { data, shape: [cols, rows] };
}
