import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import {
  controlledEmbeddings,
  evaluateRewards,
  initRuntime,
  loadStableDiffusion,
  loadTextEncoder,
  readPrompts,
  writeFileAtomic,
} from "@textcraftor/core";
import { createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "@textcraftor/rewards";
import { TINY_HELDOUT_PROMPTS, TINY_MODEL, TINY_REWARDS, TINY_TRAIN_SETTINGS } from "@textcraftor/tiny-model";
import { evaluateBaseVsTuned } from "../base-vs-tuned.ts";
import { UserFacingError, attempt } from "../errors.ts";
import { deviceFlag, deviceOptions } from "../device-flag.ts";
import { pairedLines } from "../paired.ts";
import { progressBar } from "../progress.ts";

export const evalCommand = Command.make(
  "eval",
  {
    model: Flag.String("model").pipe(
      Flag.withDescription(
        "A diffusers folder or single-file SD 1.x checkpoint; default: the bundled tiny model (with its rewards, held-out prompts, steps, guidance and size)",
      ),
      Flag.optional,
    ),
    textEncoder: Flag.String("text-encoder").pipe(
      Flag.withDescription(
        "A tuned text encoder, used for the last --tuned-steps (the paper's evaluation); default none (the base model)",
      ),
      Flag.optional,
    ),
    base: Flag.Boolean("base").pipe(
      Flag.withDescription(
        "Also score the base model on the same prompts and seeds: both side by side, with paired differences and their standard errors (needs --text-encoder); default off",
      ),
      Flag.withDefault(false),
    ),
    tunedWeight: Flag.Finite("tuned-weight").pipe(
      Flag.withDescription("Interpolation w in w·tuned + (1−w)·original; default 1"),
      Flag.withDefault(1),
    ),
    tunedSteps: Flag.Int("tuned-steps").pipe(
      Flag.withDescription("Use the tuned encoder for the last S steps; default: 60 % of the steps (15 of 25)"),
      Flag.optional,
    ),
    unet: Flag.String("unet").pipe(
      Flag.withDescription(
        "A tuned UNet (the unet/ folder that `train --train unet` exports); default: the model's own",
      ),
      Flag.optional,
    ),
    prompts: Flag.String("prompts").pipe(
      Flag.withDescription(
        ".txt, .tsv/.csv with a Prompt column, or .json; default: the bundled model's held-out prompts, required with --model",
      ),
      Flag.optional,
    ),
    limit: Flag.Int("limit").pipe(Flag.withDescription("Only the first N prompts; default: all"), Flag.optional),
    reward: Flag.String("reward").pipe(
      Flag.withDescription(
        "name[=weight][:weights=PATH][:key=value]... (repeatable); default: the bundled model's mix, required with --model",
      ),
      Flag.atLeast(0),
    ),
    rewardPlugin: Flag.String("reward-plugin").pipe(
      Flag.withDescription("A .ts/.js file exporting a RewardPlugin (repeatable); default none"),
      Flag.atLeast(0),
    ),
    seeds: Flag.String("seeds").pipe(
      Flag.withDescription("Comma-separated seeds; default 0,1"),
      Flag.withDefault("0,1"),
    ),
    steps: Flag.Int("steps").pipe(
      Flag.withDescription("Denoising steps; default 25 (bundled model: its training steps)"),
      Flag.optional,
    ),
    guidance: Flag.Finite("guidance").pipe(
      Flag.withDescription("Classifier-free guidance scale; default 7.5 (bundled model: its training guidance)"),
      Flag.optional,
    ),
    size: Flag.Int("size").pipe(
      Flag.withDescription("Image height and width in pixels; default: the model's sample size"),
      Flag.optional,
    ),
    batchSize: Flag.Int("batch-size").pipe(Flag.withDescription("Images per batch; default 4"), Flag.withDefault(4)),
    out: Flag.String("out").pipe(
      Flag.withDescription("JSON file with every score; default eval.json"),
      Flag.withDefault("eval.json"),
    ),
    device: deviceFlag,
  },
  Effect.fn(function* (f) {
    // Flags first, before minutes of model loading.
    const seeds = f.seeds.split(",").map((s) => (s.trim() === "" ? Number.NaN : Number(s)));
    if (seeds.some((s) => !Number.isInteger(s) || s < 0))
      return yield* new UserFacingError({
        message: `--seeds "${f.seeds}": expected comma-separated non-negative integers, e.g. 0,1`,
      });
    for (const [flag, value] of [
      ["--batch-size", f.batchSize],
      ["--limit", Option.getOrUndefined(f.limit)],
      ["--steps", Option.getOrUndefined(f.steps)],
    ] as const) {
      if (value !== undefined && value < 1)
        return yield* new UserFacingError({ message: `${flag} ${value}: expected a positive integer` });
    }
    const w = f.tunedWeight;
    if (!(w >= 0 && w <= 1))
      return yield* new UserFacingError({ message: `--tuned-weight ${w}: expected a number in [0, 1]` });
    if (f.base && Option.isNone(f.textEncoder))
      return yield* new UserFacingError({
        message: "--base compares the base model with a tuned one: give the tuned encoder with --text-encoder",
      });
    const bundled = Option.isNone(f.model);
    if (!bundled && (Option.isNone(f.prompts) || !f.reward.length))
      return yield* new UserFacingError({ message: "with --model, give --prompts FILE and at least one --reward" });
    const model = Option.getOrElse(f.model, () => TINY_MODEL);
    const rt = yield* attempt(() => initRuntime(deviceOptions(f.device)));
    const registry = createRegistry();
    for (const path of f.rewardPlugin) registry.register(yield* attempt(() => loadRewardPlugin(path)));
    const specs = yield* attempt(async () => (f.reward.length ? f.reward : TINY_REWARDS).map(parseRewardSpec));
    const rewards = yield* attempt(() => loadRewards(specs, registry, rt.gpu));
    for (const { name, reward } of rewards) if (reward.info) yield* Console.log(`reward ${name}: ${reward.info}`);
    const all = yield* attempt(() => readPrompts(Option.getOrElse(f.prompts, () => TINY_HELDOUT_PROMPTS)));
    const prompts = all.slice(
      0,
      Option.getOrElse(f.limit, () => all.length),
    );
    const sd = yield* attempt(() => loadStableDiffusion(model, { unetPath: Option.getOrUndefined(f.unet) }));
    const steps = Option.getOrElse(f.steps, () => (bundled ? TINY_TRAIN_SETTINGS.inferenceSteps! : 25));
    const guidance = Option.getOrElse(f.guidance, () => (bundled ? TINY_TRAIN_SETTINGS.guidanceScale! : 7.5));
    const size = Option.getOrElse(f.size, () => (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512);
    const tunedPath = Option.getOrUndefined(f.textEncoder);
    const tuned = tunedPath ? yield* attempt(() => loadTextEncoder(tunedPath, sd.source.configs.textEncoder)) : null;
    const lastSteps = Option.getOrElse(f.tunedSteps, () => Math.round(0.6 * steps));
    if (f.base && tuned) {
      let bar = null as ReturnType<typeof progressBar> | null;
      const e = yield* attempt(() =>
        evaluateBaseVsTuned(sd, sd.textEncoder, tuned, rewards, prompts, {
          seeds,
          batchSize: f.batchSize,
          steps,
          guidanceScale: guidance,
          height: size,
          width: size,
          diversity: true,
          lastSteps,
          tunedWeight: w,
          onBatch: (done, total) => (bar ??= progressBar("base vs tuned", total)).update(done),
        }),
      );
      bar?.stop();
      for (const line of pairedLines(e.rows, prompts.length, seeds.length)) yield* Console.log(line);
      const report = {
        model,
        textEncoder: tunedPath,
        tunedWeight: w,
        unet: Option.getOrNull(f.unet),
        seeds,
        steps,
        guidance,
        size,
        prompts,
        paired: e.rows,
        base: Object.fromEntries(e.base),
        tuned: Object.fromEntries(e.tuned),
      };
      yield* attempt(() => writeFileAtomic(f.out, new TextEncoder().encode(JSON.stringify(report, null, 2))));
      yield* Console.log(
        `scores in ${f.out} (diversity: mean RMS pixel distance between different prompts' images, paired per seed)`,
      );
      for (const r of rewards) r.reward.dispose?.();
      tuned.dispose();
      sd.dispose();
      return;
    }
    const bar = progressBar("evaluating", seeds.length * Math.ceil(prompts.length / f.batchSize));
    const stats = yield* attempt(() =>
      evaluateRewards(sd, rewards, prompts, {
        seeds,
        batchSize: f.batchSize,
        steps,
        guidanceScale: guidance,
        height: size,
        width: size,
        diversity: true,
        onBatch: (done) => bar.update(done),
        // The control schedule is rebuilt per batch, since it embeds that batch's prompts.
        embeddingsFor: tuned
          ? (batch) =>
              controlledEmbeddings(sd, batch, "", {
                original: sd.textEncoder,
                mix: [
                  { encoder: sd.textEncoder, weight: 1 - w },
                  { encoder: tuned, weight: w },
                ],
                lastSteps,
              })
          : undefined,
      }),
    );
    bar.stop();
    yield* Console.log(`${"metric".padEnd(14)} ${"mean".padStart(12)} ${"std".padStart(12)} ${"n".padStart(6)}`);
    for (const [name, s] of stats)
      yield* Console.log(
        `${name.padEnd(14)} ${s.mean.toFixed(6).padStart(12)} ${s.std.toFixed(6).padStart(12)} ${String(s.n).padStart(6)}`,
      );
    const report = {
      model,
      textEncoder: tunedPath ?? null,
      tunedWeight: tuned ? w : null,
      unet: Option.getOrNull(f.unet),
      seeds,
      steps,
      guidance,
      size,
      prompts,
      rewards: Object.fromEntries(stats),
    };
    yield* attempt(() => writeFileAtomic(f.out, new TextEncoder().encode(JSON.stringify(report, null, 2))));
    yield* Console.log(`scores in ${f.out} (diversity: mean RMS pixel distance between different prompts' images)`);
    for (const r of rewards) r.reward.dispose?.();
    tuned?.dispose();
    sd.dispose();
  }),
).pipe(
  Command.withDescription(
    "Mean and spread of each reward, and image diversity, over a prompt set and several seeds (table, and JSON on disk)",
  ),
);
