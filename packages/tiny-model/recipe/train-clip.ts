/**
 * Stage 1: a tiny CLIP, trained contrastively on (emoji, name) pairs with the symmetric InfoNCE loss at a
 * fixed temperature. Its text tower becomes the diffusion model's text encoder (as OpenAI's CLIP ViT-L/14
 * text tower is SD 1.x's), and the whole model is the alignment reward.
 */
import {
  AdamW,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  ClipTokenizer,
  Rng,
  Tensor,
  log,
  matmul,
  parseCLIPTextConfig,
  PromptSampler,
  parseCLIPVisionConfig,
  scopeAsync,
  softmax,
  sum,
  transpose,
} from "@textcraftor/core";
import { l2Normalize, poolToClip } from "@textcraftor/rewards";
import { LossLog, gatherRows, indices, learningRate, optimizerStep } from "./common.ts";
import { TEXT_CONFIG, VISION_CONFIG } from "./configs.ts";
import type { CaptionedImages } from "./emoji.ts";

/** cos × this = the logits; saved as logit_scale = ln(it). */
export const CLIP_TEMPERATURE_SCALE = 20;

export interface ClipStage {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
}

export async function trainClip(data: CaptionedImages, o: ClipStage) {
  const text = new CLIPTextModelWithProjection(parseCLIPTextConfig(TEXT_CONFIG), { rng: new Rng(o.seed) });
  const vision = new CLIPVisionModelWithProjection(parseCLIPVisionConfig(VISION_CONFIG), { rng: new Rng(o.seed + 1) });
  const tokenizer = await ClipTokenizer.load();
  // The text tower is causal and pooled at EOS, so tokens past the longest caption change nothing: train on that prefix.
  const length = Math.min(77, Math.max(...data.captions.map((c) => tokenizer.encode(c).length)) + 2);
  const ids = tokenizer.callInt32(data.captions, length);
  const pixels = 3 * data.size * data.size;
  const optimizer = new AdamW([...text.parameters(), ...vision.parameters()], { lr: o.lr, weightDecay: 0.05 });
  const batches = new PromptSampler(indices(data.captions.length), o.batch, o.seed + 2);
  const eye = Tensor.from(
    Float32Array.from({ length: o.batch * o.batch }, (_, i) => (i % (o.batch + 1) === 0 ? 1 : 0)),
    [o.batch, o.batch],
  );
  const losses = new LossLog("clip", o.steps);
  for (let step = 0; step < o.steps; step++) {
    optimizer.config.lr = learningRate(step, o.steps, o.lr);
    const batch = batches.batch(step);
    const loss = await scopeAsync(async () => {
      const images = Tensor.from(gatherRows(data.images, pixels, batch), [o.batch, 3, data.size, data.size]);
      const imageEmbeds = l2Normalize(vision.imageEmbeds(poolToClip(images, data.size)));
      const textEmbeds = l2Normalize(
        text.textEmbeds(Int32Array.from(batch.flatMap((i) => [...ids.subarray(i * length, (i + 1) * length)])), length),
      );
      const logits = matmul(imageEmbeds, transpose(textEmbeds, 0, 1)).mul(CLIP_TEMPERATURE_SCALE);
      // Cross-entropy both ways with the matching pair on the diagonal.
      const imageToText = sum(log(softmax(logits)).mul(eye));
      const textToImage = sum(log(softmax(transpose(logits, 0, 1))).mul(eye));
      const total = imageToText.add(textToImage).mul(-0.5 / o.batch);
      optimizerStep(optimizer, total);
      return total.item();
    });
    losses.add(step, loss);
  }
  eye.dispose();
  return { text, vision, curve: losses.curve, seconds: losses.seconds };
}
