import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import {
  TRAIN_DEFAULTS, cloneTextEncoder, exportTextEncoder, initRuntime, loadStableDiffusion, mergeLoRA, readPrompts, saveComponent, train,
  type StepMetrics, type TrainConfig,
} from "@textcraftor/core";
import { createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "@textcraftor/rewards";
import { UserFacingError, attempt } from "../errors.ts";
import { progressBar } from "../progress.ts";

const int = (name: string, fallback: number, description: string) => Flag.Int(name).pipe(Flag.withDescription(description), Flag.withDefault(fallback));
const num = (name: string, fallback: number, description: string) => Flag.Finite(name).pipe(Flag.withDescription(description), Flag.withDefault(fallback));

export const trainCommand = Command.make(
  "train",
  {
    model: Flag.String("model").pipe(Flag.withDescription("A diffusers folder or single-file SD 1.x checkpoint"), Flag.optional),
    reward: Flag.String("reward").pipe(Flag.withDescription("name[=weight][:weights=PATH][:key=value]... (repeatable; see `cli rewards`)"), Flag.atLeast(0)),
    rewardPlugin: Flag.String("reward-plugin").pipe(Flag.withDescription("A .ts/.js file exporting a RewardPlugin (repeatable)"), Flag.atLeast(0)),
    prompts: Flag.String("prompts").pipe(Flag.withDescription("Training prompts: .txt (one per line), .tsv/.csv with a Prompt column, or .json list"), Flag.optional),
    evalPrompts: Flag.String("eval-prompts").pipe(Flag.withDescription("Held-out prompts for the sample grids"), Flag.optional),
    runDir: Flag.String("run-dir").pipe(Flag.withDescription("Run folder (config, metrics.jsonl, samples, checkpoints, exported encoder)"), Flag.withDefault("runs/textcraftor")),
    resume: Flag.Boolean("resume").pipe(Flag.withDescription("Continue the run in --run-dir from its latest checkpoint"), Flag.withDefault(false)),
    steps: int("steps", TRAIN_DEFAULTS.steps, "Optimizer steps"),
    batchSize: int("batch-size", TRAIN_DEFAULTS.batchSize, "Prompts per step"),
    inferenceSteps: int("inference-steps", TRAIN_DEFAULTS.inferenceSteps, "DDIM steps per sample (N)"),
    gradSteps: int("grad-steps", TRAIN_DEFAULTS.gradSteps, "Last steps that carry gradient (K)"),
    guidance: num("guidance", TRAIN_DEFAULTS.guidanceScale, "Classifier-free guidance scale"),
    lr: num("lr", TRAIN_DEFAULTS.lr, "AdamW learning rate (constant)"),
    weightDecay: num("weight-decay", TRAIN_DEFAULTS.weightDecay, "AdamW weight decay"),
    resolution: int("resolution", TRAIN_DEFAULTS.resolution, "Image size in pixels"),
    seed: int("seed", TRAIN_DEFAULTS.seed, "Seed for noise and prompt order"),
    checkpointEvery: int("checkpoint-every", TRAIN_DEFAULTS.checkpointEvery, "Save a checkpoint every M steps"),
    sampleEvery: int("sample-every", TRAIN_DEFAULTS.sampleEvery, "Write a sample grid every E steps"),
    maxBadSteps: int("max-bad-steps", TRAIN_DEFAULTS.maxBadSteps, "Stop after this many non-finite steps"),
    truncation: Flag.Literals("truncation", ["last-k", "draft-k", "alignprop", "refl"]).pipe(Flag.withDescription("Where gradients flow (last-k is TextCraftor's)"), Flag.withDefault("last-k")),
    trainable: Flag.Literals("train", ["text-encoder", "unet"]).pipe(Flag.withDescription("text-encoder (TextCraftor) or unet (the +UNet stage; give the tuned encoder with --text-encoder)"), Flag.withDefault("text-encoder")),
    spacing: Flag.Literals("spacing", ["textcraftor", "leading"]).pipe(Flag.withDescription("DDIM timesteps: 999…39 (authors') or diffusers' leading"), Flag.withDefault("textcraftor")),
    textEncoder: Flag.String("text-encoder").pipe(Flag.withDescription("Start from this text encoder (text_encoder/ folder or weights file)"), Flag.optional),
    loraRank: Flag.Int("lora-rank").pipe(Flag.withDescription("Train LoRA adapters of this rank on the attention projections instead of all weights"), Flag.optional),
    loraAlpha: Flag.Finite("lora-alpha").pipe(Flag.withDescription("LoRA scale numerator (update = alpha/rank · B·A); default: the rank"), Flag.optional),
    exportFull: Flag.Boolean("export-full").pipe(Flag.withDescription("Also write a full diffusers folder with the tuned encoder swapped in"), Flag.withDefault(false)),
  },
  Effect.fn(function* (f) {
    if (Option.isNone(f.model)) return yield* new UserFacingError({ message: "train needs --model (a diffusers folder or a single-file checkpoint); the bundled tiny model is not in this build yet" });
    const rt = yield* attempt(() => initRuntime());
    const registry = createRegistry();
    for (const path of f.rewardPlugin) registry.register(yield* attempt(() => loadRewardPlugin(path)));
    const specs = yield* attempt(async () => f.reward.map(parseRewardSpec));
    if (!specs.length) return yield* new UserFacingError({ message: `give at least one --reward (known: ${registry.list().map((p) => p.name).join(", ")})` });
    if (Option.isNone(f.prompts)) return yield* new UserFacingError({ message: "give --prompts FILE (.txt, .tsv/.csv with a Prompt column, or .json)" });
    const promptFile = f.prompts.value, evalFile = Option.getOrUndefined(f.evalPrompts);
    const prompts = yield* attempt(() => readPrompts(promptFile));
    const evalPrompts = evalFile ? yield* attempt(() => readPrompts(evalFile)) : prompts.slice(0, 4);
    const model = f.model.value;
    const textEncoderPath = Option.getOrUndefined(f.textEncoder);
    const sd = yield* attempt(() => loadStableDiffusion(model, { gradientCheckpointing: true, textEncoderPath }));
    // The run's starting encoder, frozen: the prefix steps and the "before" samples use it.
    const frozenTextEncoder = yield* attempt(() => cloneTextEncoder(sd.textEncoder));
    const rewards = yield* attempt(() => loadRewards(specs, registry, rt.gpu));
    const config: TrainConfig = {
      ...TRAIN_DEFAULTS, steps: f.steps, batchSize: f.batchSize, inferenceSteps: f.inferenceSteps, gradSteps: f.gradSteps,
      guidanceScale: f.guidance, lr: f.lr, weightDecay: f.weightDecay, resolution: f.resolution, seed: f.seed,
      checkpointEvery: f.checkpointEvery, sampleEvery: f.sampleEvery, maxBadSteps: f.maxBadSteps,
      truncation: f.truncation, trainable: f.trainable, spacing: f.spacing,
      lora: Option.isSome(f.loraRank) ? { rank: f.loraRank.value, alpha: Option.getOrUndefined(f.loraAlpha) } : null,
    };
    mkdirSync(f.runDir, { recursive: true });
    const bar = progressBar("training", config.steps);
    const show = (m: StepMetrics) => bar.update(m.step, `loss ${m.loss.toFixed(4)} ${Object.entries(m.rewards).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" ")}${m.skipped ? " (skipped)" : ""}`);
    const result = yield* attempt(() => train({ models: { sd, frozenTextEncoder, rewards }, config, prompts, evalPrompts, runDir: f.runDir, resume: f.resume, onStep: show }));
    bar.stop();
    // Adapters fold into the weights, so the export is a plain diffusers text encoder.
    if (config.lora) mergeLoRA(config.trainable === "text-encoder" ? sd.textEncoder : sd.unet);
    if (config.trainable === "text-encoder") {
      const folder = yield* attempt(() => exportTextEncoder(sd.textEncoder, sd.source.configs.textEncoder, join(f.runDir, "text_encoder")));
      yield* Console.log(`tuned text encoder: ${folder}`);
      if (f.exportFull && sd.source.layout === "diffusers") yield* attempt(() => exportTextEncoder(sd.textEncoder, sd.source.configs.textEncoder, join(f.runDir, "model"), { baseModel: model }));
    } else {
      const folder = join(f.runDir, "unet");
      yield* attempt(() => saveComponent(folder, { _class_name: "UNet2DConditionModel", ...sd.source.configs.unet }, sd.unet, "diffusion_pytorch_model.safetensors"));
      yield* Console.log(`tuned UNet: ${folder}`);
    }
    yield* Console.log(`${result.steps} steps (${result.badSteps} skipped); metrics in ${join(f.runDir, "metrics.jsonl")}, samples in ${join(f.runDir, "samples")}`);
  }),
).pipe(Command.withDescription("Fine-tune the text encoder (or the UNet) with reward models: TextCraftor"));
