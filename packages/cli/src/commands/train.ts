import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import {
  LR_SCHEDULERS,
  TRAIN_DEFAULTS,
  cloneTextEncoder,
  exportTextEncoder,
  formatMemoryPlan,
  initRuntime,
  loadStableDiffusion,
  mergeLoRA,
  planTrainingMemory,
  readPrompts,
  saveComponent,
  train,
  writeFileAtomic,
  type Module,
  mpiEnvironment,
  openMpi,
  type StepMetrics,
  type TrainConfig,
} from "@textcraftor/core";
import { acquireRunLock } from "@textcraftor/core/internal";
import { createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "@textcraftor/rewards";
import {
  TINY_GRID_PROMPTS,
  TINY_HELDOUT_PROMPTS,
  TINY_MODEL,
  TINY_REWARDS,
  TINY_TRAIN_PROMPTS,
  TINY_TRAIN_SETTINGS,
} from "@textcraftor/tiny-model";
import { writeCurves } from "../curves.ts";
import { readRunConfig, type RunConfigFile } from "../config-file.ts";
import { UserFacingError, attempt } from "../errors.ts";
import { deviceFlag, deviceOptions } from "../device-flag.ts";
import { exportFullModel, exportLoRA, exportSingleFile } from "../export-model.ts";
import { trapInterrupt } from "../interrupt.ts";
import { memoryBudget } from "../memory-budget.ts";
import { progressBar } from "../progress.ts";
import { evaluateBaseVsTuned } from "../base-vs-tuned.ts";
import { spreadByGain, writeBeforeAfter } from "../before-after.ts";
import { pairedLines } from "../paired.ts";
import { heldOutSummary, writeReport } from "../report.ts";
import { prepareRunDir } from "../run-dir.ts";
import { absolute, resumeInputs } from "../run-inputs.ts";

// Enough pairs (× 2 seeds) for a paired standard error that separates a real change from noise, in about a minute on a CPU.
const BUNDLED_EVAL_PROMPTS = 32;

// Numeric settings default per model: the paper's for a user's SD checkpoint, TINY_TRAIN_SETTINGS for the bundled one.
type Setting =
  | "steps"
  | "batchSize"
  | "gradAccum"
  | "inferenceSteps"
  | "gradSteps"
  | "guidanceScale"
  | "lr"
  | "lrWarmupSteps"
  | "weightDecay"
  | "beta1"
  | "beta2"
  | "eps"
  | "resolution"
  | "seed"
  | "checkpointEvery"
  | "sampleEvery"
  | "maxBadSteps";
// Settings that are off (null) unless given.
type Optional = "maxGradNorm" | "emaDecay" | "checkpointsTotalLimit";
const defaults = (key: Setting) => {
  const tiny = TINY_TRAIN_SETTINGS[key];
  return `default ${TRAIN_DEFAULTS[key]}${tiny !== undefined && tiny !== TRAIN_DEFAULTS[key] ? ` (bundled model: ${tiny})` : ""}`;
};
const int = (name: string, key: Setting, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(`${description}; ${defaults(key)}`), Flag.optional);
const num = (name: string, key: Setting, description: string) =>
  Flag.Finite(name).pipe(Flag.withDescription(`${description}; ${defaults(key)}`), Flag.optional);
const orNull = <T>(flag: Option.Option<T>, base: TrainConfig, key: Optional) =>
  Option.getOrElse(flag, () => base[key]) as number | null;

export const trainCommand = Command.make(
  "train",
  {
    model: Flag.String("model").pipe(
      Flag.withDescription(
        "A diffusers folder or single-file SD 1.x checkpoint; default: the bundled tiny model, with its reward mix and prompts",
      ),
      Flag.optional,
    ),
    reward: Flag.String("reward").pipe(
      Flag.withDescription(
        "name[=weight][:weights=PATH][:key=value]... (repeatable; see `cli rewards`); default: the bundled model's mix, required with --model",
      ),
      Flag.atLeast(0),
    ),
    rewardPlugin: Flag.String("reward-plugin").pipe(
      Flag.withDescription("A .ts/.js file exporting a RewardPlugin (repeatable); default none"),
      Flag.atLeast(0),
    ),
    prompts: Flag.String("prompts").pipe(
      Flag.withDescription(
        "Training prompts: .txt (one per line), .tsv/.csv with a Prompt column, or .json list; default: the bundled model's held-in prompts, required with --model",
      ),
      Flag.optional,
    ),
    evalPrompts: Flag.String("eval-prompts").pipe(
      Flag.withDescription(
        "Held-out prompts: the sample grids show the first 8, and the evaluation at the end scores them; default: the first 4 training prompts (bundled model: its held-out prompts)",
      ),
      Flag.optional,
    ),
    evalLimit: Flag.Int("eval-limit").pipe(
      Flag.withDescription(
        `How many held-out prompts the end-of-run evaluation scores, base vs tuned at --eval-seeds (0: none); default: all of --eval-prompts (bundled model: ${BUNDLED_EVAL_PROMPTS})`,
      ),
      Flag.optional,
    ),
    evalSeeds: Flag.String("eval-seeds").pipe(
      Flag.withDescription("Seeds of the end-of-run evaluation, comma-separated; default 0,1"),
      Flag.optional,
    ),
    config: Flag.String("config").pipe(
      Flag.withDescription(
        "A run config: .toml with train's flags as keys (batch-size or batch_size), or a run's config.json; flags given here win; default none",
      ),
      Flag.optional,
    ),
    runDir: Flag.String("run-dir").pipe(
      Flag.withDescription(
        "Run folder (config, metrics.jsonl, samples, checkpoints, exported encoder); default runs/textcraftor",
      ),
      Flag.optional,
    ),
    resume: Flag.Boolean("resume").pipe(
      Flag.withDescription(
        "Continue the run in --run-dir from its latest checkpoint, with its settings (give --steps to extend it); default off",
      ),
      Flag.withDefault(false),
    ),
    resumeFrom: Flag.String("resume-from").pipe(
      Flag.withDescription(
        "Like --resume, from this checkpoint folder (RUN/checkpoints/step-N) instead of the latest; default none",
      ),
      Flag.optional,
    ),
    steps: int("steps", "steps", "Optimizer steps"),
    batchSize: int("batch-size", "batchSize", "Prompts per step"),
    gradAccum: int(
      "grad-accum",
      "gradAccum",
      "Micro-batches of --batch-size per optimizer step, their gradients summed as one batch (diffusers' --gradient_accumulation_steps)",
    ),
    inferenceSteps: int("inference-steps", "inferenceSteps", "DDIM steps per sample (N)"),
    gradSteps: int("grad-steps", "gradSteps", "Last steps that carry gradient (K)"),
    guidance: num("guidance", "guidanceScale", "Classifier-free guidance scale"),
    lr: num("lr", "lr", "AdamW learning rate (the peak, under --lr-scheduler)"),
    lrScheduler: Flag.Literals("lr-scheduler", LR_SCHEDULERS).pipe(
      Flag.withDescription("How the learning rate changes over the run, as diffusers' schedulers; default constant"),
      Flag.optional,
    ),
    lrWarmupSteps: int(
      "lr-warmup-steps",
      "lrWarmupSteps",
      "Steps of linear warmup from 0 (not with the constant schedule)",
    ),
    maxGradNorm: Flag.Finite("max-grad-norm").pipe(
      Flag.withDescription(
        "Clip the gradients' global norm to this (the norm before clipping goes to metrics.jsonl); default off",
      ),
      Flag.optional,
    ),
    emaDecay: Flag.Finite("ema-decay").pipe(
      Flag.withDescription(
        "Keep an EMA of the trained weights with this decay (e.g. 0.999); samples and the export use it; default off",
      ),
      Flag.optional,
    ),
    weightDecay: num("weight-decay", "weightDecay", "AdamW weight decay").pipe(Flag.withAlias("adam-weight-decay")),
    adamBeta1: num("adam-beta1", "beta1", "AdamW β1"),
    adamBeta2: num("adam-beta2", "beta2", "AdamW β2"),
    adamEpsilon: num("adam-epsilon", "eps", "AdamW ε"),
    resolution: int("resolution", "resolution", "Image size in pixels"),
    seed: int("seed", "seed", "Seed for noise and prompt order"),
    checkpointEvery: int("checkpoint-every", "checkpointEvery", "Save a checkpoint every M steps"),
    checkpointsTotalLimit: Flag.Int("checkpoints-total-limit").pipe(
      Flag.withDescription(
        `Keep only the newest N checkpoints (0: keep all); default ${TRAIN_DEFAULTS.checkpointsTotalLimit}`,
      ),
      Flag.optional,
    ),
    sampleEvery: int("sample-every", "sampleEvery", "Write a sample grid every E steps"),
    maxBadSteps: int("max-bad-steps", "maxBadSteps", "Stop after this many non-finite steps"),
    gradientCheckpointing: Flag.Boolean("gradient-checkpointing").pipe(
      Flag.withDescription(
        "Recompute activations in backward to save memory (--no-gradient-checkpointing: keep them, faster); default on (bundled model: off)",
      ),
      Flag.optional,
    ),
    truncation: Flag.Literals("truncation", ["last-k", "draft-k", "alignprop", "refl"]).pipe(
      Flag.withDescription("Where gradients flow; default last-k (TextCraftor's)"),
      Flag.optional,
    ),
    trainable: Flag.Literals("train", ["text-encoder", "unet"]).pipe(
      Flag.withDescription(
        "text-encoder (TextCraftor, the default) or unet (the +UNet stage; give the tuned encoder with --text-encoder)",
      ),
      Flag.optional,
    ),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription(
        "Print the run's memory plan (weights per model and dtype, gradients, optimizer state, activations, peak; measured on a meta device without loading weights) and stop; default off",
      ),
      Flag.withDefault(false),
    ),
    memoryBudget: Flag.Finite("memory-budget").pipe(
      Flag.withDescription(
        "GiB of GPU memory to check the plan against; default: this machine's memory on a CPU adapter, none on a GPU (WebGPU does not report it)",
      ),
      Flag.optional,
    ),
    mixedPrecision: Flag.Literals("mixed-precision", ["no", "fp16"]).pipe(
      Flag.withDescription(
        "fp16: keep the frozen models' weights (UNet and VAE when the text encoder trains, the original encoder, the reward towers) as f16, about half the memory; math and the trained weights stay f32 (diffusers' --mixed_precision); default no",
      ),
      Flag.optional,
    ),
    spacing: Flag.Literals("spacing", ["textcraftor", "leading"]).pipe(
      Flag.withDescription("DDIM timesteps: textcraftor (999…39, the authors', the default) or diffusers' leading"),
      Flag.optional,
    ),
    textEncoder: Flag.String("text-encoder").pipe(
      Flag.withDescription(
        "Start from this text encoder (text_encoder/ folder or weights file); default: the model's own",
      ),
      Flag.optional,
    ),
    loraRank: Flag.Int("lora-rank").pipe(
      Flag.withDescription(
        "Train LoRA adapters of this rank on the attention projections instead of all weights; default off (every weight trains)",
      ),
      Flag.optional,
    ),
    loraAlpha: Flag.Finite("lora-alpha").pipe(
      Flag.withDescription("LoRA scale numerator (update = alpha/rank · B·A); default: the rank"),
      Flag.optional,
    ),
    exportFull: Flag.Boolean("export-full").pipe(
      Flag.withDescription(
        "Also write the whole model with the tuned part in, in the input's format: RUN/model/ (diffusers) or RUN/model.safetensors (single file); default off",
      ),
      Flag.optional,
    ),
    exportSingleFile: Flag.Boolean("export-single-file").pipe(
      Flag.withDescription(
        "Also write the whole model as one SD 1.x checkpoint with the original LDM names (A1111, ComfyUI): RUN/model.safetensors; default off",
      ),
      Flag.optional,
    ),
    exportDtype: Flag.Literals("export-dtype", ["f32", "f16"]).pipe(
      Flag.withDescription(
        "Weights of the exported text_encoder/ (or unet/): f32, or f16 at half the size; default f32",
      ),
      Flag.optional,
    ),
    device: deviceFlag,
  },
  Effect.fn(function* (flags) {
    const configPath = Option.getOrUndefined(flags.config);
    const file: RunConfigFile = configPath
      ? yield* attempt(async () => readRunConfig(configPath))
      : { train: {}, inputs: {} };
    const f = withConfigFile(flags, file);
    // What the run is made from; a resumed run's own (run.json) unless given again.
    const given = absolute({
      model: Option.getOrNull(f.model),
      textEncoder: Option.getOrNull(f.textEncoder),
      rewards: [...f.reward],
      rewardPlugins: [...f.rewardPlugin],
      prompts: Option.getOrNull(f.prompts),
      evalPrompts: Option.getOrNull(f.evalPrompts),
    });
    const resume = f.resume || Option.isSome(f.resumeFrom);
    // Under an MPI launcher (mpirun, srun, MPIJob) every rank trains its share of each global batch; rank 0 alone
    // writes the run folder, the others a private scratch folder they delete at the end.
    const comm = yield* attempt(async () => {
      const world = mpiEnvironment();
      return world && world.size > 1 ? openMpi() : undefined;
    });
    const rank0 = !comm || comm.rank === 0;
    const rankDir = rank0 ? f.runDir : mkdtempSync(join(tmpdir(), `textcraftor-rank${comm!.rank}-`));
    yield* attempt(async () => prepareRunDir(f.runDir));
    // Held until the exports and the report are written, not only while train() runs (a dead holder's lock is taken over).
    const runLock = yield* attempt(() => acquireRunLock(rankDir));
    const inputs = resume ? yield* attempt(async () => resumeInputs(f.runDir, given)) : given;
    // Without --model: the bundled tiny model, its default rewards, held-in prompts and held-out grid prompts.
    const bundled = inputs.model === null;
    const model = inputs.model ?? TINY_MODEL;
    const rt = yield* attempt(() => initRuntime(deviceOptions(f.device)));
    // Every rank names its adapter, so a job's log shows the rank → GPU map.
    if (comm) {
      const { adapterIndex, adapter, chosenBy } = rt.gpu.info;
      console.error(
        `rank ${comm.rank}/${comm.size}: adapter ${adapterIndex ?? "?"} "${adapter.name}" (from ${chosenBy})`,
      );
    }
    const registry = createRegistry();
    for (const path of inputs.rewardPlugins) registry.register(yield* attempt(() => loadRewardPlugin(path)));
    const specs = yield* attempt(async () =>
      (inputs.rewards.length || !bundled ? inputs.rewards : TINY_REWARDS).map(parseRewardSpec),
    );
    if (!specs.length)
      return yield* new UserFacingError({
        message: `give at least one --reward (known: ${registry
          .list()
          .map((p) => p.name)
          .join(", ")})`,
      });
    if (inputs.prompts === null && !bundled)
      return yield* new UserFacingError({
        message: "give --prompts FILE (.txt, .tsv/.csv with a Prompt column, or .json)",
      });
    const promptFile = inputs.prompts ?? TINY_TRAIN_PROMPTS,
      evalFile = inputs.evalPrompts;
    const prompts = yield* attempt(() => readPrompts(promptFile));
    const heldOut = evalFile
      ? yield* attempt(() => readPrompts(evalFile))
      : bundled
        ? yield* attempt(() => readPrompts(TINY_HELDOUT_PROMPTS))
        : prompts.slice(0, 4);
    const evalPrompts = heldOut.slice(0, bundled && !evalFile ? TINY_GRID_PROMPTS : 8);
    const scoredPrompts = heldOut.slice(
      0,
      Option.getOrElse(f.evalLimit, () => (bundled && !evalFile ? BUNDLED_EVAL_PROMPTS : heldOut.length)),
    );
    const evalSeeds = f.evalSeeds.split(",").map((s) => (s.trim() === "" ? Number.NaN : Number(s)));
    if (evalSeeds.some((s) => !Number.isInteger(s) || s < 0) || Option.getOrElse(f.evalLimit, () => 0) < 0) {
      return yield* new UserFacingError({
        message: `--eval-seeds "${f.evalSeeds}" / --eval-limit: expected comma-separated non-negative integers (e.g. 0,1) and a count >= 0`,
      });
    }
    // A resumed run's settings are its own (config.json); flags given now still win, and the trainer refuses
    // the ones that would not continue the same run.
    const savedFile = join(f.runDir, "config.json");
    const saved: Partial<TrainConfig> =
      resume && existsSync(savedFile) ? yield* attempt(async () => JSON.parse(readFileSync(savedFile, "utf8"))) : {};
    const base: TrainConfig = {
      ...(bundled ? { ...TRAIN_DEFAULTS, ...TINY_TRAIN_SETTINGS } : TRAIN_DEFAULTS),
      ...saved,
      ...file.train,
    };
    const pick = <T>(flag: Option.Option<T>, key: Setting) => Option.getOrElse(flag, () => base[key]) as number;
    if (bundled)
      yield* Console.log(
        `bundled tiny model (${model}); rewards ${specs.map((s) => s.name).join(" + ")}; ${prompts.length} held-in prompts`,
      );
    const textEncoderPath = inputs.textEncoder ?? undefined;
    // Mixed precision stores what stays frozen as f16: the UNet unless it is the part being trained.
    const mixedPrecision = Option.getOrElse(f.mixedPrecision, () => base.mixedPrecision);
    const frozenDtype = mixedPrecision === "fp16" ? "f16" : "f32";
    const trainsUnet = Option.getOrElse(f.trainable, () => base.trainable) === "unet";
    const config: TrainConfig = {
      ...base,
      steps: pick(f.steps, "steps"),
      batchSize: pick(f.batchSize, "batchSize"),
      gradAccum: pick(f.gradAccum, "gradAccum"),
      inferenceSteps: pick(f.inferenceSteps, "inferenceSteps"),
      gradSteps: pick(f.gradSteps, "gradSteps"),
      guidanceScale: pick(f.guidance, "guidanceScale"),
      lr: pick(f.lr, "lr"),
      lrScheduler: Option.getOrElse(f.lrScheduler, () => base.lrScheduler),
      lrWarmupSteps: pick(f.lrWarmupSteps, "lrWarmupSteps"),
      maxGradNorm: orNull(f.maxGradNorm, base, "maxGradNorm"),
      emaDecay: orNull(f.emaDecay, base, "emaDecay"),
      checkpointsTotalLimit: Option.getOrElse(
        Option.map(f.checkpointsTotalLimit, (n) => (n === 0 ? null : n)),
        () => base.checkpointsTotalLimit,
      ),
      weightDecay: pick(f.weightDecay, "weightDecay"),
      beta1: pick(f.adamBeta1, "beta1"),
      beta2: pick(f.adamBeta2, "beta2"),
      eps: pick(f.adamEpsilon, "eps"),
      resolution: pick(f.resolution, "resolution"),
      seed: pick(f.seed, "seed"),
      checkpointEvery: pick(f.checkpointEvery, "checkpointEvery"),
      sampleEvery: pick(f.sampleEvery, "sampleEvery"),
      maxBadSteps: pick(f.maxBadSteps, "maxBadSteps"),
      gradientCheckpointing: Option.getOrElse(f.gradientCheckpointing, () => base.gradientCheckpointing),
      truncation: Option.getOrElse(f.truncation, () => base.truncation),
      trainable: Option.getOrElse(f.trainable, () => base.trainable),
      spacing: Option.getOrElse(f.spacing, () => base.spacing),
      mixedPrecision,
      lora: Option.isSome(f.loraRank)
        ? { rank: f.loraRank.value, alpha: Option.getOrUndefined(f.loraAlpha) }
        : base.lora,
    };
    // The run's memory, measured on a meta device before any weight is loaded: printed for every run; --dry-run stops here.
    const plan = yield* attempt(() =>
      planTrainingMemory(rt.gpu, {
        config,
        prompts,
        evalPrompts,
        build: async () => {
          const sd = await loadStableDiffusion(model, {
            textEncoderPath,
            weightDtype: trainsUnet ? "f32" : frozenDtype,
            withoutWeights: true,
          });
          const frozenTextEncoder = await cloneTextEncoder(sd.textEncoder, frozenDtype);
          const rewards = await loadRewards(specs, registry, rt.gpu, { weightDtype: frozenDtype });
          const parts: [string, Module][] = [
            ["text encoder", sd.textEncoder],
            ["UNet", sd.unet],
            ["VAE", sd.vae],
            ["original text encoder", frozenTextEncoder],
          ];
          return { models: { sd, frozenTextEncoder, rewards }, parts };
        },
      }),
    );
    yield* Console.log(formatMemoryPlan(plan, memoryBudget(rt.gpu, Option.getOrUndefined(f.memoryBudget))));
    if (plan.problem)
      return yield* new UserFacingError({ message: `these settings cannot run on this adapter: ${plan.problem}` });
    if (f.dryRun) return;
    // The plan ran every kernel the run needs: drivers that compile at the first dispatch (lavapipe) now do so on
    // their own thread while the weights load, instead of inside the first steps.
    rt.runner.warmUp(plan.pipelines);
    const sd = yield* attempt(() =>
      loadStableDiffusion(model, { textEncoderPath, weightDtype: trainsUnet ? "f32" : frozenDtype }),
    );
    // The run's starting encoder, frozen: the prefix steps and the "before" samples use it.
    const frozenTextEncoder = yield* attempt(() => cloneTextEncoder(sd.textEncoder, frozenDtype));
    const rewards = yield* attempt(() => loadRewards(specs, registry, rt.gpu, { weightDtype: frozenDtype }));
    for (const { name, reward } of rewards) if (reward.info) yield* Console.log(`reward ${name}: ${reward.info}`);
    const bar = progressBar("training", config.steps);
    const show = (m: StepMetrics) =>
      bar.update(
        m.step,
        `loss ${m.loss.toFixed(4)} ${Object.entries(m.rewards)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(" ")}${m.skipped ? " (skipped)" : ""}`,
      );
    const resumeHint = `bun run cli train --run-dir ${f.runDir} --resume`;
    const interrupt = trapInterrupt({
      restoreTerminal: () => bar.stop(),
      onFirst: () => {
        bar.stop();
        console.error("Ctrl-C: finishing this step to save a checkpoint (Ctrl-C again stops now, losing the step)");
      },
      onSecond: () => console.error(`stopped; resume from the last checkpoint with: ${resumeHint}`),
    });
    // Uninterruptible so that Ctrl-C reaches the trainer, which stops at a checkpoint, rather than killing it mid-write.
    const result = yield* Effect.uninterruptible(
      attempt(async () => {
        try {
          const r = await train({
            models: { sd, frozenTextEncoder, rewards },
            config,
            prompts,
            evalPrompts,
            runDir: rankDir,
            resume,
            resumeFrom: rank0
              ? Option.getOrUndefined(f.resumeFrom)
              : resumeFolder(f.runDir, resume, Option.getOrUndefined(f.resumeFrom)),
            inputs,
            signal: interrupt.signal,
            onStep: rank0 ? show : undefined,
            distributed: comm,
          });
          if (r.interrupted)
            console.error(
              `interrupted at step ${r.steps}/${config.steps}, saved in ${r.lastCheckpoint}; resume with: ${resumeHint}`,
            );
          return r;
        } finally {
          interrupt.release();
          bar.stop();
        }
      }),
    );
    // Exit 130, as a shell expects after Ctrl-C.
    if (result.interrupted) return yield* Effect.interrupt;
    if (comm) comm.barrier();
    if (!rank0) {
      yield* attempt(() => runLock.release());
      rmSync(rankDir, { recursive: true, force: true });
      comm!.finalize();
      return;
    }
    yield* attempt(() => writeCurves(join(f.runDir, "metrics.jsonl"), join(f.runDir, "curves.svg")));
    // Base vs tuned on the same prompts and seeds, before LoRA merges (the adapters sample as they are).
    const evaluation =
      config.trainable === "text-encoder" && scoredPrompts.length
        ? yield* attempt(async () => {
            let evalBar = null as ReturnType<typeof progressBar> | null;
            const e = await evaluateBaseVsTuned(sd, frozenTextEncoder, sd.textEncoder, rewards, scoredPrompts, {
              // The bundled model's images are tiny, so large batches; a real model's memory is sized by the training batch.
              seeds: evalSeeds,
              batchSize: bundled ? 16 : config.batchSize,
              steps: config.inferenceSteps,
              guidanceScale: config.guidanceScale,
              height: config.resolution,
              width: config.resolution,
              spacing: config.spacing,
              lastSteps: Math.round(0.6 * config.inferenceSteps),
              onBatch: (done, total) => (evalBar ??= progressBar("base vs tuned", total)).update(done),
            });
            evalBar?.stop();
            const summary = {
              prompts: scoredPrompts,
              seeds: evalSeeds,
              rows: e.rows,
              base: Object.fromEntries(e.base),
              tuned: Object.fromEntries(e.tuned),
            };
            await writeFileAtomic(
              join(f.runDir, "eval.json"),
              new TextEncoder().encode(JSON.stringify(summary, null, 2)),
            );
            return {
              prompts: scoredPrompts.length,
              seeds: evalSeeds.length,
              rows: e.rows,
              base: e.base,
              tuned: e.tuned,
            };
          })
        : null;
    const summaryLines = evaluation
      ? pairedLines(evaluation.rows, evaluation.prompts, evaluation.seeds)
      : heldOutSummary(f.runDir, evalPrompts.length);
    for (const line of summaryLines) yield* Console.log(line);
    // The before/after picture from the evaluation: prompts spread over the ranking of their gain, best first.
    let pictured = evalPrompts;
    if (evaluation) {
      const weights = Object.fromEntries(rewards.map((r) => [r.name, r.weight]));
      pictured = spreadByGain(
        scoredPrompts.length,
        evaluation.base,
        evaluation.tuned,
        weights,
        Math.min(8, scoredPrompts.length),
      ).map((i) => scoredPrompts[i]!);
      yield* attempt(() =>
        writeBeforeAfter(join(f.runDir, "before-after.png"), sd, frozenTextEncoder, sd.textEncoder, pictured, {
          seed: evalSeeds[0]!,
          steps: config.inferenceSteps,
          guidanceScale: config.guidanceScale,
          height: config.resolution,
          width: config.resolution,
          spacing: config.spacing,
          lastSteps: Math.round(0.6 * config.inferenceSteps),
        }),
      );
    }
    const dtype = f.exportDtype === "f16" ? "F16" : "F32";
    const lora = config.lora;
    if (lora) {
      const tuned = config.trainable === "text-encoder" ? sd.textEncoder : sd.unet;
      const file = yield* attempt(() =>
        exportLoRA(
          tuned,
          config.trainable === "text-encoder" ? "lora_te" : "lora_unet",
          join(f.runDir, "lora.safetensors"),
          lora,
        ),
      );
      yield* Console.log(`LoRA (kohya names, loads in A1111/ComfyUI): ${file}`);
      // Adapters fold into the weights, so the other exports are plain models.
      mergeLoRA(tuned);
    }
    if (config.trainable === "text-encoder") {
      const folder = yield* attempt(() =>
        exportTextEncoder(sd.textEncoder, sd.source.configs.textEncoder, join(f.runDir, "text_encoder"), { dtype }),
      );
      yield* Console.log(
        `tuned text encoder: ${folder}${bundled ? ` (score it on every held-out prompt: bun run cli eval --text-encoder ${folder})` : ""}`,
      );
    } else {
      const folder = join(f.runDir, "unet");
      yield* attempt(() =>
        saveComponent(
          folder,
          { _class_name: "UNet2DConditionModel", ...sd.source.configs.unet },
          sd.unet,
          "diffusion_pytorch_model.safetensors",
          dtype,
        ),
      );
      yield* Console.log(`tuned UNet: ${folder}`);
    }
    if (f.exportFull)
      yield* Console.log(
        `whole model: ${yield* attempt(() => exportFullModel(sd, model, f.runDir, config.trainable, dtype))}`,
      );
    if (f.exportSingleFile && !(f.exportFull && sd.source.layout === "single-file")) {
      yield* Console.log(
        `single-file checkpoint (A1111, ComfyUI): ${yield* attempt(() => exportSingleFile(sd, join(f.runDir, "model.safetensors"), dtype))}`,
      );
    }
    yield* attempt(() =>
      writeReport(f.runDir, pictured, config.trainable === "text-encoder" ? "text_encoder" : "unet", {
        evaluation,
        rewards: specs.map((s) => `${s.name} × ${s.weight}`),
        rankedBeforeAfter: evaluation !== null,
      }),
    );
    yield* attempt(() => runLock.release());
    comm?.finalize();
    yield* Console.log(
      `${result.steps} steps (${result.badSteps} skipped) in ${f.runDir}: report.html (open it in a browser), before-after.png (held-out prompts, top row before), curves.svg, metrics.jsonl, samples/`,
    );
  }),
).pipe(Command.withDescription("Fine-tune the text encoder (or the UNet) with reward models: TextCraftor"));

/** The checkpoint folder a rank other than 0 resumes from: the one given, or the run's latest (rank 0's folder). */
function resumeFolder(runDir: string, resume: boolean, from: string | undefined): string | undefined {
  if (from || !resume) return from;
  const latest = join(runDir, "checkpoints", "latest.json");
  if (!existsSync(latest)) return undefined;
  return join(runDir, "checkpoints", (JSON.parse(readFileSync(latest, "utf8")) as { folder: string }).folder);
}

/** The config file's inputs where no flag gave them (its settings reach the config through `base`). */
function withConfigFile<
  F extends {
    model: Option.Option<string>;
    textEncoder: Option.Option<string>;
    prompts: Option.Option<string>;
    evalPrompts: Option.Option<string>;
    evalLimit: Option.Option<number>;
    evalSeeds: Option.Option<string>;
    reward: readonly string[];
    rewardPlugin: readonly string[];
    runDir: Option.Option<string>;
    exportFull: Option.Option<boolean>;
    exportSingleFile: Option.Option<boolean>;
    exportDtype: Option.Option<"f32" | "f16">;
  },
>(f: F, { inputs }: RunConfigFile) {
  const or = <T>(flag: Option.Option<T>, value: T | undefined) =>
    Option.isSome(flag) || value === undefined ? flag : Option.some(value);
  return {
    ...f,
    model: or(f.model, inputs.model),
    textEncoder: or(f.textEncoder, inputs.textEncoder),
    prompts: or(f.prompts, inputs.prompts),
    evalPrompts: or(f.evalPrompts, inputs.evalPrompts),
    evalLimit: or(f.evalLimit, inputs.evalLimit),
    evalSeeds: Option.getOrElse(or(f.evalSeeds, inputs.evalSeeds), () => "0,1"),
    reward: f.reward.length ? f.reward : (inputs.reward ?? []),
    rewardPlugin: f.rewardPlugin.length ? f.rewardPlugin : (inputs.rewardPlugin ?? []),
    runDir: Option.getOrElse(or(f.runDir, inputs.runDir), () => "runs/textcraftor"),
    exportFull: Option.getOrElse(or(f.exportFull, inputs.exportFull), () => false),
    exportSingleFile: Option.getOrElse(or(f.exportSingleFile, inputs.exportSingleFile), () => false),
    exportDtype: Option.getOrElse(or(f.exportDtype, inputs.exportDtype), () => "f32" as const),
  };
}
