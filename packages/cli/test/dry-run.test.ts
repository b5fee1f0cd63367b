/** `train --dry-run`: the memory plan, measured on a meta device, printed without training or loading weights. */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "./cli.ts";

test("train --dry-run prints the plan per model and dtype and stops before training", () => {
  const run = join(mkdtempSync(join(tmpdir(), "tc-dry-")), "run");
  const r = cli("train", "--dry-run", "--run-dir", run, "--mixed-precision", "fp16");
  expect(r.code, r.err).toBe(0);
  for (const row of [
    /text encoder +f32 +1\.6 M/,
    /UNet +f16 +0\.8 M/,
    /VAE +f16/,
    /original text encoder +f16/,
    /reward models/,
    /gradients/,
    /optimizer state/,
    /activations at peak/,
    /peak +\d/,
  ]) {
    expect(r.out).toMatch(row);
  }
  expect(r.out).toMatch(/fits: [\d.]+ MiB of [\d.]+ GiB/);
  expect(existsSync(join(run, "checkpoints"))).toBe(false);
  expect(existsSync(join(run, "metrics.jsonl"))).toBe(false);
});

test("a plan over --memory-budget says it does not fit and what to try", () => {
  const r = cli(
    "train",
    "--dry-run",
    "--run-dir",
    join(mkdtempSync(join(tmpdir(), "tc-dry-")), "run"),
    "--memory-budget",
    "0.01",
  );
  expect(r.code, r.err).toBe(0);
  expect(r.out).toContain("does not fit: ");
  expect(r.out).toContain("(--memory-budget); try --mixed-precision fp16");
});
