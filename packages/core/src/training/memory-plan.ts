/**
 * What a training run will hold in GPU memory, found by running it on a meta device (device/meta-device.ts):
 * the models are built from their configs without their weights, then the run's first held-out grid and one
 * optimizer step execute with every allocation the real run makes and no kernel. The peak is therefore the
 * pool's real peak for those settings (resolution, batch, N and K, checkpointing, LoRA, EMA, mixed precision),
 * not a formula; `train --dry-run` prints it, and every run prints it before it starts.
 */
import type { PipelineSource } from "@textcraftor/webgpu-kernels";
import { metaGpu } from "../device/meta-device.ts";
import type { Gpu } from "../device/open-device.ts";
import type { Module } from "../nn/module.ts";
import { hybridSchedule } from "../pipelines/controls.ts";
import { encodePrompts, textToImage } from "../pipelines/text-to-image.ts";
import { ddimFor } from "../models/stable-diffusion.ts";
import { noGrad } from "../tensor/autograd.ts";
import { BufferPool } from "../tensor/pool.ts";
import { createRuntime, kernelFamily, withRuntime, type KernelFamily, type Runtime } from "../tensor/runtime.ts";
import { scope } from "../tensor/scope.ts";
import { validateTrainConfig, type TrainConfig } from "./config.ts";
import type { TrainingModels } from "./step.ts";
import { optimizationStep, prepareTraining } from "./trainer.ts";

export interface PlannedPart {
  name: string;
  /** "f32", "f16", or "f32+f16" for a mix. */
  dtype: string;
  parameters: number;
  bytes: number;
}

export interface MemoryPlan {
  parts: PlannedPart[];
  /** AdamW's two moments (and the EMA copy when on) of the trained weights. */
  optimizerBytes: number;
  /** The trained weights' gradients (alive during the step, so part of the peak). */
  gradientBytes: number;
  /** What the step needs beyond weights, gradients and optimizer state at its peak. */
  activationBytes: number;
  /** The most the run held at once (weights included). */
  peakBytes: number;
  /** Why the run cannot run on this adapter (a tensor or a kernel's bindings past its limits), or null. */
  problem: string | null;
  /** Every pipeline the planned run dispatched: the real runner compiles them ahead (`KernelRunner.warmUp`). */
  pipelines: PipelineSource[];
}

export interface PlanInputs {
  /** Builds the models the run trains with (weights not loaded: the meta device ignores them), named for the report. */
  build(): Promise<{ models: TrainingModels; parts: [string, Module][] }>;
  config: TrainConfig;
  prompts: string[];
  evalPrompts?: string[];
  kernels?: KernelFamily;
}

/** Runs `inputs` on a meta twin of `gpu` and reports its memory; the current runtime is untouched. */
export async function planTrainingMemory(gpu: Gpu, inputs: PlanInputs): Promise<MemoryPlan> {
  const rt = createRuntime(metaGpu(gpu), { kernels: inputs.kernels ?? kernelFamily(gpu) });
  return withRuntime(rt, () => measure(rt, inputs));
}

async function measure({ pool, runner }: Runtime, inputs: PlanInputs): Promise<MemoryPlan> {
  const plan: MemoryPlan = {
    parts: [],
    optimizerBytes: 0,
    gradientBytes: 0,
    activationBytes: 0,
    peakBytes: 0,
    problem: null,
    pipelines: [],
  };
  let weights = 0;
  try {
    const { models, parts } = await inputs.build();
    const c = validateTrainConfig(inputs.config, 2 ** (models.sd.vae.config.blockOutChannels.length - 1));
    weights = pool.liveBytes;
    plan.parts = parts.map(([name, m]) => describe(name, m));
    const rest = weights - plan.parts.reduce((s, p) => s + p.bytes, 0);
    if (rest > 0) plan.parts.push({ name: "reward models", dtype: "", parameters: 0, bytes: rest });
    const before = pool.liveBytes;
    const training = prepareTraining(models, c);
    plan.optimizerBytes = pool.liveBytes - before;
    if (inputs.evalPrompts?.length) heldOutGrid(models, c, inputs.evalPrompts);
    const prompts = Array.from(
      { length: c.batchSize * c.gradAccum },
      (_, i) => inputs.prompts[i % inputs.prompts.length]!,
    );
    const sampler = ddimFor(models.sd, c.inferenceSteps, c.spacing);
    await optimizationStep(models, training, sampler, c, prompts, 0, c.lr);
    // Backward makes one f32 gradient per trained weight; the step frees them with the rest.
    plan.gradientBytes = training.params.reduce((s, p) => s + BufferPool.sizeClass(p.size * 4), 0);
  } catch (e) {
    // What the adapter cannot hold is the plan's finding; a bad setting, option or file is the user's to fix and
    // keeps its own error (it read as "cannot run on this adapter: reward \"x\" has no option …").
    if (!/\badapter\b|\bmaxBufferSize\b|\blimit\b/.test((e as Error).message)) throw e;
    plan.problem = (e as Error).message;
  }
  plan.peakBytes = pool.peakBytes;
  plan.pipelines = runner.pipelineSources();
  plan.activationBytes = Math.max(0, plan.peakBytes - weights - plan.optimizerBytes - plan.gradientBytes);
  return plan;
}

/** The run's first held-out grid (the trainer's "before" samples): the paper's hybrid schedule, no gradient. */
function heldOutGrid({ sd, frozenTextEncoder }: TrainingModels, c: TrainConfig, prompts: string[]): void {
  noGrad(() =>
    scope(() => {
      const original = encodePrompts(sd, frozenTextEncoder, prompts),
        tuned = encodePrompts(sd, sd.textEncoder, prompts);
      const embeddingsAt = hybridSchedule(original, tuned, Math.round(0.6 * c.inferenceSteps));
      textToImage(sd, {
        prompts,
        seed: c.seed + 1,
        steps: c.inferenceSteps,
        guidanceScale: c.guidanceScale,
        height: c.resolution,
        width: c.resolution,
        spacing: c.spacing,
        embeddingsAt,
      });
    }),
  );
}

function describe(name: string, m: Module): PlannedPart {
  const params = m.parameters();
  const dtypes = [...new Set(params.map((p) => p.dtype))].sort().join("+");
  // In the pool's size classes, as the peak is counted.
  return {
    name,
    dtype: dtypes,
    parameters: params.reduce((s, p) => s + p.size, 0),
    bytes: params.reduce((s, p) => s + BufferPool.sizeClass(p.storage.bytes), 0),
  };
}

const gib = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/** The plan as the CLI prints it; `budget` (bytes) adds whether it fits. */
export function formatMemoryPlan(plan: MemoryPlan, budget?: { bytes: number; what: string }): string {
  const row = (name: string, bytes: number, dtype = "", parameters = 0) =>
    `  ${name.padEnd(22)} ${dtype.padEnd(8)} ${parameters ? `${(parameters / 1e6).toFixed(1)} M` : ""}`.padEnd(45) +
    gib(bytes).padStart(11);
  const rows = [
    ...plan.parts.map((p) => row(p.name, p.bytes, p.dtype, p.parameters)),
    row("gradients", plan.gradientBytes),
    row("optimizer state", plan.optimizerBytes),
    row("activations at peak", plan.activationBytes),
    row("peak", plan.peakBytes),
  ];
  const verdict = plan.problem
    ? `does not fit this adapter: ${plan.problem}`
    : budget
      ? plan.peakBytes <= budget.bytes
        ? `fits: ${gib(plan.peakBytes)} of ${gib(budget.bytes)} (${budget.what})`
        : `does not fit: ${gib(plan.peakBytes)} > ${gib(budget.bytes)} (${budget.what}); try --mixed-precision fp16, a smaller --batch-size or --resolution, or gradient checkpointing`
      : "WebGPU does not report a GPU's memory: compare the peak with yours (or give --memory-budget GiB)";
  return ["memory plan (measured on a meta device: every allocation of the run, no kernel):", ...rows, verdict].join(
    "\n",
  );
}
