/**
 * Stage 3: the UNet, trained as SD's was: ε-prediction with the scaled-linear 1000-step schedule, on VAE
 * latents × scaling_factor, conditioned on the frozen text encoder's last hidden states (all 77 positions),
 * with 10 % of captions dropped to "" so that classifier-free guidance works.
 */
import {
  AdamW,
  type CLIPTextModel,
  ClipTokenizer,
  Rng,
  SD15_SCHEDULER_CONFIG,
  Tensor,
  UNet2DConditionModel,
  alphasCumprod,
  betas,
  embedding,
  exp,
  mean,
  noGrad,
  PromptSampler,
  randn,
  scopeAsync,
  square,
  type AutoencoderKL,
} from "@textcraftor/core";
import { LossLog, gatherRows, indices, learningRate, optimizerStep } from "./common.ts";
import { UNET_CONFIG } from "./configs.ts";
import type { CaptionedImages } from "./emoji.ts";
import { encodeAll } from "./train-vae.ts";

export interface UnetStage {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  captionDropout: number;
}

export async function trainUnet(
  data: CaptionedImages,
  textEncoder: CLIPTextModel,
  vae: AutoencoderKL,
  scalingFactor: number,
  o: UnetStage,
) {
  const unet = new UNet2DConditionModel(UNET_CONFIG, { rng: new Rng(o.seed) });
  const n = data.captions.length;
  const { means, logvars, latent } = await encodeAll(vae, data);
  const side = UNET_CONFIG.sample_size,
    width = textEncoder.config.hiddenSize;
  // Row n is the empty prompt, the unconditional embedding.
  const states = await encodeCaptions(textEncoder, [...data.captions, ""]);
  const alphaBar = alphasCumprod(betas(SD15_SCHEDULER_CONFIG));
  const optimizer = new AdamW(unet.parameters(), { lr: o.lr, weightDecay: 0.01 });
  const batches = new PromptSampler(indices(n), o.batch, o.seed + 1);
  const rng = new Rng(o.seed + 2);
  const losses = new LossLog("unet", o.steps);
  const shape = [o.batch, 4, side, side];
  for (let step = 0; step < o.steps; step++) {
    optimizer.config.lr = learningRate(step, o.steps, o.lr);
    const batch = batches.batch(step);
    const timesteps = batch.map(() => Math.floor(rng.next() * alphaBar.length));
    const conditions = batch.map((i) => (rng.next() < o.captionDropout ? n : i));
    const coefficient = (f: (a: number) => number) =>
      Tensor.from(
        timesteps.map((t) => f(alphaBar[t]!)),
        [o.batch, 1, 1, 1],
      );
    const loss = await scopeAsync(async () => {
      const offset = step * 2 * o.batch * latent;
      // A fresh posterior sample each time, scaled as the pipeline expects.
      const z0 = Tensor.from(gatherRows(means, latent, batch), shape)
        .add(randn(shape, o.seed + 3, offset).mul(exp(Tensor.from(gatherRows(logvars, latent, batch), shape).mul(0.5))))
        .mul(scalingFactor);
      const noise = randn(shape, o.seed + 3, offset + o.batch * latent);
      const noisy = z0.mul(coefficient(Math.sqrt)).add(noise.mul(coefficient((a) => Math.sqrt(1 - a))));
      const context = embedding(states, conditions).reshape([o.batch, 77, width]);
      const total = mean(square(unet.forward(noisy, timesteps, context).sub(noise)));
      optimizerStep(optimizer, total);
      return total.item();
    });
    losses.add(step, loss);
  }
  states.dispose();
  return { unet, curve: losses.curve, seconds: losses.seconds };
}

/** [prompts, 77·width]: the encoder's last hidden states, one row per prompt (a table to gather batches from). */
async function encodeCaptions(encoder: CLIPTextModel, prompts: string[], chunk = 64): Promise<Tensor> {
  const tokenizer = await ClipTokenizer.load();
  const width = encoder.config.hiddenSize,
    row = 77 * width;
  const all = new Float32Array(prompts.length * row);
  for (let start = 0; start < prompts.length; start += chunk) {
    const part = prompts.slice(start, start + chunk);
    await scopeAsync(async () =>
      all.set(await noGrad(() => encoder.forward(tokenizer.callInt32(part))).toArray(), start * row),
    );
  }
  return Tensor.from(all, [prompts.length, row]);
}
