import { writeFileSync } from "node:fs";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { controlledEmbeddings, evaluateRewards, initRuntime, loadStableDiffusion, loadTextEncoder, readPrompts } from "@textcraftor/core";
import { createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "@textcraftor/rewards";
import { UserFacingError, attempt } from "../errors.ts";
import { progressBar } from "../progress.ts";

export const evalCommand = Command.make(
  "eval",
  {
    model: Flag.String("model").pipe(Flag.withDescription("A diffusers folder or single-file SD 1.x checkpoint")),
    textEncoder: Flag.String("text-encoder").pipe(Flag.withDescription("A tuned text encoder, used for the last --tuned-steps (the paper's evaluation)"), Flag.optional),
    tunedSteps: Flag.Int("tuned-steps").pipe(Flag.withDescription("Default: 60 % of the steps (15 of 25)"), Flag.optional),
    prompts: Flag.String("prompts").pipe(Flag.withDescription(".txt, .tsv/.csv with a Prompt column, or .json")),
    reward: Flag.String("reward").pipe(Flag.withDescription("name[=weight][:weights=PATH][:key=value]... (repeatable)"), Flag.atLeast(1)),
    rewardPlugin: Flag.String("reward-plugin").pipe(Flag.atLeast(0)),
    seeds: Flag.String("seeds").pipe(Flag.withDescription("Comma-separated seeds"), Flag.withDefault("0,1")),
    steps: Flag.Int("steps").pipe(Flag.withDefault(25)),
    guidance: Flag.Finite("guidance").pipe(Flag.withDefault(7.5)),
    size: Flag.Int("size").pipe(Flag.optional),
    batchSize: Flag.Int("batch-size").pipe(Flag.withDefault(4)),
    out: Flag.String("out").pipe(Flag.withDescription("JSON file with every score"), Flag.withDefault("eval.json")),
  },
  Effect.fn(function* (f) {
    const seeds = f.seeds.split(",").map(Number);
    if (seeds.some((s) => !Number.isInteger(s))) return yield* new UserFacingError({ message: `--seeds "${f.seeds}": expected comma-separated integers` });
    const rt = yield* attempt(() => initRuntime());
    const registry = createRegistry();
    for (const path of f.rewardPlugin) registry.register(yield* attempt(() => loadRewardPlugin(path)));
    const specs = yield* attempt(async () => f.reward.map(parseRewardSpec));
    const rewards = yield* attempt(() => loadRewards(specs, registry, rt.gpu));
    const prompts = yield* attempt(() => readPrompts(f.prompts));
    const sd = yield* attempt(() => loadStableDiffusion(f.model));
    const size = Option.getOrElse(f.size, () => (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512);
    const tunedPath = Option.getOrUndefined(f.textEncoder);
    const tuned = tunedPath ? yield* attempt(() => loadTextEncoder(tunedPath, sd.source.configs.textEncoder)) : null;
    const bar = progressBar("evaluating", seeds.length * Math.ceil(prompts.length / f.batchSize));
    const lastSteps = Option.getOrElse(f.tunedSteps, () => Math.round(0.6 * f.steps));
    const stats = yield* attempt(() => evaluateRewards(sd, rewards, prompts, {
      seeds, batchSize: f.batchSize, steps: f.steps, guidanceScale: f.guidance, height: size, width: size,
      onBatch: (done) => bar.update(done),
      // The control schedule is rebuilt per batch, since it embeds that batch's prompts.
      embeddingsFor: tuned ? (batch) => controlledEmbeddings(sd, batch, "", { original: sd.textEncoder, mix: [{ encoder: tuned, weight: 1 }], lastSteps }) : undefined,
    }));
    bar.stop();
    yield* Console.log(`${"reward".padEnd(14)} ${"mean".padStart(12)} ${"std".padStart(12)} ${"n".padStart(6)}`);
    for (const [name, s] of stats) yield* Console.log(`${name.padEnd(14)} ${s.mean.toFixed(6).padStart(12)} ${s.std.toFixed(6).padStart(12)} ${String(s.n).padStart(6)}`);
    writeFileSync(f.out, JSON.stringify({ model: f.model, textEncoder: Option.getOrNull(f.textEncoder), seeds, prompts, rewards: Object.fromEntries(stats) }, null, 2));
    yield* Console.log(`scores in ${f.out}`);
    for (const r of rewards) r.reward.dispose?.();
    tuned?.dispose();
    sd.dispose();
  }),
).pipe(Command.withDescription("Mean and spread of each reward over a prompt set and several seeds (table, and JSON on disk)"));
