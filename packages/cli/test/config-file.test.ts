/** `train --config`: keys, spellings, paths, every problem listed at once, and a run's config.json read back. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TRAIN_DEFAULTS } from "@textcraftor/core";
import { COMMAND_ONLY, configKeys, parseRunConfig, readRunConfig } from "../src/config-file.ts";
import { closest } from "../src/suggest.ts";
import { cli } from "./cli.ts";

const dir = mkdtempSync(join(tmpdir(), "tc-config-"));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("run config files", () => {
  test("TOML keys in kebab or snake case become settings and inputs; paths are relative to the file", () => {
    const path = write(
      "run.toml",
      [
        'model = "models/sd"',
        'reward = ["aesthetic=3", "clip=50"]',
        "batch_size = 2",
        "lr = 1e-5",
        'lr-scheduler = "cosine"',
        "lr_warmup_steps = 10",
        "max_grad_norm = 1.0",
        "ema_decay = 0.999",
        "adam_beta2 = 0.99",
        "checkpoints_total_limit = 0",
        "lora_rank = 4",
        "gradient_checkpointing = false",
        'export_dtype = "f16"',
      ].join("\n"),
    );
    const c = readRunConfig(path);
    expect(c.train).toEqual({
      batchSize: 2,
      lr: 1e-5,
      lrScheduler: "cosine",
      lrWarmupSteps: 10,
      maxGradNorm: 1,
      emaDecay: 0.999,
      beta2: 0.99,
      checkpointsTotalLimit: null,
      lora: { rank: 4 },
      gradientCheckpointing: false,
    });
    expect(c.inputs).toEqual({ model: join(dir, "models/sd"), reward: ["aesthetic=3", "clip=50"], exportDtype: "f16" });
  });

  test("every problem is listed at once, with its key, value and what is allowed", () => {
    const path = write(
      "bad.toml",
      [
        "steps = -3",
        'lr_sheduler = "linear"',
        'truncation = "all"',
        "batch-size = 1.5",
        "ema_decay = 1",
        "resume = true",
        "learning_rate = 1e-4",
      ].join("\n"),
    );
    let message = "";
    try {
      readRunConfig(path);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split("\n")).toEqual([
      `${path}: 7 problems:`,
      "  steps = -3: Expected a value greater than 0",
      "  lr_sheduler: not a train setting; did you mean lr-scheduler? (the keys are train's flag names: `bun run cli train --help`)",
      '  truncation = "all": Expected "last-k" | "draft-k" | "alignprop" | "refl"',
      "  batch-size = 1.5: Expected an integer",
      "  ema_decay = 1: Expected a value less than 1",
      "  resume: give --resume on the command line, not in a config file",
      "  learning_rate: not a train setting; did you mean lr? (the keys are train's flag names: `bun run cli train --help`)",
    ]);
  });

  test("a run's config.json loads back as the same settings", () => {
    const saved = { ...TRAIN_DEFAULTS, lora: { rank: 2, alpha: 4 }, maxGradNorm: 0.5 };
    expect(readRunConfig(write("config.json", JSON.stringify(saved))).train).toEqual(saved);
  });

  test("unreadable files say why", () => {
    expect(() => readRunConfig(join(dir, "missing.toml"))).toThrow("missing.toml: no such file");
    expect(() => readRunConfig(write("broken.toml", "steps = = 2"))).toThrow("cannot be read as TOML");
    expect(() => parseRunConfig({ "lora-alpha": 2 }, dir)).toThrow("lora-alpha: needs lora-rank");
  });

  test("diffusers' names find ours, typos the closest name, unrelated words none", () => {
    expect(closest("learning_rate", ["lr", "seed", "steps"])).toBe("lr");
    expect(closest("learning_rate", ["seed", "steps"])).toBe(null);
    expect(closest("colour", ["lr", "seed", "steps"])).toBe(null);
    expect(closest("lr-sheduler", ["lr-scheduler", "lr"])).toBe("lr-scheduler");
  });

  test("every flag of train has a config key, or says what to do with a run", () => {
    const help = cli("train", "--help");
    const flags = [...help.out.split("GLOBAL FLAGS")[0]!.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]!);
    expect(flags.length).toBeGreaterThan(30);
    expect(flags.filter((f) => !configKeys().includes(f) && !COMMAND_ONLY.has(f))).toEqual([]);
  });
});
