/**
 * A run folder stays trustworthy: settings are checked in f32 terms, a checkpoint never holds a non-finite
 * weight, one process writes a folder at a time, a resume does not log redone steps twice, and a failed save
 * leaves no half-written step folder.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { saveCheckpoint } from "../src/training/state.ts";
import { RUN_LOCK_FILE, acquireRunLock } from "../src/training/run-lock.ts";
import { truncateLog } from "../src/training/run-logs.ts";
import { tinyTrainingModels } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const models = tinyTrainingModels;
const config = (over: Partial<T.TrainConfig> = {}): T.TrainConfig => ({
  ...T.TRAIN_DEFAULTS,
  steps: 4,
  batchSize: 2,
  inferenceSteps: 3,
  gradSteps: 1,
  resolution: 16,
  lr: 3e-3,
  weightDecay: 0,
  checkpointEvery: 2,
  sampleEvery: 100,
  seed: 5,
  gradientCheckpointing: false,
  ...over,
});
const prompts = ["a red apple", "a blue car", "a green tree", "a yellow sun"];
const temp = (name: string) => mkdtempSync(join(tmpdir(), `tc-${name}-`));
const logSteps = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);

describe("hyperparameters in f32 terms", () => {
  test("values finite in JS but ∞ or 0 in f32 are refused, and so is lr × weight decay ≥ 1", () => {
    const check = (over: Partial<T.TrainConfig>) => () => T.validateTrainConfig(config(over));
    expect(check({ lr: 1e39 })).toThrow(
      "train config: lr 1e+39 is beyond f32's range (±3.4e38), in which the weights are updated",
    );
    expect(check({ guidanceScale: -1e39 })).toThrow("guidanceScale -1e+39 is beyond f32's range");
    expect(check({ eps: 1e-50 })).toThrow(
      "eps 1e-50 is below f32's smallest normal number (1.2e-38) and would act as 0",
    );
    expect(check({ lr: 10, weightDecay: 0.1 })).toThrow("lr × weightDecay must be below 1");
    expect(check({ lr: 1e-3, weightDecay: 1e-2, eps: 1e-8 })).not.toThrow();
  });
});

describe("checkpoints", () => {
  /** Trains, overwriting the first weight with ∞ after `at`'s update: what an update too large for f32 does. */
  async function poisoned(over: Partial<T.TrainConfig>, at: number) {
    const m = await models();
    const dir = temp("inf");
    const [name, first] = [...m.sd.textEncoder.namedParameters()][0]!;
    const poison = (s: { step: number }) => {
      if (s.step === at)
        m.sd.textEncoder.loadStateDict(
          new Map([[name, { data: new Float32Array(first.size).fill(Infinity), shape: first.shape }]]),
          { strict: false },
        );
    };
    return { dir, run: T.train({ models: m, config: config(over), prompts, runDir: dir, onStep: poison }) };
  }

  test("weights that turned non-finite are not saved, and the error names the last good checkpoint", async () => {
    const { dir, run } = await poisoned({ steps: 2, checkpointEvery: 1 }, 2);
    await expect(run).rejects.toThrow(
      `after step 2 the trained weights hold NaN or ±Inf, so they were not saved; the last good checkpoint is ${join(dir, "checkpoints", "step-000001")}`,
    );
    expect(readdirSync(join(dir, "checkpoints")).sort()).toEqual(["latest.json", "step-000001"]);
  });

  test("a run whose last steps were skipped after a bad update fails instead of handing back ∞ weights to export", async () => {
    const { run } = await poisoned({ steps: 3, checkpointEvery: 2 }, 1);
    await expect(run).rejects.toThrow(
      "after step 3 the trained weights hold NaN or ±Inf, so they were not saved; the last good checkpoint is (none yet)",
    );
  });

  test("a checkpoint holding ∞ (saved before weights were checked) is not resumed from", async () => {
    const dir = temp("inf-resume");
    await T.train({ models: await models(), config: config({ steps: 2 }), prompts, runDir: dir });
    const file = join(dir, "checkpoints", "step-000002", "trainable.safetensors");
    const { tensors } = T.readSafetensors(new Uint8Array(readFileSync(file)));
    const [name, first] = [...tensors][0]!;
    tensors.set(name, { ...first, data: new Float32Array(first.data.length).fill(Infinity) });
    writeFileSync(file, T.writeSafetensors(tensors));
    const run = T.train({ models: await models(), config: config({ steps: 4 }), prompts, runDir: dir, resume: true });
    await expect(run).rejects.toThrow(
      `--resume: the step 2 checkpoint in ${join(dir, "checkpoints")} holds NaN or ±Inf weights`,
    );
  });

  test("a full disk is reported with the file and the intact last checkpoint to resume from", async () => {
    const dir = temp("enospc");
    const full = (s: { step: number }) => {
      if (s.step === 3)
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), {
          code: "ENOSPC",
          path: join(dir, "metrics.jsonl"),
        });
    };
    const run = T.train({ models: await models(), config: config({ steps: 4 }), prompts, runDir: dir, onStep: full });
    await expect(run).rejects.toThrow(
      `no space left on the device while writing ${join(dir, "metrics.jsonl")}. The last checkpoint, ${join(dir, "checkpoints", "step-000002")}, is intact: free some space and continue with --resume.`,
    );
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);
  });

  test("a save that fails midway (a full disk) removes its step folder; latest.json keeps naming the previous one", async () => {
    const layer = T.withInitMode("none", () => new T.Linear(3, 2));
    const optimizer = new T.AdamW([...layer.parameters()]);
    const dir = temp("ckpt");
    await saveCheckpoint(dir, layer, ["weight", "bias"], optimizer, { step: 1, badSteps: 0 });
    // A directory where the optimizer file goes makes its write fail after the weights are written.
    mkdirSync(join(dir, "step-000002", "optimizer.safetensors"), { recursive: true });
    await expect(saveCheckpoint(dir, layer, ["weight", "bias"], optimizer, { step: 2, badSteps: 0 })).rejects.toThrow();
    expect(readdirSync(dir).sort()).toEqual(["latest.json", "step-000001"]);
    optimizer.dispose();
  });
});

describe("one writer per run folder", () => {
  test("a second train on a folder in use is refused, naming the holder's PID", async () => {
    const dir = temp("lock");
    const holder = Bun.spawn(
      [
        "bun",
        "-e",
        `const { acquireRunLock } = await import(${JSON.stringify(join(import.meta.dir, "../src/training/run-lock.ts"))}); await acquireRunLock(${JSON.stringify(dir)}); console.log("locked"); await Bun.sleep(60000);`,
      ],
      { stdout: "pipe" },
    );
    try {
      const reader = holder.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
      const run = T.train({ models: await models(), config: config({ steps: 1 }), prompts, runDir: dir });
      await expect(run).rejects.toThrow(`${dir} is in use: process ${holder.pid} has been training there since`);
      expect(existsSync(join(dir, "metrics.jsonl"))).toBe(false);
    } finally {
      holder.kill(9);
      await holder.exited;
    }
    // Its owner is dead now: the stale lock is taken over. This process may take it again (the CLI holds it
    // around train()); the file goes with the last release.
    const lock = await acquireRunLock(dir);
    const again = await acquireRunLock(dir);
    await again.release();
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(true);
    await lock.release();
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);
  });

  test("a lock left by a dead process, or torn, is recovered", async () => {
    const dir = temp("stale");
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    writeFileSync(
      join(dir, RUN_LOCK_FILE),
      JSON.stringify({ pid: dead.pid, host: require("node:os").hostname(), startTime: null, since: "then" }),
    );
    await (await acquireRunLock(dir)).release();
    writeFileSync(join(dir, RUN_LOCK_FILE), '{"pid":');
    await (await acquireRunLock(dir)).release();
  });
});

describe("resume", () => {
  test("logs are cut back to the checkpoint's step, so redone steps are logged once", async () => {
    const dir = temp("logs");
    await T.train({ models: await models(), config: config({ steps: 4 }), prompts, runDir: dir });
    expect(logSteps(join(dir, "metrics.jsonl"))).toEqual([1, 2, 3, 4]);
    // As if the process died after logging steps 3 and 4 (one line torn) but before checkpointing step 4.
    writeFileSync(
      join(dir, "checkpoints/latest.json"),
      JSON.stringify({ folder: "step-000002", step: 2, badSteps: 0 }),
    );
    writeFileSync(join(dir, "metrics.jsonl"), readFileSync(join(dir, "metrics.jsonl"), "utf8") + '{"step": 5, "lo');
    await T.train({ models: await models(), config: config({ steps: 4 }), prompts, runDir: dir, resume: true });
    expect(logSteps(join(dir, "metrics.jsonl"))).toEqual([1, 2, 3, 4]);
  });

  test("truncateLog keeps lines up to the step and drops torn ones", async () => {
    const file = join(temp("trunc"), "samples.jsonl");
    writeFileSync(file, ['{"step":0}', '{"step":40}', '{"step":80}', '{"st'].join("\n"));
    expect(await truncateLog(file, 40)).toBe(2);
    expect(readFileSync(file, "utf8")).toBe('{"step":0}\n{"step":40}\n');
    expect(await truncateLog(join(temp("none"), "metrics.jsonl"), 3)).toBe(0);
  });
});
