/**
 * `hpsv2`: Human Preference Score v2, open_clip ViT-H-14 fine-tuned on HPD v2, scored as cos(image, prompt),
 * about 0.26–0.30 (TextCraftor weighs it ×100).
 *
 * Weights: HPS_v2_compressed.pt (open_clip names, under a `state_dict` key) or a folder holding it; the
 * ViT-H-14 config is recognised from the shapes.
 */
import { clipPairReward } from "../clip-pair-reward.ts";

export const hpsv2 = clipPairReward({
  name: "hpsv2",
  description: "HPSv2 (open_clip ViT-H-14): cos(image, prompt), about 0.26-0.30",
  weightFiles: ["HPS_v2_compressed.pt (the file, or a folder holding it)"],
  logitScaled: false,
  activation: { activation: "gelu", reason: "HPSv2 is LAION's open_clip ViT-H-14, trained with GELU" },
});
