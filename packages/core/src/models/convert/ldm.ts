/**
 * Single-file Stable Diffusion 1.x checkpoints (the original CompVis/LDM names that A1111 and ComfyUI users
 * download) → diffusers names, so one set of model classes serves both layouts.
 *
 * The mapping follows the structure of the two code bases: LDM numbers the UNet's blocks flatly
 * (input_blocks.0 = conv_in, then layers_per_block resnets (+ attentions) and one downsampler per level;
 * output_blocks has layers_per_block + 1 per level), and its VAE decoder lists levels in reverse order.
 */
export type TensorMap<T> = Map<string, T>;

const RESNET_RENAMES: [string, string][] = [
  ["in_layers.0.", "norm1."],
  ["in_layers.2.", "conv1."],
  ["emb_layers.1.", "time_emb_proj."],
  ["out_layers.0.", "norm2."],
  ["out_layers.3.", "conv2."],
  ["skip_connection.", "conv_shortcut."],
];

export interface LdmUnetLayout {
  layersPerBlock: number;
  /** Per level, whether its blocks carry attentions (CrossAttn*Block2D), in down order. */
  downHasAttention: boolean[];
}

export const SD15_UNET_LAYOUT: LdmUnetLayout = { layersPerBlock: 2, downHasAttention: [true, true, true, false] };

const MODEL_PREFIXES = ["model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."];

/** Whether a single-file tensor belongs to one of the three models (not the EMA copy, not schedule buffers). */
export const isSingleFileModelTensor = (name: string) => MODEL_PREFIXES.some((p) => name.startsWith(p));

/** Splits a single-file checkpoint into its three models' tensors (prefixes removed). */
export function splitSingleFile<T>(all: TensorMap<T>): {
  unet: TensorMap<T>;
  vae: TensorMap<T>;
  textEncoder: TensorMap<T>;
} {
  const pick = (prefix: string) =>
    new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  const unet = pick("model.diffusion_model."),
    vae = pick("first_stage_model."),
    textEncoder = pick("cond_stage_model.transformer.");
  if (!unet.size || !vae.size || !textEncoder.size) {
    const found = [...new Set([...all.keys()].map((k) => k.split(".").slice(0, 2).join(".")))].slice(0, 8).join(", ");
    const missing = [
      ["model.diffusion_model.", unet],
      ["first_stage_model.", vae],
      ["cond_stage_model.transformer.", textEncoder],
    ]
      .filter(([, m]) => !(m as TensorMap<T>).size)
      .map(([p]) => p);
    throw new Error(
      `not a Stable Diffusion 1.x single-file checkpoint: no tensors under ${missing.join(", ")}${found ? ` (found ${found})` : ""}. SD 2.x/XL files are not supported.`,
    );
  }
  return { unet, vae, textEncoder };
}

/** The text encoder is a transformers CLIPTextModel state dict; very old files lack the `text_model.` level. */
export function ldmTextEncoderToDiffusers<T>(t: TensorMap<T>): TensorMap<T> {
  return new Map(
    [...t]
      .filter(([k]) => !k.endsWith("position_ids"))
      .map(([k, v]) => [k.startsWith("text_model.") ? k : `text_model.${k}`, v]),
  );
}

export function ldmUnetToDiffusers<T>(t: TensorMap<T>, layout: LdmUnetLayout = SD15_UNET_LAYOUT): TensorMap<T> {
  const { layersPerBlock: n, downHasAttention } = layout;
  const levels = downHasAttention.length;
  const upHasAttention = [...downHasAttention].reverse();
  const out = new Map<string, T>();
  const unknown: string[] = [];
  for (const [key, value] of t) {
    const name = mapUnetKey(key, n, levels, upHasAttention);
    if (name) out.set(name, value);
    else unknown.push(key);
  }
  if (unknown.length)
    throw new Error(
      `single-file UNet: ${unknown.length} tensor name(s) not understood, e.g. ${unknown.slice(0, 3).join(", ")}`,
    );
  return out;
}

function mapUnetKey(key: string, n: number, levels: number, upHasAttention: boolean[]): string | null {
  const fixed: Record<string, string> = {
    "time_embed.0.": "time_embedding.linear_1.",
    "time_embed.2.": "time_embedding.linear_2.",
    "input_blocks.0.0.": "conv_in.",
    "out.0.": "conv_norm_out.",
    "out.2.": "conv_out.",
  };
  for (const [from, to] of Object.entries(fixed)) if (key.startsWith(from)) return to + key.slice(from.length);
  let m = /^input_blocks\.(\d+)\.(\d)\.(.*)$/.exec(key);
  if (m) {
    const i = Number(m[1]) - 1,
      level = Math.floor(i / (n + 1)),
      layer = i % (n + 1),
      rest = m[3]!;
    if (layer === n) return rest.startsWith("op.") ? `down_blocks.${level}.downsamplers.0.conv.${rest.slice(3)}` : null;
    return m[2] === "0"
      ? `down_blocks.${level}.resnets.${layer}.${renameResnet(rest)}`
      : `down_blocks.${level}.attentions.${layer}.${rest}`;
  }
  m = /^middle_block\.(\d)\.(.*)$/.exec(key);
  if (m)
    return (
      {
        "0": `mid_block.resnets.0.${renameResnet(m[2]!)}`,
        "1": `mid_block.attentions.0.${m[2]}`,
        "2": `mid_block.resnets.1.${renameResnet(m[2]!)}`,
      }[m[1]!] ?? null
    );
  m = /^output_blocks\.(\d+)\.(\d)\.(.*)$/.exec(key);
  if (m) {
    const i = Number(m[1]),
      level = Math.floor(i / (n + 1)),
      layer = i % (n + 1),
      part = Number(m[2]),
      rest = m[3]!;
    if (level >= levels) return null;
    if (part === 0) return `up_blocks.${level}.resnets.${layer}.${renameResnet(rest)}`;
    // After the resnet comes the attention (if this level has one), then the upsampler on the last layer.
    if (part === 1 && upHasAttention[level]) return `up_blocks.${level}.attentions.${layer}.${rest}`;
    if (rest.startsWith("conv.")) return `up_blocks.${level}.upsamplers.0.${rest}`;
  }
  return null;
}

const renameResnet = (rest: string) =>
  RESNET_RENAMES.reduce((s, [from, to]) => (s.startsWith(from) ? to + s.slice(from.length) : s), rest);

/** The VAE: renamed blocks, reversed decoder levels, legacy attention names (squeezed by the VAE loader). */
export function ldmVaeToDiffusers<T>(t: TensorMap<T>, levels = 4): TensorMap<T> {
  const out = new Map<string, T>();
  for (const [key, value] of t) {
    const k = key
      .replace(/^(encoder|decoder)\.mid\.block_(\d)\./, (_, part, j) => `${part}.mid_block.resnets.${Number(j) - 1}.`)
      .replace(/^(encoder|decoder)\.mid\.attn_1\.norm\./, "$1.mid_block.attentions.0.group_norm.")
      .replace(/^(encoder|decoder)\.mid\.attn_1\.(q|k|v)\./, (_, part, x) => `${part}.mid_block.attentions.0.to_${x}.`)
      .replace(/^(encoder|decoder)\.mid\.attn_1\.proj_out\./, "$1.mid_block.attentions.0.to_out.0.")
      .replace(/^encoder\.down\.(\d+)\.block\./, "encoder.down_blocks.$1.resnets.")
      .replace(/^encoder\.down\.(\d+)\.downsample\./, "encoder.down_blocks.$1.downsamplers.0.")
      .replace(/^decoder\.up\.(\d+)\.block\./, (_, i) => `decoder.up_blocks.${levels - 1 - Number(i)}.resnets.`)
      .replace(/^decoder\.up\.(\d+)\.upsample\./, (_, i) => `decoder.up_blocks.${levels - 1 - Number(i)}.upsamplers.0.`)
      .replace(/^(encoder|decoder)\.norm_out\./, "$1.conv_norm_out.")
      .replace(/\.nin_shortcut\./, ".conv_shortcut.");
    out.set(k, value);
  }
  return out;
}
