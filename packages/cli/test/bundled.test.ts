/** The out-of-the-box commands on the bundled tiny model: train, eval and generate with no --model. */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSafetensorsHeader } from "@textcraftor/core";
import { cli } from "./cli.ts";

const work = mkdtempSync(join(tmpdir(), "tc-bundled-"));

describe("bundled model", () => {
  test("train with no --model runs TextCraftor on it and writes the run folder", () => {
    const run = join(work, "run");
    const t = cli(
      "train",
      "--steps",
      "2",
      "--batch-size",
      "1",
      "--inference-steps",
      "3",
      "--grad-steps",
      "1",
      "--export-dtype",
      "f16",
      "--eval-limit",
      "4",
      "--run-dir",
      run,
    );
    expect(t.code, t.err + t.out).toBe(0);
    expect(t.out).toContain("bundled tiny model");
    expect(t.out).toContain(
      "base vs tuned on the same 4 held-out prompt(s) × 2 seed(s) (8 pairs); ± is the paired standard error:",
    );
    expect(t.out).toContain(`bun run cli eval --text-encoder ${join(run, "text_encoder")}`);
    for (const f of [
      "before-after.png",
      "curves.svg",
      "metrics.jsonl",
      "samples.jsonl",
      "text_encoder/model.safetensors",
      "config.json",
      "report.html",
    ]) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    const exported = readSafetensorsHeader(new Uint8Array(readFileSync(join(run, "text_encoder/model.safetensors"))));
    expect(new Set([...exported.tensors.values()].map((e) => e.dtype))).toEqual(new Set(["F16"]));
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
    expect(config).toMatchObject({ resolution: 32, guidanceScale: 5, steps: 2, gradientCheckpointing: false });
    const samples = readFileSync(join(run, "samples.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(samples.map((s) => s.step)).toEqual([0, 2]);
    expect(Object.keys(samples[0].rewards).sort()).toEqual(["clip", "colorfulness"]);
    expect(readFileSync(join(run, "curves.svg"), "utf8").match(/<polyline/g)).toHaveLength(6); // loss + 2 rewards, raw and smoothed
  });

  test("--resume continues with the run's own settings and inputs; --steps extends it; other changes are refused", () => {
    const run = join(work, "resumed");
    expect(
      cli(
        "train",
        "--steps",
        "1",
        "--batch-size",
        "1",
        "--inference-steps",
        "3",
        "--grad-steps",
        "1",
        "--lr",
        "2e-3",
        "--eval-limit",
        "0",
        "--run-dir",
        run,
      ).code,
    ).toBe(0);
    expect(JSON.parse(readFileSync(join(run, "run.json"), "utf8"))).toMatchObject({ model: null, rewards: [] });
    const refused = cli("train", "--resume", "--steps", "2", "--lr", "5e-4", "--run-dir", run);
    expect(refused.code).toBe(2);
    expect(refused.err + refused.out).toContain("was made with lr 0.002 (now 0.0005)");
    const otherReward = cli("train", "--resume", "--steps", "2", "--reward", "brightness", "--run-dir", run);
    expect(otherReward.code).toBe(2);
    expect(otherReward.err + otherReward.out).toContain(
      'was made with --reward not given (the defaults) (now ["brightness"])',
    );
    const resumed = cli("train", "--resume", "--steps", "2", "--eval-limit", "0", "--run-dir", run);
    expect(resumed.code, resumed.err + resumed.out).toBe(0);
    expect(JSON.parse(readFileSync(join(run, "config.json"), "utf8"))).toMatchObject({
      steps: 2,
      batchSize: 1,
      inferenceSteps: 3,
      lr: 2e-3,
    });
    expect(readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n")).toHaveLength(2);
  });

  test("eval with no --model scores held-out prompts, with diversity", () => {
    const out = join(work, "eval.json");
    const e = cli("eval", "--limit", "2", "--seeds", "0", "--steps", "2", "--out", out);
    expect(e.code, e.err + e.out).toBe(0);
    const r = JSON.parse(readFileSync(out, "utf8"));
    expect(r.prompts).toHaveLength(2);
    expect(Object.keys(r.rewards).sort()).toEqual(["clip", "colorfulness", "diversity"]);
    expect(r.rewards.diversity.mean).toBeGreaterThan(0);
  });

  test("eval refuses bad flags by name, before loading anything", () => {
    for (const [args, message] of [
      [["--seeds", ""], '--seeds "": expected comma-separated non-negative integers'],
      [["--batch-size", "0"], "--batch-size 0: expected a positive integer"],
      [["--tuned-weight", "1.5"], "--tuned-weight 1.5: expected a number in [0, 1]"],
    ] as [string[], string][]) {
      const e = cli("eval", ...args, "--out", join(work, "bad.json"));
      expect(e.code).toBe(2);
      expect(e.err + e.out).toContain(message);
      expect(existsSync(join(work, "bad.json"))).toBe(false);
    }
  });

  test("generate with no --model samples the bundled model", () => {
    const g = cli("generate", "--prompt", "red apple", "--steps", "2", "--out", join(work, "gen"));
    expect(g.code, g.err + g.out).toBe(0);
    expect(existsSync(join(work, "gen", "000-seed0.png"))).toBe(true);
  });
});
