/**
 * `aesthetic`: the LAION improved-aesthetic-predictor, an MLP on the L2-normalised CLIP ViT-L/14 image
 * embedding (about 1–10; TextCraftor weighs it ×3).
 *
 * Weights: `weights=DIR` with the MLP `.pth` (sac+logos+ava1-l14-linearMSE.pth) directly in DIR and the CLIP
 * ViT-L/14 it was trained on in DIR/clip/ (transformers openai/clip-vit-large-patch14: config.json +
 * model.safetensors or pytorch_model.bin; or an OpenAI/open_clip state_dict file). `mlp=FILE` and
 * `clip=PATH` name either part directly, with or without `weights`.
 */
import { readWeights, type RewardContext, type RewardPlugin } from "@textcraftor/core";
import { statSync } from "node:fs";
import { join } from "node:path";
import { AestheticMLP } from "../aesthetic-mlp.ts";
import { readClipCheckpoint, visionTower } from "../clip-checkpoint.ts";
import { CLIP_OPTIONS, clipOptions } from "../clip-options.ts";
import { preprocessForClip } from "../preprocess.ts";
import { l2Normalize } from "../similarity.ts";
import { disposeOnError, requirePath, requireWeights, weightFilesIn } from "../weights-location.ts";

const PUBLISHED_MLP = "sac+logos+ava1-l14-linearMSE.pth";

export const aesthetic: RewardPlugin = {
  name: "aesthetic",
  description: "LAION improved aesthetic predictor (MLP on L2-normalised CLIP ViT-L/14 image embeddings), about 1-10",
  needs: "image",
  weightFiles: [
    `${PUBLISHED_MLP} (the MLP; any one .pth)`,
    "clip/ (CLIP ViT-L/14: config.json + model.safetensors or pytorch_model.bin, or an OpenAI/open_clip state_dict)",
  ],
  options: {
    mlp: "the MLP .pth file, instead of the one in the weights folder",
    clip: "the CLIP ViT-L/14 folder or file, instead of <weights>/clip",
    ...CLIP_OPTIONS,
  },
  async load(context: RewardContext) {
    const { preprocess, activation } = clipOptions(context.options);
    const mlpPath = requirePath(context.options.mlp ?? findMlp(context), "aesthetic MLP");
    const clipPath = requirePath(
      context.options.clip ?? join(requireWeights(aesthetic, context), "clip"),
      "aesthetic CLIP ViT-L/14",
    );
    const checkpoint = await readClipCheckpoint(clipPath, {
      activation,
      fallback: {
        activation: "quick_gelu",
        reason: "the aesthetic predictor's CLIP is OpenAI's ViT-L/14, trained with QuickGELU",
      },
    });
    const vision = visionTower(checkpoint, context.weightDtype);
    const mlp = await disposeOnError(vision, async () => {
      const head = AestheticMLP.fromStateDict(await readWeights(mlpPath), mlpPath);
      if (head.inFeatures === vision.config.projectionDim) return head;
      head.dispose();
      throw new Error(
        `${mlpPath}: ${head.inputLayer} takes ${head.inFeatures}-d embeddings, but the CLIP model at ${clipPath} gives ${vision.config.projectionDim}-d ones (projection_dim); the published MLP goes with CLIP ViT-L/14`,
      );
    });
    return {
      info: `${clipPath}: MLP activation ${checkpoint.activation.activation} (${checkpoint.activation.reason})`,
      score: (images) =>
        mlp.forward(l2Normalize(vision.imageEmbeds(preprocessForClip(images, vision.config.imageSize, preprocess)))),
      dispose() {
        mlp.dispose();
        vision.dispose();
      },
    };
  },
};

/** The one .pth in the weights folder (the published file's name wins if there are several). */
function findMlp(context: RewardContext): string {
  const folder = requireWeights(aesthetic, context);
  if (!statSync(folder).isDirectory())
    throw new Error(
      `${folder}: the aesthetic weights are a folder (the MLP .pth and clip/); to name the files themselves, pass mlp=FILE and clip=PATH`,
    );
  const found = weightFilesIn(folder, /\.pth$/);
  if (found.length === 1) return found[0]!;
  const published = found.find((f) => f.endsWith(PUBLISHED_MLP));
  if (published) return published;
  throw new Error(
    `${folder}: ${found.length ? `several .pth files (${found.join(", ")})` : "no .pth file"}; put the aesthetic MLP (${PUBLISHED_MLP}) there, or pass mlp=FILE`,
  );
}
