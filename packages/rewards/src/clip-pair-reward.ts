/**
 * The image–prompt CLIP rewards (clip, pickscore, hpsv2) differ only in their checkpoint and a scale: each
 * scores cos(image embedding, prompt embedding). As in TextCraftor's code, the prompt goes through the SD
 * tokenizer (CLIP's BPE, 77 tokens padded with EOS) and its embedding is computed without gradient: only
 * the image branch carries gradient back to the generator.
 */
import { ClipTokenizer, noGrad, type LoadedReward, type RewardContext, type RewardPlugin } from "@textcraftor/core";
import type { ActivationChoice } from "./clip-activation.ts";
import { readClipCheckpoint, textTower, visionTower } from "./clip-checkpoint.ts";
import { CLIP_OPTIONS, clipOptions } from "./clip-options.ts";
import { preprocessForClip } from "./preprocess.ts";
import { cosineSimilarity } from "./similarity.ts";
import { disposeOnError, requireWeights } from "./weights-location.ts";

export interface ClipPairRewardDefinition extends Pick<RewardPlugin, "name" | "description" | "weightFiles"> {
  /** Multiply the cosine by exp(logit_scale), the model's learned temperature (PickScore's score). */
  logitScaled: boolean;
  /** The activation of open_clip-layout weights when neither their config, format nor name says (clip-activation.ts). */
  activation: ActivationChoice;
}

export function clipPairReward(definition: ClipPairRewardDefinition): RewardPlugin {
  const plugin: RewardPlugin = {
    name: definition.name,
    description: definition.description,
    needs: "image+prompt",
    weightFiles: definition.weightFiles,
    options: CLIP_OPTIONS,
    async load(context: RewardContext): Promise<LoadedReward> {
      const { preprocess, activation } = clipOptions(context.options);
      const checkpoint = await readClipCheckpoint(requireWeights(plugin, context), {
        activation,
        fallback: definition.activation,
      });
      if (definition.logitScaled && checkpoint.logitScale === undefined)
        throw new Error(
          `${checkpoint.path}: no "logit_scale" tensor, which ${definition.name} multiplies the cosine by`,
        );
      const scale = definition.logitScaled ? Math.exp(checkpoint.logitScale!) : 1;
      const tokenizer = await ClipTokenizer.load();
      const text = textTower(checkpoint, tokenizer.vocabSize, context.weightDtype);
      const vision = await disposeOnError(text, () => visionTower(checkpoint, context.weightDtype));
      return {
        info: `${checkpoint.path}: MLP activation ${checkpoint.activation.activation} (${checkpoint.activation.reason})`,
        score(images, prompts) {
          if (prompts.length !== images.shape[0])
            throw new Error(`reward "${definition.name}": ${prompts.length} prompts for ${images.shape[0]} images`);
          const ids = tokenizer.callInt32(prompts, text.config.maxPositionEmbeddings);
          const promptEmbeds = noGrad(() => text.textEmbeds(ids));
          const imageEmbeds = vision.imageEmbeds(preprocessForClip(images, vision.config.imageSize, preprocess));
          const cos = cosineSimilarity(imageEmbeds, promptEmbeds);
          return scale === 1 ? cos : cos.mul(scale);
        },
        dispose() {
          text.dispose();
          vision.dispose();
        },
      };
    },
  };
  return plugin;
}
