/**
 * `bun run bench scale`: the paper's training step at full size — SD 1.5's text encoder (trained), UNet, VAE and
 * original encoder, with its four reward towers (CLIP ViT-L/14 for the aesthetic score and the CLIP constraint,
 * ViT-H/14 for PickScore and HPSv2) — at 512×512, batch 1, K = 5, gradient checkpointing on; random weights.
 * N is cut to K + 1: the gradient-free prefix runs under no_grad and frees its activations step by step, so more
 * prefix steps add time but not memory. For f32 and f16 frozen weights it reports the memory plan (meta device),
 * then runs the step for real: the pool's peak, the process's peak RSS, the step's time and one UNet call's
 * (`--run unet`: the UNet alone and one call). Every kernel is compiled ahead, so the times exclude the JIT.
 */
import { readFileSync } from "node:fs";
import {
  AutoencoderKL,
  CLIPTextModel,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  Linear,
  TRAIN_DEFAULTS,
  UNet2DConditionModel,
  cloneTextEncoder,
  createStableDiffusion,
  ddimFor,
  keep,
  noGrad,
  parseCLIPTextConfig,
  parseCLIPVisionConfig,
  planTrainingMemory,
  prepareTraining,
  randn,
  runtime,
  scope,
  withInitMode,
  withParamDtype,
  type DType,
  type Gpu,
  type LoadedReward,
  type MemoryPlan,
  type Module,
  type TrainConfig,
  type WeightedReward,
} from "@textcraftor/core";
import { optimizationStep, type TrainingModels } from "@textcraftor/core/internal";
import { cosineSimilarity, l2Normalize, preprocessForClip } from "@textcraftor/rewards";
import { SD15_SIZES, SMALL_SIZES, pixelSide, type ModelSizes } from "./models.ts";
import { VIT_L14 } from "./training.ts";

/** A reward tower: transformers CLIPVisionConfig, and the text tower's CLIPTextConfig for image+prompt rewards. */
interface Tower {
  vision: Record<string, unknown>;
  text?: Record<string, unknown>;
}

const VIT_L14_TEXT = {
  vocab_size: 49408,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 768,
};
/** open_clip's ViT-H-14 (LAION-2B), the backbone of PickScore and HPSv2. */
const VIT_H14 = {
  hidden_size: 1280,
  intermediate_size: 5120,
  num_hidden_layers: 32,
  num_attention_heads: 16,
  image_size: 224,
  patch_size: 14,
  num_channels: 3,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 1024,
};
const VIT_H14_TEXT = {
  vocab_size: 49408,
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  max_position_embeddings: 77,
  hidden_act: "gelu",
  layer_norm_eps: 1e-5,
  projection_dim: 1024,
};

export interface ScaleSizes {
  models: ModelSizes;
  towers: Record<string, Tower>;
  gradSteps: number;
}

/** The paper's setting: its four rewards on SD 1.5 at 512². */
export const SD15_SCALE: ScaleSizes = {
  models: SD15_SIZES,
  gradSteps: 5,
  towers: {
    aesthetic: { vision: VIT_L14 },
    clip: { vision: VIT_L14, text: VIT_L14_TEXT },
    pickscore: { vision: VIT_H14, text: VIT_H14_TEXT },
    hpsv2: { vision: VIT_H14, text: VIT_H14_TEXT },
  },
};

/** The same graph at tiny widths, for the tests and a quick look. */
const tiny = (c: Record<string, unknown>) => ({
  ...c,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  projection_dim: 32,
});
export const SMALL_SCALE: ScaleSizes = {
  models: SMALL_SIZES,
  gradSteps: 2,
  towers: Object.fromEntries(
    Object.entries(SD15_SCALE.towers).map(([k, t]) => [
      k,
      { vision: { ...tiny(t.vision), image_size: 56 }, text: t.text && tiny(t.text) },
    ]),
  ),
};

const PROMPT = "a photograph of an astronaut riding a horse";

/** One reward tower with random weights: aesthetic-shaped (a head on the image embedding) or CLIP-shaped (image–prompt cosine). */
function tower(name: string, t: Tower, dtype: DType): { reward: WeightedReward; modules: [string, Module][] } {
  const config = parseCLIPVisionConfig(t.vision);
  const built = withInitMode("gpu", () =>
    withParamDtype(dtype, () => ({
      vision: new CLIPVisionModelWithProjection(config),
      text: t.text ? new CLIPTextModelWithProjection(parseCLIPTextConfig(t.text)) : null,
      head: t.text ? null : new Linear(config.projectionDim, 1),
    })),
  );
  const image = (images: Parameters<LoadedReward["score"]>[0]) =>
    l2Normalize(built.vision.imageEmbeds(preprocessForClip(images, config.imageSize)));
  const score: LoadedReward["score"] = built.head
    ? (images) => built.head!.forward(image(images)).reshape([-1])
    : (images, prompts) => {
        const ids = prompts.flatMap(() => [49406, 320, 1125, ...Array(74).fill(49407)]);
        const text = noGrad(() => built.text!.textEmbeds(ids));
        return cosineSimilarity(image(images), text);
      };
  // Frozen, as the reward plugins load them: no gradient of their own weights.
  for (const m of [built.vision, built.text, built.head]) m?.requiresGrad(false);
  const modules: [string, Module | null][] = [
    [`${name} image tower`, built.vision],
    [`${name} text tower`, built.text],
    [`${name} head`, built.head],
  ];
  return {
    reward: { name, weight: 1, reward: { score } },
    modules: modules.filter((m): m is [string, Module] => m[1] !== null),
  };
}

const frozenUnet = (s: ScaleSizes, dtype: DType) =>
  withInitMode("gpu", () =>
    withParamDtype(dtype, () => new UNet2DConditionModel(s.models.unet, { gradientCheckpointing: true })),
  );

async function buildRun(s: ScaleSizes, dtype: DType): Promise<{ models: TrainingModels; parts: [string, Module][] }> {
  const { models: m } = s;
  const textEncoder = withInitMode("gpu", () => new CLIPTextModel(parseCLIPTextConfig(m.textEncoder)));
  const frozen = <M>(build: () => M) => withInitMode("gpu", () => withParamDtype(dtype, build));
  const unet = frozenUnet(s, dtype);
  const vae = frozen(() => AutoencoderKL.fromConfig(m.vae, { gradientCheckpointing: true }));
  const sd = await createStableDiffusion({ textEncoder, unet, vae });
  const frozenTextEncoder = await cloneTextEncoder(textEncoder, dtype);
  const towers = Object.entries(s.towers).map(([name, t]) => tower(name, t, dtype));
  const parts: [string, Module][] = [
    ["text encoder (trained)", textEncoder],
    ["UNet", unet],
    ["VAE", vae],
    ["original text encoder", frozenTextEncoder],
  ];
  for (const t of towers) parts.push(...t.modules);
  return { models: { sd, frozenTextEncoder, rewards: towers.map((t) => t.reward) }, parts };
}

export const scaleConfig = (s: ScaleSizes): TrainConfig => ({
  ...TRAIN_DEFAULTS,
  steps: 1,
  batchSize: 1,
  inferenceSteps: s.gradSteps + 1,
  gradSteps: s.gradSteps,
  resolution: pixelSide(s.models),
  gradientCheckpointing: true,
});

/**
 * What runs for real after the plan: nothing, one UNet call alone (its weights only: minutes at full size on a CPU
 * adapter), or the whole step (every model, then the step and a UNet call).
 */
export type ScaleMode = "plan" | "unet" | "step";

export interface ScaleRow {
  dtype: DType;
  plan: MemoryPlan;
  /** Measured on the device; the step's fields only in "step" mode. */
  measured?: { poolPeakBytes: number; rssPeakBytes: number; stepSeconds?: number; unetCallSeconds: number };
}

/** The plan for `dtype`, then what `mode` asks for on the bound runtime's device. */
export async function runScale(gpu: Gpu, s: ScaleSizes, dtype: DType, mode: ScaleMode): Promise<ScaleRow> {
  const config = scaleConfig(s);
  const plan = await planTrainingMemory(gpu, { build: () => buildRun(s, dtype), config, prompts: [PROMPT] });
  if (mode === "plan" || plan.problem) return { dtype, plan };
  const { pool, runner } = runtime();
  const { models, parts } =
    mode === "step" ? await buildRun(s, dtype) : { models: null, parts: [["UNet", frozenUnet(s, dtype)]] as const };
  const unet = models?.sd.unet ?? (parts[0]![1] as UNet2DConditionModel);
  // Every kernel the step uses, compiled before any timing: the times below are the kernels', not the JIT's.
  runner.warmUp(plan.pipelines);
  await gpu.device.queue.onSubmittedWorkDone();
  pool.resetPeak();
  let stepSeconds: number | undefined;
  if (models) {
    const training = prepareTraining(models, config);
    const started = performance.now();
    await optimizationStep(
      models,
      training,
      ddimFor(models.sd, config.inferenceSteps, config.spacing),
      config,
      [PROMPT],
      0,
      config.lr,
    );
    stepSeconds = (performance.now() - started) / 1000;
    training.optimizer.dispose();
  }
  // One UNet call as sampling makes it: the CFG batch of 2 at the run's latent size.
  const side = s.models.latent,
    width = s.models.textEncoder.hidden_size as number;
  const unetStarted = performance.now();
  const out = noGrad(() =>
    scope(() => keep(unet.forward(randn([2, 4, side, side], 1), 500, randn([2, 77, width], 2)))),
  );
  await out.toArray();
  out.dispose();
  const unetCallSeconds = (performance.now() - unetStarted) / 1000;
  const poolPeakBytes = pool.peakBytes;
  runner.flush();
  for (const [, m] of parts) m.dispose();
  return { dtype, plan, measured: { poolPeakBytes, rssPeakBytes: peakRss(), stepSeconds, unetCallSeconds } };
}

/** The process's peak resident memory (Linux VmHWM), or the current RSS elsewhere. */
function peakRss(): number {
  try {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.memoryUsage().rss;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

export function formatScaleRow(r: ScaleRow): string {
  const p = r.plan;
  const weights = p.parts.reduce((s, x) => s + x.bytes, 0);
  const planned = `plan: weights ${gib(weights)}, gradients ${gib(p.gradientBytes)}, optimizer ${gib(p.optimizerBytes)}, activations ${gib(p.activationBytes)}, peak ${gib(p.peakBytes)}`;
  if (p.problem) return `${r.dtype} weights: ${planned}; does not fit: ${p.problem}`;
  if (!r.measured) return `${r.dtype} weights: ${planned}`;
  const m = r.measured;
  const step = m.stepSeconds === undefined ? "" : `, step ${m.stepSeconds.toFixed(1)} s`;
  return (
    `${r.dtype} weights: ${planned}\n  measured${m.stepSeconds === undefined ? " (the UNet's weights and one call, no step)" : ""}: pool peak ${gib(m.poolPeakBytes)}, ` +
    `process peak RSS ${gib(m.rssPeakBytes)}${step}, one UNet call (CFG batch 2) ${m.unetCallSeconds.toFixed(1)} s`
  );
}
