/**
 * LoRA adapters in kohya's sd-scripts naming, the `.safetensors` LoRA files A1111 and ComfyUI load:
 * `lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight` (A, [r, in]), `.lora_up.weight`
 * (B, [out, r]) and `.alpha` (a scalar; the update is alpha/rank · B·A, as ours). The prefix is `lora_te`
 * for the text encoder and `lora_unet` for the UNet, followed by the layer's diffusers path with `_` for `.`.
 */
import { Linear } from "./layers.ts";
import type { Module, TensorData } from "./module.ts";

export type KohyaPrefix = "lora_te" | "lora_unet";

/** Every adapter under `root` as kohya tensors; an error if there is none. */
export async function kohyaLoRATensors(root: Module, prefix: KohyaPrefix): Promise<Map<string, TensorData>> {
  const out = new Map<string, TensorData>();
  for (const [path, m] of root.namedModules()) {
    if (!(m instanceof Linear) || !m.adapter) continue;
    const { down, up, scale } = m.adapter;
    const name = `${prefix}_${path.replace(/\./g, "_")}`;
    out.set(`${name}.lora_down.weight`, { data: await down.weight.toArray(), shape: down.weight.shape });
    out.set(`${name}.lora_up.weight`, { data: await up.weight.toArray(), shape: up.weight.shape });
    out.set(`${name}.alpha`, { data: Float32Array.of(scale * down.outFeatures), shape: [] });
  }
  if (!out.size) throw new Error("LoRA export: the model has no adapters (train with --lora-rank)");
  return out;
}
