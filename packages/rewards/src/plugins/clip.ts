/**
 * `clip`: cos(CLIP image embedding, CLIP prompt embedding), TextCraftor's always-on constraint against mode
 * collapse (the authors use open_clip ViT-g-14 laion2b_s34b_b88k and weigh it ×50–100).
 *
 * Weights: any CLIP with both towers. transformers: a folder with config.json + model.safetensors or
 * pytorch_model.bin (or sharded). open_clip/OpenAI: the state_dict file (open_clip_pytorch_model.bin) or its
 * folder, with open_clip_config.json beside it if there is one; LAION weights use gelu, OpenAI's quick_gelu, decided
 * from that config, OpenAI's checkpoint format or the name (clip-activation.ts), or act=.
 */
import { clipPairReward } from "../clip-pair-reward.ts";

export const clip = clipPairReward({
  name: "clip",
  description:
    "CLIP image-prompt cosine similarity (TextCraftor's constraint; any CLIP, transformers or open_clip layout)",
  weightFiles: [
    "config.json + model.safetensors or pytorch_model.bin (transformers CLIPModel)",
    "or open_clip_pytorch_model.bin (open_clip, optionally with open_clip_config.json)",
  ],
  logitScaled: false,
  activation: {
    activation: "gelu",
    reason:
      "nothing says otherwise, and LAION's open_clip weights (TextCraftor's ViT-g-14) use GELU; give act=quick_gelu for OpenAI weights",
  },
});
