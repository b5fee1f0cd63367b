/** Writes a StableDiffusion as a diffusers folder (model_index.json, per-component config.json + safetensors). */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import type { StableDiffusion } from "./stable-diffusion.ts";

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));

/** One diffusers component folder: config.json + the module's weights as safetensors. */
export async function saveComponent(
  folder: string,
  config: object,
  module: Module,
  file: string,
  dtype: "F32" | "F16" = "F32",
) {
  await mkdir(folder, { recursive: true });
  await writeFileAtomic(join(folder, "config.json"), json(config));
  await writeFileAtomic(
    join(folder, file),
    writeSafetensors(await module.stateDict(), { dtype, metadata: { format: "pt" } }),
  );
}

/** `sd.source.configs` must hold the components' original config.json objects (as loading sets them). */
export async function saveDiffusersFolder(
  sd: StableDiffusion,
  folder: string,
  { dtype = "F32" as "F32" | "F16" } = {},
): Promise<void> {
  const { configs } = sd.source;
  await saveComponent(
    join(folder, "text_encoder"),
    { architectures: ["CLIPTextModel"], ...configs.textEncoder },
    sd.textEncoder,
    "model.safetensors",
    dtype,
  );
  await saveComponent(
    join(folder, "unet"),
    { _class_name: "UNet2DConditionModel", ...configs.unet },
    sd.unet,
    "diffusion_pytorch_model.safetensors",
    dtype,
  );
  await saveComponent(
    join(folder, "vae"),
    { _class_name: "AutoencoderKL", ...configs.vae },
    sd.vae,
    "diffusion_pytorch_model.safetensors",
    dtype,
  );
  await mkdir(join(folder, "scheduler"), { recursive: true });
  const c = sd.schedulerConfig;
  await writeFileAtomic(
    join(folder, "scheduler", "scheduler_config.json"),
    json({
      _class_name: "DDIMScheduler",
      beta_start: c.betaStart,
      beta_end: c.betaEnd,
      beta_schedule: c.betaSchedule,
      num_train_timesteps: c.numTrainTimesteps,
      prediction_type: c.predictionType,
      clip_sample: false,
      set_alpha_to_one: c.setAlphaToOne,
      steps_offset: c.stepsOffset,
      timestep_spacing: c.timestepSpacing,
    }),
  );
  await writeFileAtomic(
    join(folder, "model_index.json"),
    json({
      _class_name: "StableDiffusionPipeline",
      text_encoder: ["transformers", "CLIPTextModel"],
      tokenizer: ["transformers", "CLIPTokenizer"],
      unet: ["diffusers", "UNet2DConditionModel"],
      vae: ["diffusers", "AutoencoderKL"],
      scheduler: ["diffusers", "DDIMScheduler"],
    }),
  );
}
