/**
 * Loading a Stable Diffusion 1.x model as users have it: a diffusers folder (model_index.json, text_encoder/,
 * unet/, vae/, scheduler/) or a single-file checkpoint with the original LDM names (.safetensors or .ckpt).
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { withInitMode, withParamDtype } from "../nn/init.ts";
import type { DType } from "../tensor/tensor.ts";
import type { DDIMScheduler } from "../schedulers/ddim.ts";
import { parseSchedulerConfig, SD15_SCHEDULER_CONFIG, type SchedulerConfig } from "../schedulers/config.ts";
import { createSampler } from "../schedulers/registry.ts";
import type { Spacing } from "../schedulers/timesteps.ts";
import { ClipTokenizer } from "../tokenizer/clip.ts";
import { CLIPTextModel } from "./clip/text.ts";
import { parseCLIPTextConfig } from "./clip/config.ts";
import { loadCLIPWeights } from "./clip/weights.ts";
import {
  isSingleFileModelTensor,
  ldmTextEncoderToDiffusers,
  ldmUnetToDiffusers,
  ldmVaeToDiffusers,
  splitSingleFile,
} from "./convert/ldm.ts";
import { SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from "./sd15-configs.ts";
import { UNet2DConditionModel } from "./unet/unet.ts";
import { AutoencoderKL } from "./vae/autoencoder.ts";
import { readWeights } from "./weights-file.ts";
import { readComponentWeights } from "./component-weights.ts";

export interface StableDiffusion {
  tokenizer: ClipTokenizer;
  textEncoder: CLIPTextModel;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  schedulerConfig: SchedulerConfig;
  /** The folder or file it came from, and the configs as loaded (for exporting a tuned copy). */
  source: {
    path: string;
    layout: "diffusers" | "single-file";
    configs: { textEncoder: object; unet: object; vae: object };
  };
  dispose(): void;
}

export interface LoadOptions {
  /** Gradient checkpointing inside the UNet and VAE decoder (training). */
  gradientCheckpointing?: boolean;
  /** A different text encoder (a diffusers `text_encoder/` folder or a weights file), e.g. a tuned one. */
  textEncoderPath?: string;
  /** A different UNet: a diffusers `unet/` folder of the same architecture (the +UNet stage's export). */
  unetPath?: string;
  /**
   * Storage of the UNet and VAE weights: "f16" halves their memory (they are frozen when the text encoder is
   * trained); math stays f32. The text encoder is always f32, since it is the part that trains.
   */
  weightDtype?: DType;
  /** Build the models from their configs and leave their weights unread (a memory plan on the meta device). */
  withoutWeights?: boolean;
}

export async function loadStableDiffusion(path: string, options: LoadOptions = {}): Promise<StableDiffusion> {
  if (!existsSync(path))
    throw new Error(
      `model not found: ${path} (give a diffusers folder or a single-file .safetensors/.ckpt checkpoint)`,
    );
  return statSync(path).isDirectory() ? loadDiffusersFolder(path, options) : loadSingleFile(path, options);
}

/** Builds a model whose weights are loaded next, stored as `options.weightDtype`. */
const frozenInit = <M>(options: LoadOptions, build: () => M): M =>
  withInitMode("none", () => withParamDtype(options.weightDtype ?? "f32", build));

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function loadDiffusersFolder(root: string, options: LoadOptions): Promise<StableDiffusion> {
  for (const part of ["text_encoder", "unet", "vae"]) {
    if (!existsSync(join(root, part, "config.json")))
      throw new Error(`${root} is not a diffusers Stable Diffusion folder: ${part}/config.json is missing`);
  }
  const configs = {
    textEncoder: await readJson(join(root, "text_encoder/config.json")),
    unet: await readJson(join(root, "unet/config.json")),
    vae: await readJson(join(root, "vae/config.json")),
  };
  const schedulerFile = join(root, "scheduler/scheduler_config.json");
  const schedulerConfig = existsSync(schedulerFile)
    ? parseSchedulerConfig(await readJson(schedulerFile), "DDIMScheduler")
    : SD15_SCHEDULER_CONFIG;
  const textEncoder = await loadTextEncoder(
    options.textEncoderPath ?? join(root, "text_encoder"),
    configs.textEncoder,
    options,
  );
  const unet = frozenInit(
    options,
    () => new UNet2DConditionModel(configs.unet, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (!options.withoutWeights)
    unet.loadStateDict(await readComponentWeights(options.unetPath ?? join(root, "unet"), ["diffusion_pytorch_model"]));
  const vae = frozenInit(options, () =>
    AutoencoderKL.fromConfig(configs.vae, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (!options.withoutWeights)
    vae.loadWeights(await readComponentWeights(join(root, "vae"), ["diffusion_pytorch_model"]));
  return assemble(textEncoder, unet, vae, schedulerConfig, { path: root, layout: "diffusers", configs });
}

/** A text encoder from a diffusers `text_encoder/` folder (with its config) or a bare weights file. */
export async function loadTextEncoder(
  path: string,
  fallbackConfig: object = SD15_TEXT_ENCODER_CONFIG,
  { withoutWeights = false }: Pick<LoadOptions, "withoutWeights"> = {},
): Promise<CLIPTextModel> {
  if (!existsSync(path))
    throw new Error(
      `text encoder not found: ${path} (give a text_encoder/ folder, such as the one a run exports to runs/NAME/text_encoder, or a weights file)`,
    );
  const isFolder = statSync(path).isDirectory();
  const config =
    isFolder && existsSync(join(path, "config.json")) ? await readJson(join(path, "config.json")) : fallbackConfig;
  const model = withInitMode("none", () => new CLIPTextModel(parseCLIPTextConfig(config)));
  if (withoutWeights) return model;
  const weights = isFolder ? await readComponentWeights(path, ["model", "pytorch_model"]) : await readWeights(path);
  loadCLIPWeights(model, ldmTextEncoderToDiffusers(weights));
  return model;
}

async function loadSingleFile(file: string, options: LoadOptions): Promise<StableDiffusion> {
  // Only the three models' tensors are read: a full checkpoint also holds an EMA copy of the UNet (model_ema.*).
  const parts = options.withoutWeights
    ? null
    : splitSingleFile(await readWeights(file, { names: isSingleFileModelTensor }));
  const configs = { textEncoder: SD15_TEXT_ENCODER_CONFIG, unet: SD15_UNET_CONFIG, vae: SD15_VAE_CONFIG };
  let textEncoder: CLIPTextModel;
  if (options.textEncoderPath) textEncoder = await loadTextEncoder(options.textEncoderPath, undefined, options);
  else {
    textEncoder = withInitMode("none", () => new CLIPTextModel(parseCLIPTextConfig(configs.textEncoder)));
    if (parts) loadCLIPWeights(textEncoder, ldmTextEncoderToDiffusers(parts.textEncoder));
  }
  const unet = frozenInit(
    options,
    () => new UNet2DConditionModel(configs.unet, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (parts)
    unet.loadStateDict(
      options.unetPath
        ? await readComponentWeights(options.unetPath, ["diffusion_pytorch_model"])
        : ldmUnetToDiffusers(parts.unet),
    );
  const vae = frozenInit(options, () =>
    AutoencoderKL.fromConfig(configs.vae, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (parts) vae.loadWeights(ldmVaeToDiffusers(parts.vae));
  return assemble(textEncoder, unet, vae, SD15_SCHEDULER_CONFIG, { path: file, layout: "single-file", configs });
}

async function assemble(
  textEncoder: CLIPTextModel,
  unet: UNet2DConditionModel,
  vae: AutoencoderKL,
  schedulerConfig: SchedulerConfig,
  source: StableDiffusion["source"],
): Promise<StableDiffusion> {
  return createStableDiffusion({ textEncoder, unet, vae, schedulerConfig, source });
}

/** Assembles models built in memory (tests, the bundled tiny model) into a StableDiffusion. */
export async function createStableDiffusion(
  parts: Pick<StableDiffusion, "textEncoder" | "unet" | "vae"> &
    Partial<Pick<StableDiffusion, "schedulerConfig" | "source">>,
): Promise<StableDiffusion> {
  const { textEncoder, unet, vae } = parts;
  return {
    tokenizer: await ClipTokenizer.load(),
    textEncoder,
    unet,
    vae,
    schedulerConfig: parts.schedulerConfig ?? SD15_SCHEDULER_CONFIG,
    source: parts.source ?? {
      path: "(memory)",
      layout: "diffusers",
      configs: { textEncoder: textEncoder.config, unet: unet.config, vae: vae.config },
    },
    dispose() {
      textEncoder.dispose();
      unet.dispose();
      vae.dispose();
    },
  };
}

/** The registry's DDIM sampler for this model with the given timestep spacing (what training samples with). */
export function ddimFor(sd: StableDiffusion, steps: number, spacing: Spacing = "leading"): DDIMScheduler {
  return createSampler("ddim", sd.schedulerConfig, { steps, spacing });
}

/** A frozen copy of a text encoder (TextCraftor keeps the original beside the one it trains), optionally stored as f16. */
export async function cloneTextEncoder(encoder: CLIPTextModel, dtype: DType = "f32"): Promise<CLIPTextModel> {
  const copy = withInitMode("none", () => withParamDtype(dtype, () => new CLIPTextModel(encoder.config)));
  copy.loadStateDict(await encoder.stateDict());
  return copy.requiresGrad(false);
}
