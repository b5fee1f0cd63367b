/**
 * `pickscore`: PickScore_v1 (yuvalkirstain/PickScore_v1, a CLIP ViT-H/14 fine-tuned on Pick-a-Pic), scored as
 * exp(logit_scale)·cos(image, prompt), about 18–23.
 *
 * Weights: the transformers CLIPModel folder (config.json + model.safetensors or pytorch_model.bin).
 */
import { clipPairReward } from "../clip-pair-reward.ts";

export const pickscore = clipPairReward({
  name: "pickscore",
  description: "PickScore v1 (CLIP ViT-H/14): exp(logit_scale)·cos(image, prompt), about 18-23",
  weightFiles: ["config.json + model.safetensors or pytorch_model.bin (yuvalkirstain/PickScore_v1)"],
  logitScaled: true,
  activation: { activation: "gelu", reason: "PickScore is LAION's CLIP ViT-H/14 fine-tuned, trained with GELU" },
});
