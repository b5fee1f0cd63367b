/**
 * A run's exports beyond the tuned component: the whole model (a diffusers folder, or a single-file SD 1.x
 * checkpoint with the original LDM names as A1111/ComfyUI load) and LoRA adapters in kohya's naming.
 */
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  exportTextEncoder,
  kohyaLoRATensors,
  saveComponent,
  singleFileStateDict,
  writeFileAtomic,
  writeSafetensors,
  type KohyaPrefix,
  type Module,
  type StableDiffusion,
  type Trainable,
} from "@textcraftor/core";

type DType = "F32" | "F16";

export async function exportSingleFile(sd: StableDiffusion, path: string, dtype: DType): Promise<string> {
  await writeFileAtomic(path, writeSafetensors(await singleFileStateDict(sd), { dtype, metadata: { format: "pt" } }));
  return path;
}

/**
 * The whole model with the tuned part in, in the input's own format: a copy of a diffusers folder with that
 * component replaced (`RUN/model/`), or a single file (`RUN/model.safetensors`) for a single-file input.
 */
export async function exportFullModel(
  sd: StableDiffusion,
  baseModel: string,
  runDir: string,
  trainable: Trainable,
  dtype: DType,
): Promise<string> {
  if (sd.source.layout === "single-file") return exportSingleFile(sd, join(runDir, "model.safetensors"), dtype);
  const folder = join(runDir, "model");
  await rm(folder, { recursive: true, force: true });
  await cp(baseModel, folder, { recursive: true });
  // The base component goes first: its own weight files (.bin, shards, fp16 variants) could win over ours when loading.
  const component = trainable === "text-encoder" ? "text_encoder" : "unet";
  await rm(join(folder, component), { recursive: true, force: true });
  if (trainable === "text-encoder")
    await exportTextEncoder(sd.textEncoder, sd.source.configs.textEncoder, join(folder, component), { dtype });
  else
    await saveComponent(
      join(folder, component),
      { _class_name: "UNet2DConditionModel", ...sd.source.configs.unet },
      sd.unet,
      "diffusion_pytorch_model.safetensors",
      dtype,
    );
  return folder;
}

/** The adapters as a kohya LoRA file (before they are merged into the weights). */
export async function exportLoRA(
  module: Module,
  prefix: KohyaPrefix,
  path: string,
  lora: { rank: number; alpha?: number },
): Promise<string> {
  const metadata = {
    ss_network_module: "networks.lora",
    ss_network_dim: String(lora.rank),
    ss_network_alpha: String(lora.alpha ?? lora.rank),
    ss_base_model_version: "sd_v1",
  };
  await writeFileAtomic(path, writeSafetensors(await kohyaLoRATensors(module, prefix), { metadata }));
  return path;
}
