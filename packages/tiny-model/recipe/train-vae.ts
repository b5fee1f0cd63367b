/**
 * Stage 2: the AutoencoderKL, trained as a β-VAE on 32×32 emoji: mean squared reconstruction error in
 * [-1, 1] plus a small KL term that keeps the latents near a unit Gaussian. SD's VAE adds perceptual and
 * adversarial losses for sharpness at 512²; at 32² plain reconstruction suffices. Afterwards the latents'
 * scaling_factor is set to 1 / their standard deviation over the data, as SD's 0.18215 was chosen.
 */
import {
  AdamW,
  AutoencoderKL,
  PromptSampler,
  Tensor,
  exp,
  mean,
  noGrad,
  randn,
  scopeAsync,
  square,
} from "@textcraftor/core";
import { LossLog, gatherRows, indices, learningRate, optimizerStep } from "./common.ts";
import { VAE_CONFIG } from "./configs.ts";
import type { CaptionedImages } from "./emoji.ts";

export interface VaeStage {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  klWeight: number;
}

export async function trainVae(data: CaptionedImages, o: VaeStage) {
  const vae = AutoencoderKL.fromConfig(VAE_CONFIG, { seed: o.seed });
  const pixels = 3 * data.size * data.size;
  const optimizer = new AdamW(vae.parameters(), { lr: o.lr, weightDecay: 0 });
  const batches = new PromptSampler(indices(data.captions.length), o.batch, o.seed + 1);
  const losses = new LossLog("vae", o.steps);
  for (let step = 0; step < o.steps; step++) {
    optimizer.config.lr = learningRate(step, o.steps, o.lr);
    const batch = batches.batch(step);
    const loss = await scopeAsync(async () => {
      const x = Tensor.from(gatherRows(data.images, pixels, batch), [o.batch, 3, data.size, data.size])
        .mul(2)
        .sub(1);
      const { mean: mu, logvar } = vae.encode(x);
      const z = mu.add(randn(mu.shape, o.seed + 7, step * mu.size).mul(exp(logvar.mul(0.5))));
      const reconstruction = mean(square(vae.decode(z).sub(x)));
      const kl = mean(square(mu).add(exp(logvar)).sub(logvar).sub(1)).mul(0.5);
      optimizerStep(optimizer, reconstruction.add(kl.mul(o.klWeight)));
      return reconstruction.item();
    });
    losses.add(step, loss);
  }
  const scalingFactor = 1 / (await latentStd(vae, data));
  return { vae, scalingFactor, curve: losses.curve, seconds: losses.seconds };
}

/** The standard deviation of the posterior means over the whole data set. */
async function latentStd(vae: AutoencoderKL, data: CaptionedImages): Promise<number> {
  const { means } = await encodeAll(vae, data);
  let s = 0,
    s2 = 0;
  for (const v of means) {
    s += v;
    s2 += v * v;
  }
  const m = s / means.length;
  return Math.sqrt(s2 / means.length - m * m);
}

/** Posterior means and log-variances of every image, [N, 4, h, w] each (unscaled). */
export async function encodeAll(vae: AutoencoderKL, data: CaptionedImages, chunk = 64) {
  const n = data.captions.length,
    pixels = 3 * data.size * data.size;
  const factor = 2 ** (vae.config.blockOutChannels.length - 1),
    latent = vae.config.latentChannels * (data.size / factor) ** 2;
  const means = new Float32Array(n * latent),
    logvars = new Float32Array(n * latent);
  for (let start = 0; start < n; start += chunk) {
    const rows = Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
    await scopeAsync(async () => {
      const x = Tensor.from(gatherRows(data.images, pixels, rows), [rows.length, 3, data.size, data.size])
        .mul(2)
        .sub(1);
      const d = noGrad(() => vae.encode(x));
      means.set(await d.mean.toArray(), start * latent);
      logvars.set(await d.logvar.toArray(), start * latent);
    });
  }
  return { means, logvars, latent };
}
