/**
 * The TextCraftor training loop: per step, a prompt batch → reward graph → backward → AdamW, with metrics
 * to JSONL, sample grids for held-out prompts, atomic checkpoints and exact resume. A non-finite loss or
 * gradient skips the update; too many of those stop the run, leaving the last good checkpoint.
 */
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gridPng, splitBatch, type ImageData3 } from "../io/png.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { ddimFor } from "../models/stable-diffusion.ts";
import { applyLoRA } from "../nn/lora.ts";
import type { Module } from "../nn/module.ts";
import { AdamW } from "../optim/adamw.ts";
import { hybridSchedule } from "../pipelines/controls.ts";
import { encodePrompts, textToImage } from "../pipelines/text-to-image.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, scopeAsync } from "../tensor/scope.ts";
import { RESUMABLE_CHANGES, resumeConflicts, validateTrainConfig, type TrainConfig } from "./config.ts";
import { EMA } from "./ema.ts";
import { explainDiskFull } from "./disk-full.ts";
import { anyNonFinite } from "../ops/finite.ts";
import { checkFiniteWeights, checkRestoredWeights } from "./finite.ts";
import { clipFactor, globalGradNorm } from "./grad-clip.ts";
import { lrFactor } from "./lr-schedule.ts";
import { PromptSampler } from "./prompts.ts";
import { acquireRunLock } from "./run-lock.ts";
import { RUN_LOGS, truncateLog } from "./run-logs.ts";
import { loadCheckpoint, saveCheckpoint, type RunCounters } from "./state.ts";
import { rewardGraph, type TrainingModels } from "./step.ts";
import type { DDIMScheduler } from "../schedulers/ddim.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { allreduceGradients, broadcastParameters, sumOverRanks } from "../distributed/data-parallel.ts";
import type { Communicator } from "../distributed/mpi.ts";

export interface StepMetrics {
  step: number;
  loss: number;
  /** Each reward term's batch mean (unweighted). */
  rewards: Record<string, number>;
  skipped: boolean;
  /** The learning rate this step's update used (after the schedule). */
  lr: number;
  /** The gradients' global norm before clipping. */
  gradNorm: number;
  seconds: number;
  /** Under MPI: the seconds this step spent summing gradients over the ranks (readback, all-reduce, upload). */
  allreduceSeconds?: number;
}

export interface TrainOptions {
  models: TrainingModels;
  config: TrainConfig;
  prompts: string[];
  /** Held-out prompts for the sample grids (every `sampleEvery` steps and at the start and end). */
  evalPrompts?: string[];
  runDir: string;
  /** Continue from the run folder's latest checkpoint (an error if there is none). */
  resume?: boolean;
  /** Continue from this checkpoint folder (`<run>/checkpoints/step-N`) instead of the latest; implies `resume`. */
  resumeFrom?: string;
  /**
   * What the run is made from (model, rewards, prompt files: opaque here), saved as run.json when a fresh run
   * starts, after its settings are checked, so that a refused run leaves a previous run's record in place.
   */
  inputs?: object;
  /** Ctrl-C: when aborted, the run stops after the step in progress, saving a checkpoint of it. */
  signal?: AbortSignal;
  /**
   * Data parallel over MPI ranks (`mpirun -np R bun run cli train`): the global batch is batchSize × gradAccum × R
   * and each rank computes its share. Every rank runs `train`; only rank 0's run folder should be the user's.
   */
  distributed?: Communicator;
  onStep?(m: StepMetrics): void;
  onSample?(step: number, path: string): void;
}

export interface TrainResult {
  steps: number;
  badSteps: number;
  lastCheckpoint: string | null;
  interrupted: boolean;
}

/**
 * Freezes all but the trained part (with LoRA adapters when asked) and makes its optimizer and EMA: what a run
 * holds besides the models. `planTrainingMemory` sets up its measured step the same way.
 */
export function prepareTraining({ sd, frozenTextEncoder }: TrainingModels, c: TrainConfig) {
  const trainable: Module = c.trainable === "text-encoder" ? sd.textEncoder : sd.unet;
  // Everything else is frozen, so its weights stay bit-identical.
  for (const m of [sd.textEncoder, sd.unet, sd.vae, frozenTextEncoder]) m.requiresGrad(m === trainable);
  sd.unet.gradientCheckpointing = sd.vae.decoder.gradientCheckpointing = c.gradientCheckpointing;
  // On resume the checkpoint then overwrites the fresh adapters.
  if (c.lora) applyLoRA(trainable, { ...c.lora, seed: c.seed });
  const named = [...trainable.namedParameters()].filter(([, t]) => t.requiresGrad);
  const params = named.map(([, t]) => t);
  const optimizer = new AdamW(params, {
    lr: c.lr,
    weightDecay: c.weightDecay,
    beta1: c.beta1,
    beta2: c.beta2,
    eps: c.eps,
  });
  const ema = c.emaDecay === null ? null : new EMA(params, c.emaDecay);
  return { trainable, names: named.map(([n]) => n), params, optimizer, ema };
}

/**
 * One optimizer step: the batch's reward graph, backward, the gradient norm, and the update unless anything is
 * non-finite (then the step is skipped). Everything it makes is freed before it returns.
 */
export async function optimizationStep(
  models: TrainingModels,
  { params, optimizer, ema }: Pick<ReturnType<typeof prepareTraining>, "params" | "optimizer" | "ema">,
  sampler: DDIMScheduler,
  c: TrainConfig,
  prompts: string[],
  step: number,
  lr: number,
  comm?: Communicator,
) {
  return scopeAsync(async () => {
    // Gradient accumulation: each micro-batch's loss is scaled by 1/(N·ranks), so the summed gradients are those of
    // the mean over the whole global batch; its activations are freed by its backward before the next one runs.
    // Under MPI, rank r takes the r-th share of the global batch and the ranks' gradients are summed.
    const world = comm?.size ?? 1,
      share = prompts.length / world,
      first = (comm?.rank ?? 0) * share;
    const micro = c.batchSize,
      n = share / micro;
    const losses: Tensor[] = [],
      terms = new Map<string, Tensor[]>();
    for (let k = 0; k < n; k++) {
      const from = first + k * micro;
      const graph = rewardGraph(models, sampler, c, prompts.slice(from, from + micro), step, undefined, {
        firstSample: from,
        globalBatch: prompts.length,
      });
      const lossT = graph.total.neg().div(n * world);
      lossT.backward();
      losses.push(lossT);
      for (const [name, t] of graph.terms) terms.set(name, [...(terms.get(name) ?? []), t]);
    }
    const grads = params.map((p) => p.grad).filter((g) => g !== null);
    let allreduceSeconds: number | undefined;
    if (comm && world > 1) {
      await losses[0]!.item(); // drains the queue, so the timing below is the exchange alone
      const started = performance.now();
      await allreduceGradients(grads, comm);
      allreduceSeconds = (performance.now() - started) / 1000;
    }
    const sum = async (ts: Tensor[]) => (await Promise.all(ts.map((t) => t.item()))).reduce((a, b) => a + b, 0);
    const overRanks = (v: number) => (comm && world > 1 ? sumOverRanks(v, comm) : v);
    const loss = overRanks(await sum(losses));
    const rewards: Record<string, number> = {};
    for (const [name, ts] of terms) rewards[name] = overRanks((await sum(ts)) / ts.length) / world;
    const gradNorm = await globalGradNorm(grads);
    // Decided from values every rank shares (the summed gradients and loss), so all ranks skip or update together.
    const bad = !Number.isFinite(loss) || (await anyNonFinite(grads));
    if (!bad) {
      optimizer.update(c.maxGradNorm === null ? 1 : clipFactor(gradNorm, c.maxGradNorm), lr);
      ema?.update();
    }
    optimizer.zeroGrad();
    return { loss, rewards, skipped: bad, gradNorm, allreduceSeconds };
  });
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  // Taken before anything is written: a second process on the same folder is refused, naming the first.
  const lock = await acquireRunLock(o.runDir);
  try {
    return await trainLocked(o);
  } catch (e) {
    throw explainDiskFull(e, o.runDir);
  } finally {
    await lock.release();
  }
}

async function trainLocked(o: TrainOptions): Promise<TrainResult> {
  const { sd } = o.models;
  const c = validateTrainConfig(o.config, 2 ** (sd.vae.config.blockOutChannels.length - 1));
  const { trainable, names, params, optimizer, ema } = prepareTraining(o.models, c);
  // Every rank loaded the same files and seeds the same adapters; rank 0's copy settles any difference.
  if (o.distributed && o.distributed.size > 1) await broadcastParameters(params, o.distributed);
  const ckptDir = join(o.runDir, "checkpoints");
  await mkdir(join(o.runDir, "samples"), { recursive: true });
  await mkdir(ckptDir, { recursive: true });

  let counters: RunCounters = { step: 0, badSteps: 0 };
  const configFile = join(o.runDir, "config.json");
  if (o.resume || o.resumeFrom) {
    // Exact continuation needs the run's own settings; only its length and logging may change.
    const saved = existsSync(configFile)
      ? (JSON.parse(await readFile(configFile, "utf8")) as Partial<TrainConfig>)
      : {};
    const conflicts = resumeConflicts(saved, c);
    if (conflicts.length) {
      throw new Error(
        `--resume: the run in ${o.runDir} was made with ${conflicts.join(", ")}; resume with the run's settings (only ${RESUMABLE_CHANGES.join(", ")} may change)`,
      );
    }
    const restored = await loadCheckpoint(ckptDir, trainable, names, optimizer, { ema, from: o.resumeFrom });
    if (!restored) throw new Error(`--resume: ${ckptDir} has no checkpoint to resume from`);
    counters = restored;
    await checkRestoredWeights(params, ckptDir, counters.step);
    // The interrupted process logged steps past the checkpoint; they are redone now.
    for (const log of RUN_LOGS) await truncateLog(join(o.runDir, log), counters.step);
  } else {
    if (o.inputs)
      await writeFileAtomic(join(o.runDir, "run.json"), new TextEncoder().encode(JSON.stringify(o.inputs, null, 2)));
    // A fresh run in a used folder starts its logs over.
    for (const log of ["metrics.jsonl", "samples.jsonl"]) await writeFile(join(o.runDir, log), "");
  }
  // A resume may have lengthened the run: its config.json says so.
  await writeFileAtomic(configFile, new TextEncoder().encode(JSON.stringify(c, null, 2)));

  const sampler = ddimFor(sd, c.inferenceSteps, c.spacing);
  // Each step takes batchSize × gradAccum (× ranks) prompts, its global batch, in micro-batches of batchSize.
  const batches = new PromptSampler(o.prompts, c.batchSize * c.gradAccum * (o.distributed?.size ?? 1), c.seed);
  const metricsFile = join(o.runDir, "metrics.jsonl");
  let lastCheckpoint: string | null = null;
  // The first and last grids also go side by side into before-after.png.
  const before = counters.step === 0 ? await sample(o, c, 0, ema) : null;
  let after: ImageData3[] | null = null;
  let interrupted = false;

  while (counters.step < c.steps) {
    const started = performance.now();
    const prompts = batches.batch(counters.step);
    const lr = c.lr * lrFactor(c.lrScheduler, counters.step, c.lrWarmupSteps, c.steps);
    const { loss, rewards, skipped, gradNorm, allreduceSeconds } = await optimizationStep(
      o.models,
      { params, optimizer, ema },
      sampler,
      c,
      prompts,
      counters.step,
      lr,
      o.distributed,
    );
    counters = { step: counters.step + 1, badSteps: counters.badSteps + (skipped ? 1 : 0) };
    const metrics: StepMetrics = {
      step: counters.step,
      loss,
      rewards,
      skipped,
      lr,
      gradNorm,
      seconds: (performance.now() - started) / 1000,
      ...(allreduceSeconds === undefined ? {} : { allreduceSeconds }),
    };
    await appendFile(metricsFile, JSON.stringify(metrics) + "\n");
    o.onStep?.(metrics);
    if (counters.badSteps > c.maxBadSteps) {
      throw new Error(
        `stopped after ${counters.badSteps} steps with a non-finite loss or gradient (limit ${c.maxBadSteps}); ` +
          `the last good checkpoint is ${lastCheckpoint ?? "(none yet)"}. Lower the learning rate or the reward weights.`,
      );
    }
    interrupted = o.signal?.aborted === true;
    if (skipped && !interrupted) continue;
    const due = interrupted || counters.step % c.checkpointEvery === 0 || counters.step === c.steps;
    if (due) await checkFiniteWeights(params, counters.step, lastCheckpoint);
    if (due)
      lastCheckpoint = await saveCheckpoint(ckptDir, trainable, names, optimizer, counters, {
        ema,
        totalLimit: c.checkpointsTotalLimit,
      });
    if (interrupted) break;
    if (counters.step % c.sampleEvery === 0 || counters.step === c.steps)
      after = await sample(o, c, counters.step, ema);
  }
  // Steps skipped after a bad update leave it in place: the caller must not export it.
  await checkFiniteWeights(params, counters.step, lastCheckpoint);
  optimizer.dispose();
  // The caller exports what the model holds: with EMA on, that is the average (as diffusers' scripts save).
  if (ema) {
    ema.copyTo();
    ema.dispose();
  }
  // A resumed run has no "before" here; its first grid is samples/step-000000.png.
  if (before && after && !interrupted) {
    await writeFileAtomic(join(o.runDir, "before-after.png"), gridPng([...before, ...after], before.length));
  }
  return { steps: counters.step, badSteps: counters.badSteps, lastCheckpoint, interrupted };
}

/**
 * A grid of the held-out prompts (from the moving average of the weights when there is one) with the paper's hybrid inference (original encoder first, tuned for the last
 * 60 %), scored by the training rewards: each reward's mean over the grid goes to samples.jsonl.
 */
async function sample(o: TrainOptions, c: TrainConfig, step: number, ema: EMA | null): Promise<ImageData3[] | null> {
  if (ema) return ema.withAveraged(() => sample(o, c, step, null));
  if (!o.evalPrompts?.length) return null;
  const { sd, frozenTextEncoder, rewards } = o.models;
  const prompts = o.evalPrompts;
  const { data, shape, scores } = await scopeAsync(async () => {
    const [original, tuned] = noGrad(() => [
      keep(encodePrompts(sd, frozenTextEncoder, prompts)),
      keep(encodePrompts(sd, sd.textEncoder, prompts)),
    ]);
    const lastSteps = Math.round(0.6 * c.inferenceSteps);
    const out = textToImage(sd, {
      prompts,
      seed: c.seed + 1,
      steps: c.inferenceSteps,
      guidanceScale: c.guidanceScale,
      height: c.resolution,
      width: c.resolution,
      spacing: c.spacing,
      embeddingsAt: hybridSchedule(original!, tuned!, lastSteps),
    });
    original!.dispose();
    tuned!.dispose();
    const scores: Record<string, number> = {};
    for (const { name, reward } of rewards) {
      const values = await noGrad(() => reward.score(out, prompts)).toArray();
      scores[name] = values.reduce((a, b) => a + b, 0) / values.length;
    }
    return { data: await out.toArray(), shape: out.shape, scores };
  });
  const grid = splitBatch(data, shape);
  const path = join(o.runDir, "samples", `step-${String(step).padStart(6, "0")}.png`);
  await writeFileAtomic(path, gridPng(grid, Math.min(prompts.length, 4)));
  await appendFile(join(o.runDir, "samples.jsonl"), JSON.stringify({ step, rewards: scores }) + "\n");
  o.onSample?.(step, path);
  return grid;
}
