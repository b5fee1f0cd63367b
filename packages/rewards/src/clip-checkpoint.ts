/**
 * A CLIP checkpoint as users have it, for the CLIP-based rewards:
 *   - transformers: a folder with config.json and model.safetensors / pytorch_model.bin (or their sharded
 *     `*.index.json` form), or one of those files with config.json beside it (PickScore, openai/clip-vit-*);
 *   - open_clip or OpenAI: a state_dict file (HPSv2's HPS_v2_compressed.pt, open_clip_pytorch_model.bin),
 *     or a folder holding one, its configs from open_clip_config.json or the shapes (open-clip-config.ts).
 * Either way the result is frozen transformers-layout towers.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  openClipToHf,
  parseCLIPTextConfig,
  parseCLIPVisionConfig,
  readWeightFiles,
  stripPrefix,
  withInitMode,
  withParamDtype,
  type DType,
  type CLIPActivation,
  type CLIPTextConfig,
  type CLIPVisionConfig,
  type TensorData,
} from "@textcraftor/core";
import { chooseActivation, configQuickGelu, type ActivationChoice } from "./clip-activation.ts";
import { openClipConfigs } from "./open-clip-config.ts";
import { readJson, requirePath, weightFilesIn } from "./weights-location.ts";

export interface ClipCheckpoint {
  path: string;
  /** Tensors under transformers' CLIPModel names (open_clip checkpoints converted). */
  tensors: Map<string, TensorData>;
  vision: CLIPVisionConfig;
  /** Absent when the checkpoint holds only the image tower (a CLIPVisionModelWithProjection). */
  text?: CLIPTextConfig;
  /** The learned log temperature (`logit_scale`), when the checkpoint has one. */
  logitScale?: number;
  /** The towers' MLP activation and what decided it, to report. */
  activation: ActivationChoice;
}

export interface ReadClipOptions {
  /** The user's choice for open_clip-layout weights whose open_clip_config.json does not say (act=). */
  activation?: CLIPActivation;
  /** The activation when nothing about the checkpoint says: what the plugin's usual weights need, and why. */
  fallback: ActivationChoice;
}

const HF_FILES = ["model.safetensors", "pytorch_model.bin"];
const OPEN_CLIP_FILES = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];
/** Entries OpenAI's CLIP state_dicts carry besides the weights (its build_model deletes them too). */
const OPENAI_EXTRAS = ["input_resolution", "context_length", "vocab_size"];

export async function readClipCheckpoint(path: string, options: ReadClipOptions): Promise<ClipCheckpoint> {
  const { files, folder } = locate(requirePath(path, "CLIP weights"));
  const tensors = unwrap(await readWeightFiles(files));
  try {
    if (tensors.has("vision_model.embeddings.patch_embedding.weight")) {
      const configFile = join(folder, "config.json");
      if (!existsSync(configFile))
        throw new Error(`transformers-layout CLIP weights need their config.json beside them, and ${folder} has none`);
      const config = await readJson(configFile);
      const text = tensors.has("text_model.embeddings.token_embedding.weight")
        ? parseCLIPTextConfig(config)
        : undefined;
      const vision = parseCLIPVisionConfig(config);
      const activation = { activation: vision.hiddenAct, reason: `${configFile} has hidden_act "${vision.hiddenAct}"` };
      return { path, tensors, vision, text, logitScale: tensors.get("logit_scale")?.data[0], activation };
    }
    if (tensors.has("visual.conv1.weight")) {
      const configFile = join(folder, "open_clip_config.json");
      const json = existsSync(configFile) ? await readJson(configFile) : undefined;
      const openAiFormat = OPENAI_EXTRAS.some((name) => tensors.has(name));
      for (const name of OPENAI_EXTRAS) tensors.delete(name);
      const activation = chooseActivation({
        configQuickGelu: configQuickGelu(json),
        option: options.activation,
        openAiFormat,
        path,
        fallback: options.fallback,
      });
      const configs = openClipConfigs(tensors, json, activation.activation);
      return {
        path,
        tensors: openClipToHf(tensors),
        ...configs,
        logitScale: tensors.get("logit_scale")?.data[0],
        activation,
      };
    }
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const sample = [...tensors.keys()].slice(0, 4).join(", ");
  throw new Error(
    `${path} is not a CLIP checkpoint: it has neither "vision_model.embeddings.patch_embedding.weight" (transformers) nor "visual.conv1.weight" (open_clip/OpenAI); it holds ${sample || "no float tensors"}${tensors.size > 4 ? ", ..." : ""}`,
  );
}

/** The frozen image tower (`vision_model.*`, `visual_projection`). */
export function visionTower(checkpoint: ClipCheckpoint, dtype: DType = "f32"): CLIPVisionModelWithProjection {
  const model = withInitMode("none", () =>
    withParamDtype(dtype, () => new CLIPVisionModelWithProjection(checkpoint.vision)),
  );
  return load(model, checkpoint);
}

/** The frozen text tower; CLIP's BPE tokenizer gives ids up to 49407, so the vocabulary must be CLIP's. */
export function textTower(
  checkpoint: ClipCheckpoint,
  vocabSize: number,
  dtype: DType = "f32",
): CLIPTextModelWithProjection {
  const { text, path } = checkpoint;
  if (!text)
    throw new Error(
      `${path} holds only an image tower; this reward also needs the text tower (a whole CLIPModel / open_clip model)`,
    );
  if (text.vocabSize !== vocabSize)
    throw new Error(
      `${path}: the text tower has a ${text.vocabSize}-token vocabulary, but CLIP's tokenizer needs ${vocabSize}`,
    );
  return load(
    withInitMode("none", () => withParamDtype(dtype, () => new CLIPTextModelWithProjection(text))),
    checkpoint,
  );
}

function load<M extends CLIPVisionModelWithProjection | CLIPTextModelWithProjection>(
  model: M,
  { tensors, path }: ClipCheckpoint,
): M {
  try {
    model.loadWeights(tensors);
  } catch (e) {
    model.dispose();
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  // Reward models are fixed: without this, every backward would fill (and keep) gradients for their weights.
  model.requiresGrad(false);
  return model;
}

/** The weights files a path names: the file itself, or the known (or only) weights in a folder. */
function locate(path: string): { files: string[]; folder: string } {
  if (!statSync(path).isDirectory()) return { files: [path], folder: dirname(path) };
  for (const index of HF_FILES.map((f) => `${f}.index.json`)) {
    if (existsSync(join(path, index))) return { files: [join(path, index)], folder: path };
  }
  const known = [...HF_FILES, ...OPEN_CLIP_FILES].find((f) => existsSync(join(path, f)));
  if (known) return { files: [join(path, known)], folder: path };
  const found = weightFilesIn(path);
  if (found.length === 1) return { files: found, folder: path };
  throw new Error(
    `${path}: expected CLIP weights: ${[...HF_FILES, ...OPEN_CLIP_FILES].join(", ")} or a single .safetensors/.bin/.pt/.pth file, ` +
      (found.length
        ? `found several (${found.map((f) => f.slice(path.length + 1)).join(", ")}): name the file instead of the folder`
        : "found none"),
  );
}

/** Training scripts' wrappers: a `state_dict` entry next to optimizer state (HPSv2), then DDP's `module.`. */
function unwrap(tensors: Map<string, TensorData>): Map<string, TensorData> {
  let out = [...tensors.keys()].some((k) => k.startsWith("state_dict."))
    ? stripPrefix(tensors, "state_dict.")
    : tensors;
  while (out.size && [...out.keys()].every((k) => k.startsWith("module."))) out = stripPrefix(out, "module.");
  return out;
}
