// Peak GPU memory of backpropagation on the bundled tiny model (bench/RESULTS.md, "Memory of the tape"):
//   bun bench/memory-peaks.ts
// Peaks are the buffer pool's, above what was live before the pass (the weights): what the tape and its
// activations cost. The UNet pass is forward + backward at the model's own resolution with trainable weights;
// the training step is one TextCraftor step (DDIM, gradients through the last steps, VAE decode, a reward).
import { TINY_MODEL } from "@textcraftor/tiny-model";
import { loadStableDiffusion } from "../packages/core/src/models/stable-diffusion.ts";
import { cloneTextEncoder, ddimFor } from "../packages/core/src/models/stable-diffusion.ts";
import { mean, sum } from "../packages/core/src/ops/reduce.ts";
import { randn } from "../packages/core/src/ops/random.ts";
import { TRAIN_DEFAULTS, type TrainConfig } from "../packages/core/src/training/config.ts";
import { rewardGraph } from "../packages/core/src/training/step.ts";
import { noGrad } from "../packages/core/src/tensor/autograd.ts";
import { initRuntime, memoryStats, runtime } from "../packages/core/src/tensor/runtime.ts";
import { scope } from "../packages/core/src/tensor/scope.ts";

await initRuntime();
const sd = await loadStableDiffusion(TINY_MODEL);
const side = (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 32;
const factor = 2 ** (sd.vae.config.blockOutChannels.length - 1);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(2);

function peakAbove(fn: () => void): number {
  runtime().runner.flush();
  const base = memoryStats().liveBytes;
  runtime().pool.resetPeak();
  fn();
  runtime().runner.flush();
  return memoryStats().peakBytes - base;
}

const batch = 2;
sd.unet.requiresGrad(true);
const ids = sd.tokenizer.callInt32(["a red apple", "a blue car"]);
const unetPeak = peakAbove(() =>
  scope(() => {
    const x = noGrad(() => randn([batch, sd.unet.config.inChannels, side / factor, side / factor], 1));
    const context = noGrad(() => sd.textEncoder.forward(ids));
    const eps = sd.unet.forward(x, 500, context);
    sum(eps.mul(eps)).backward();
  }),
);
for (const p of sd.unet.parameters()) {
  p.grad?.dispose();
  p.grad = null;
}
sd.unet.requiresGrad(false);
console.log(`UNet forward+backward, batch ${batch}, ${side}×${side} px: peak ${mib(unetPeak)} MiB above the weights`);

const frozenTextEncoder = await cloneTextEncoder(sd.textEncoder);
sd.vae.requiresGrad(false);
const brightness = { score: (images: ReturnType<typeof randn>) => mean(images.reshape([images.shape[0]!, -1]), 1) };
const models = { sd, frozenTextEncoder, rewards: [{ name: "brightness", weight: 1, reward: brightness }] };
for (const gradientCheckpointing of [false, true]) {
  const config: TrainConfig = {
    ...TRAIN_DEFAULTS,
    inferenceSteps: 10,
    gradSteps: 5,
    batchSize: batch,
    resolution: side,
    gradientCheckpointing,
  };
  const sampler = ddimFor(sd, config.inferenceSteps, config.spacing);
  const prompts = ["a red apple", "a blue car"];
  const stepPeak = peakAbove(() =>
    scope(() => rewardGraph(models, sampler, config, prompts, 0).total.neg().backward()),
  );
  for (const p of sd.textEncoder.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  console.log(
    `training step, batch ${batch}, ${config.inferenceSteps} steps, last ${config.gradSteps} with gradient, checkpointing ${gradientCheckpointing ? "on" : "off"}: peak ${mib(stepPeak)} MiB above the weights`,
  );
}
