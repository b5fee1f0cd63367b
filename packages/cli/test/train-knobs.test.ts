/** The fine-tuners' knobs through `train`'s flags: recorded in config.json, reported in metrics, resumable from a chosen checkpoint. */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initRuntime, saveDiffusersFolder } from "@textcraftor/core";
import { tinyStableDiffusion } from "../../core/test/tiny-sd.ts";
import { cli } from "./cli.ts";

const work = mkdtempSync(join(tmpdir(), "tc-cli-knobs-"));
const model = join(work, "tiny-sd");
const prompts = join(work, "prompts.txt");

beforeAll(async () => {
  await initRuntime();
  const sd = await tinyStableDiffusion(4);
  await saveDiffusersFolder(sd, model);
  sd.dispose();
  writeFileSync(prompts, "a red apple\na blue car\n");
});

const common = ["--model", model, "--reward", "brightness", "--prompts", prompts, "--batch-size", "1", "--inference-steps", "2", "--grad-steps", "1",
  "--resolution", "16", "--sample-every", "10", "--checkpoint-every", "1"];

describe("train's optimizer and checkpoint knobs", () => {
  test("schedule, clipping, EMA, Adam settings and checkpoint limit reach the run; --resume-from continues a chosen checkpoint", () => {
    const run = join(work, "run");
    const t = cli("train", ...common, "--steps", "2", "--run-dir", run, "--lr", "1e-3", "--lr-scheduler", "linear", "--lr-warmup-steps", "1",
      "--max-grad-norm", "0.5", "--ema-decay", "0.9", "--adam-beta1", "0.8", "--adam-beta2", "0.99", "--adam-epsilon", "1e-6",
      "--adam-weight-decay", "0", "--checkpoints-total-limit", "0");
    expect(t.code, t.err + t.out).toBe(0);
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
    expect(config).toMatchObject({ lrScheduler: "linear", lrWarmupSteps: 1, maxGradNorm: 0.5, emaDecay: 0.9, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0, checkpointsTotalLimit: null });
    const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.lr)).toEqual([0, 1e-3]);
    expect(metrics.every((m) => m.gradNorm > 0)).toBe(true);
    expect(existsSync(join(run, "checkpoints/step-000001/ema.safetensors"))).toBe(true);

    const r = cli("train", "--resume-from", join(run, "checkpoints/step-000001"), "--run-dir", run);
    expect(r.code, r.err + r.out).toBe(0);
    expect(readdirSync(join(run, "checkpoints")).filter((f) => f.startsWith("step-")).sort()).toEqual(["step-000001", "step-000002"]);
    const bad = cli("train", "--resume-from", join(run, "checkpoints/step-000009"), "--run-dir", run);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("is not a checkpoint folder");
  });

  test("--config: the file's settings and inputs are used, flags win; a bad file lists every problem before any loading", () => {
    const run = join(work, "run-config");
    const toml = join(work, "run.toml");
    writeFileSync(toml, [`model = "tiny-sd"`, `reward = ["brightness"]`, `prompts = "prompts.txt"`, `run_dir = "run-config"`, "steps = 3", "batch_size = 1",
      "inference_steps = 2", "grad_steps = 1", "resolution = 16", "sample_every = 10", 'lr_scheduler = "cosine"', "lr = 2e-3"].join("\n"));
    const t = cli("train", "--config", toml, "--steps", "1", "--lr", "1e-3");
    expect(t.code, t.err + t.out).toBe(0);
    expect(JSON.parse(readFileSync(join(run, "config.json"), "utf8"))).toMatchObject({ steps: 1, lr: 1e-3, lrScheduler: "cosine", batchSize: 1, resolution: 16 });
    writeFileSync(toml, ["learning_rate = 1e-4", "steps = 0"].join("\n"));
    const bad = cli("train", "--config", toml);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("2 problems:\n  learning_rate: not a train setting; did you mean lr?");
    expect(bad.err).toContain("steps = 0: Expected a value greater than 0");
  });
});
