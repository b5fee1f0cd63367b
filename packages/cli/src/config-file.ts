/**
 * `train --config run.toml`: every train flag as a key, checked with Effect Schema, every problem reported at
 * once. Keys are the flag names, with - or _ (`batch-size` or `batch_size`); a run's own config.json (camelCase,
 * as the trainer writes it) loads as it is. Paths are relative to the file's folder. Flags given on the command
 * line win over the file.
 */
import { readFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { Result, Schema } from "effect";
import { LR_SCHEDULERS, type TrainConfig } from "@textcraftor/core";
import { closest } from "./suggest.ts";

/** The run's inputs and export choices that a file may give (the rest of train's flags are TrainConfig settings). */
export interface FileInputs {
  model?: string;
  textEncoder?: string;
  reward?: string[];
  rewardPlugin?: string[];
  prompts?: string;
  evalPrompts?: string;
  evalLimit?: number;
  evalSeeds?: string;
  runDir?: string;
  exportFull?: boolean;
  exportSingleFile?: boolean;
  exportDtype?: "f32" | "f16";
}

export interface RunConfigFile {
  train: Partial<TrainConfig>;
  inputs: FileInputs;
}

const positiveInt = Schema.Int.check(Schema.isGreaterThan(0));
const nonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));
const positive = Schema.Finite.check(Schema.isGreaterThan(0));
const nonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0));
const unit = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1));
const strings = Schema.Array(Schema.String);

type Target =
  | { train: keyof TrainConfig }
  | { input: keyof FileInputs; path?: boolean }
  | { lora: "rank" | "alpha" | "both" };

/** Flag name → what its value must be and where it goes. */
const KEYS: Record<string, { schema: Schema.Decoder<unknown>; to: Target }> = {
  model: { schema: Schema.String, to: { input: "model", path: true } },
  "text-encoder": { schema: Schema.String, to: { input: "textEncoder", path: true } },
  reward: { schema: strings, to: { input: "reward" } },
  "reward-plugin": { schema: strings, to: { input: "rewardPlugin", path: true } },
  prompts: { schema: Schema.String, to: { input: "prompts", path: true } },
  "eval-prompts": { schema: Schema.String, to: { input: "evalPrompts", path: true } },
  "eval-limit": { schema: nonNegativeInt, to: { input: "evalLimit" } },
  "eval-seeds": { schema: Schema.String, to: { input: "evalSeeds" } },
  "run-dir": { schema: Schema.String, to: { input: "runDir", path: true } },
  "export-full": { schema: Schema.Boolean, to: { input: "exportFull" } },
  "export-single-file": { schema: Schema.Boolean, to: { input: "exportSingleFile" } },
  "export-dtype": { schema: Schema.Literals(["f32", "f16"]), to: { input: "exportDtype" } },
  steps: { schema: positiveInt, to: { train: "steps" } },
  "batch-size": { schema: positiveInt, to: { train: "batchSize" } },
  "grad-accum": { schema: positiveInt, to: { train: "gradAccum" } },
  "inference-steps": { schema: positiveInt, to: { train: "inferenceSteps" } },
  "grad-steps": { schema: positiveInt, to: { train: "gradSteps" } },
  guidance: { schema: Schema.Finite, to: { train: "guidanceScale" } },
  lr: { schema: positive, to: { train: "lr" } },
  "lr-scheduler": { schema: Schema.Literals(LR_SCHEDULERS), to: { train: "lrScheduler" } },
  "lr-warmup-steps": { schema: nonNegativeInt, to: { train: "lrWarmupSteps" } },
  "max-grad-norm": { schema: Schema.NullOr(positive), to: { train: "maxGradNorm" } },
  "ema-decay": { schema: Schema.NullOr(unit), to: { train: "emaDecay" } },
  "weight-decay": { schema: nonNegative, to: { train: "weightDecay" } },
  "adam-beta1": { schema: unit, to: { train: "beta1" } },
  "adam-beta2": { schema: unit, to: { train: "beta2" } },
  "adam-epsilon": { schema: positive, to: { train: "eps" } },
  resolution: { schema: positiveInt, to: { train: "resolution" } },
  seed: { schema: nonNegativeInt, to: { train: "seed" } },
  "checkpoint-every": { schema: positiveInt, to: { train: "checkpointEvery" } },
  "checkpoints-total-limit": { schema: Schema.NullOr(nonNegativeInt), to: { train: "checkpointsTotalLimit" } },
  "sample-every": { schema: positiveInt, to: { train: "sampleEvery" } },
  "max-bad-steps": { schema: nonNegativeInt, to: { train: "maxBadSteps" } },
  "gradient-checkpointing": { schema: Schema.Boolean, to: { train: "gradientCheckpointing" } },
  truncation: { schema: Schema.Literals(["last-k", "draft-k", "alignprop", "refl"]), to: { train: "truncation" } },
  train: { schema: Schema.Literals(["text-encoder", "unet"]), to: { train: "trainable" } },
  spacing: { schema: Schema.Literals(["textcraftor", "leading"]), to: { train: "spacing" } },
  "mixed-precision": { schema: Schema.Literals(["no", "fp16"]), to: { train: "mixedPrecision" } },
  "lora-rank": { schema: positiveInt, to: { lora: "rank" } },
  "lora-alpha": { schema: positive, to: { lora: "alpha" } },
  // config.json's form: the adapter settings as one object, null without LoRA.
  lora: {
    schema: Schema.NullOr(Schema.Struct({ rank: positiveInt, alpha: Schema.optionalKey(positive) })),
    to: { lora: "both" },
  },
};

/** config.json's names for settings whose flag is named otherwise. */
const ALIASES: Record<string, string> = {
  "guidance-scale": "guidance",
  beta1: "adam-beta1",
  beta2: "adam-beta2",
  eps: "adam-epsilon",
  trainable: "train",
  "adam-weight-decay": "weight-decay",
};
/** Flags that say what to do with a run rather than what the run is. */
export const COMMAND_ONLY = new Set(["config", "resume", "resume-from", "dry-run", "memory-budget", "device"]);
/** The keys a config file may hold: train's other flags. */
export const configKeys = () => Object.keys(KEYS);

const flagName = (key: string) => {
  const kebab = key
    .replace(/_/g, "-")
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .toLowerCase();
  return ALIASES[kebab] ?? kebab;
};

/** Reads and checks a .toml run config or a run's config.json; throws one error listing every problem. */
export function readRunConfig(path: string): RunConfigFile {
  let raw: unknown;
  try {
    const text = readFileSync(path, "utf8");
    raw = extname(path).toLowerCase() === ".json" ? JSON.parse(text) : Bun.TOML.parse(text);
  } catch (e) {
    throw new Error(
      `--config ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `cannot be read as ${extname(path) === ".json" ? "JSON" : "TOML"} (${(e as Error).message})`}`,
    );
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`--config ${path}: expected a table of settings (key = value lines)`);
  return parseRunConfig(raw as Record<string, unknown>, dirname(resolve(path)), path);
}

/** The checked settings of a parsed config; paths resolve against `folder`. */
export function parseRunConfig(raw: Record<string, unknown>, folder: string, label = "config"): RunConfigFile {
  const out: RunConfigFile = { train: {}, inputs: {} };
  const problems: string[] = [];
  const lora: { rank?: number; alpha?: number } = {};
  let loraGiven = false;
  for (const [key, value] of Object.entries(raw)) {
    const name = flagName(key);
    if (COMMAND_ONLY.has(name)) {
      problems.push(`${key}: give --${name} on the command line, not in a config file`);
      continue;
    }
    const spec = KEYS[name];
    if (!spec) {
      const hint = closest(name, Object.keys(KEYS));
      problems.push(
        `${key}: not a train setting${hint ? `; did you mean ${hint}?` : ""} (the keys are train's flag names: \`bun run cli train --help\`)`,
      );
      continue;
    }
    const decoded = Schema.decodeUnknownResult(spec.schema)(value, { errors: "all" });
    if (Result.isFailure(decoded)) {
      problems.push(`${key} = ${JSON.stringify(value)}: ${decoded.failure.message.replace(/\n\s*/g, " ")}`);
      continue;
    }
    const v = decoded.success as never;
    const to = spec.to;
    if ("train" in to)
      (out.train as Record<string, unknown>)[to.train] = name === "checkpoints-total-limit" && v === 0 ? null : v;
    else if ("input" in to)
      (out.inputs as Record<string, unknown>)[to.input] = to.path
        ? Array.isArray(v)
          ? (v as string[]).map((p) => resolve(folder, p))
          : resolve(folder, v)
        : v;
    else if (to.lora === "both") {
      loraGiven = true;
      if (v === null) out.train.lora = null;
      else Object.assign(lora, v);
    } else {
      loraGiven = true;
      lora[to.lora] = v;
    }
  }
  if (loraGiven && out.train.lora !== null) {
    if (lora.rank === undefined) problems.push("lora-alpha: needs lora-rank");
    else out.train.lora = lora.alpha === undefined ? { rank: lora.rank } : { rank: lora.rank, alpha: lora.alpha };
  }
  if (problems.length)
    throw new Error(
      `${label}: ${problems.length} problem${problems.length > 1 ? "s" : ""}:\n  ${problems.join("\n  ")}`,
    );
  return out;
}
