/** The CLI end to end on a tiny diffusers folder written to disk: train, then generate with the tuned encoder. */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initRuntime, saveDiffusersFolder } from "@textcraftor/core";
import { tinyStableDiffusion } from "../../core/test/tiny-sd.ts";
import { cli } from "./cli.ts";

const work = mkdtempSync(join(tmpdir(), "tc-cli-"));
const model = join(work, "tiny-sd");

beforeAll(async () => {
  await initRuntime();
  const sd = await tinyStableDiffusion(4);
  await saveDiffusersFolder(sd, model);
  sd.dispose();
  writeFileSync(join(work, "prompts.txt"), "a red apple\na blue car\n\na green tree\n");
});

describe("cli train and generate", () => {
  test("train writes metrics, samples, a checkpoint and a diffusers text_encoder/ that generate can use", () => {
    const run = join(work, "run");
    const t = cli(
      "train",
      "--model",
      model,
      "--reward",
      "brightness=1",
      "--reward",
      "colorfulness=0.1",
      "--prompts",
      join(work, "prompts.txt"),
      "--steps",
      "2",
      "--batch-size",
      "1",
      "--inference-steps",
      "3",
      "--grad-steps",
      "1",
      "--resolution",
      "16",
      "--lr",
      "1e-3",
      "--checkpoint-every",
      "1",
      "--sample-every",
      "2",
      "--run-dir",
      run,
    );
    expect(t.code, t.err + t.out).toBe(0);
    const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(2);
    expect(Object.keys(metrics[0].rewards).sort()).toEqual(["brightness", "colorfulness"]);
    for (const f of [
      "text_encoder/config.json",
      "text_encoder/model.safetensors",
      "samples/step-000000.png",
      "samples/step-000002.png",
      "checkpoints/latest.json",
    ]) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    const g = cli(
      "generate",
      "--model",
      model,
      "--text-encoder",
      join(run, "text_encoder"),
      "--prompt",
      "a cat",
      "--prompt",
      "a dog",
      "--steps",
      "2",
      "--size",
      "16",
      "--out",
      join(work, "out"),
    );
    expect(g.code, g.err + g.out).toBe(0);
    for (const f of ["000-seed0.png", "001-seed0.png", "grid-seed0.png"])
      expect(existsSync(join(work, "out", f)), f).toBe(true);
  });

  test("LoRA on the text encoder exports a merged plain encoder; the UNet stage exports a unet/ folder", () => {
    const common = [
      "--model",
      model,
      "--reward",
      "brightness",
      "--prompts",
      join(work, "prompts.txt"),
      "--steps",
      "1",
      "--batch-size",
      "1",
      "--inference-steps",
      "2",
      "--grad-steps",
      "1",
      "--resolution",
      "16",
      "--sample-every",
      "5",
    ];
    const lora = join(work, "run-lora");
    const l = cli("train", ...common, "--lora-rank", "2", "--run-dir", lora);
    expect(l.code, l.err + l.out).toBe(0);
    const g = cli(
      "generate",
      "--model",
      model,
      "--text-encoder",
      join(lora, "text_encoder"),
      "--prompt",
      "a cat",
      "--steps",
      "2",
      "--size",
      "16",
      "--out",
      join(work, "out-lora"),
    );
    expect(g.code, g.err + g.out).toBe(0);
    const stage = join(work, "run-unet");
    const u = cli(
      "train",
      ...common,
      "--train",
      "unet",
      "--text-encoder",
      join(lora, "text_encoder"),
      "--run-dir",
      stage,
    );
    expect(u.code, u.err + u.out).toBe(0);
    expect(existsSync(join(stage, "unet/diffusion_pytorch_model.safetensors"))).toBe(true);
  });

  test("bad input fails with a clear message and no stack trace", () => {
    const r = cli("train", "--model", model, "--reward", "nope", "--prompts", join(work, "prompts.txt"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/unknown reward "nope"; known rewards: .*aesthetic/);
    const empty = join(work, "empty.txt");
    writeFileSync(empty, "\n\n");
    const e = cli("train", "--model", model, "--reward", "brightness", "--prompts", empty);
    expect(e.err).toMatch(/holds no prompts/);
    expect(e.err).not.toMatch(/at .*\.ts:\d+/);
  });
});
