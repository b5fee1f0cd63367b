/**
 * diffusers names → the original LDM names of a single-file SD 1.x checkpoint: the inverse of `ldm.ts`, so a
 * tuned model can be saved as the one `.safetensors` file A1111 and ComfyUI load. Tested by a round trip
 * through `ldm.ts`.
 */
import type { TensorData } from "../../nn/module.ts";
import type { StableDiffusion } from "../stable-diffusion.ts";
import type { LdmUnetLayout, TensorMap } from "./ldm.ts";

const RESNET_RENAMES: [string, string][] = [
  ["norm1.", "in_layers.0."],
  ["conv1.", "in_layers.2."],
  ["time_emb_proj.", "emb_layers.1."],
  ["norm2.", "out_layers.0."],
  ["conv2.", "out_layers.3."],
  ["conv_shortcut.", "skip_connection."],
];
const renameResnet = (rest: string) =>
  RESNET_RENAMES.reduce((s, [from, to]) => (s.startsWith(from) ? to + s.slice(from.length) : s), rest);

export function diffusersUnetToLdm<T>(t: TensorMap<T>, layout: LdmUnetLayout): TensorMap<T> {
  const out = new Map<string, T>();
  const unknown: string[] = [];
  for (const [key, value] of t) {
    const name = unetKey(key, layout);
    if (name) out.set(name, value);
    else unknown.push(key);
  }
  if (unknown.length)
    throw new Error(
      `single-file export: ${unknown.length} UNet tensor name(s) have no LDM name, e.g. ${unknown.slice(0, 3).join(", ")}`,
    );
  return out;
}

function unetKey(key: string, { layersPerBlock: n, downHasAttention }: LdmUnetLayout): string | null {
  const fixed: Record<string, string> = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
  };
  for (const [from, to] of Object.entries(fixed)) if (key.startsWith(from)) return to + key.slice(from.length);
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)$/.exec(key);
  if (m) {
    const block = 1 + Number(m[1]) * (n + 1) + Number(m[3]);
    return m[2] === "resnets" ? `input_blocks.${block}.0.${renameResnet(m[4]!)}` : `input_blocks.${block}.1.${m[4]}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)$/.exec(key);
  if (m) return `input_blocks.${1 + Number(m[1]) * (n + 1) + n}.0.op.${m[2]}`;
  m = /^mid_block\.(resnets|attentions)\.(\d)\.(.*)$/.exec(key);
  if (m)
    return m[1] === "attentions"
      ? `middle_block.1.${m[3]}`
      : `middle_block.${m[2] === "0" ? 0 : 2}.${renameResnet(m[3]!)}`;
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)$/.exec(key);
  if (m) {
    const block = Number(m[1]) * (n + 1) + Number(m[3]);
    return m[2] === "resnets" ? `output_blocks.${block}.0.${renameResnet(m[4]!)}` : `output_blocks.${block}.1.${m[4]}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.(conv\..*)$/.exec(key);
  if (m) {
    const level = Number(m[1]);
    // The upsampler follows the last layer's resnet, and its attention where the level has one.
    const upHasAttention = [...downHasAttention].reverse()[level];
    return `output_blocks.${level * (n + 1) + n}.${upHasAttention ? 2 : 1}.${m[2]}`;
  }
  return null;
}

/** The VAE, with the mid-block attention's projections as the 1×1 convolutions LDM stores. */
export function diffusersVaeToLdm<T extends { shape: readonly number[] }>(
  t: TensorMap<T>,
  levels: number,
): TensorMap<T> {
  const out = new Map<string, T>();
  for (const [key, value] of t) {
    const k = key
      .replace(/^(encoder|decoder)\.mid_block\.resnets\.(\d)\./, (_, part, j) => `${part}.mid.block_${Number(j) + 1}.`)
      .replace(/^(encoder|decoder)\.mid_block\.attentions\.0\.group_norm\./, "$1.mid.attn_1.norm.")
      .replace(/^(encoder|decoder)\.mid_block\.attentions\.0\.to_(q|k|v)\./, "$1.mid.attn_1.$2.")
      .replace(/^(encoder|decoder)\.mid_block\.attentions\.0\.to_out\.0\./, "$1.mid.attn_1.proj_out.")
      .replace(/^encoder\.down_blocks\.(\d+)\.resnets\./, "encoder.down.$1.block.")
      .replace(/^encoder\.down_blocks\.(\d+)\.downsamplers\.0\./, "encoder.down.$1.downsample.")
      .replace(/^decoder\.up_blocks\.(\d+)\.resnets\./, (_, i) => `decoder.up.${levels - 1 - Number(i)}.block.`)
      .replace(
        /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\./,
        (_, i) => `decoder.up.${levels - 1 - Number(i)}.upsample.`,
      )
      .replace(/^(encoder|decoder)\.conv_norm_out\./, "$1.norm_out.")
      .replace(/\.conv_shortcut\./, ".nin_shortcut.");
    const projection = /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(k) && value.shape.length === 2;
    out.set(k, projection ? { ...value, shape: [...value.shape, 1, 1] } : value);
  }
  return out;
}

/** The three models under the prefixes a single-file checkpoint uses. */
export function singleFileTensors<T extends { shape: readonly number[] }>(
  parts: { textEncoder: TensorMap<T>; unet: TensorMap<T>; vae: TensorMap<T> },
  layout: LdmUnetLayout,
  vaeLevels: number,
): TensorMap<T> {
  const out = new Map<string, T>();
  for (const [k, v] of parts.textEncoder) out.set(`cond_stage_model.transformer.${k}`, v);
  for (const [k, v] of diffusersUnetToLdm(parts.unet, layout)) out.set(`model.diffusion_model.${k}`, v);
  for (const [k, v] of diffusersVaeToLdm(parts.vae, vaeLevels)) out.set(`first_stage_model.${k}`, v);
  return out;
}

/** A model's weights as one single-file SD 1.x checkpoint (every UNet level with the same number of layers, as SD 1.x). */
export async function singleFileStateDict(sd: StableDiffusion): Promise<TensorMap<TensorData>> {
  const { layersPerBlock, downBlockTypes } = sd.unet.config;
  if (layersPerBlock.some((n) => n !== layersPerBlock[0]))
    throw new Error(
      `single-file export: the UNet's levels have ${layersPerBlock.join(", ")} layers; the LDM layout needs the same number on every level`,
    );
  const layout = {
    layersPerBlock: layersPerBlock[0]!,
    downHasAttention: downBlockTypes.map((t) => t.startsWith("CrossAttn")),
  };
  const parts = {
    textEncoder: await sd.textEncoder.stateDict(),
    unet: await sd.unet.stateDict(),
    vae: await sd.vae.stateDict(),
  };
  return singleFileTensors(parts, layout, sd.vae.config.blockOutChannels.length);
}
