/** `generate` with its sampler options, on a tiny diffusers folder written to disk. */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "fast-png";
import { initRuntime, saveDiffusersFolder } from "@textcraftor/core";
import { tinyStableDiffusion } from "../../core/test/tiny-sd.ts";
import { cli } from "./cli.ts";

const work = mkdtempSync(join(tmpdir(), "tc-generate-"));
const model = join(work, "tiny-sd");

const generate = (...args: string[]) =>
  cli("generate", "--model", model, "--prompt", "a cat", "--steps", "2", "--size", "16", ...args);

beforeAll(async () => {
  await initRuntime();
  const sd = await tinyStableDiffusion(6);
  await saveDiffusersFolder(sd, model);
  sd.dispose();
});

describe("cli generate", () => {
  test("samples with Euler and trailing timesteps", () => {
    const out = join(work, "euler");
    const r = generate("--scheduler", "euler", "--spacing", "trailing", "--out", out);
    expect(r.code, r.err + r.out).toBe(0);
    expect(existsSync(join(out, "000-seed0.png"))).toBe(true);
  });

  test("samples with DPM++ 2M Karras, a registry sampler, and refuses a spacing it sets itself", () => {
    const out = join(work, "dpmpp");
    const r = generate("--scheduler", "dpmpp-2m-karras", "--out", out);
    expect(r.code, r.err + r.out).toBe(0);
    expect(existsSync(join(out, "000-seed0.png"))).toBe(true);
    expect(generate("--scheduler", "dpmpp-2m-karras", "--spacing", "leading", "--out", out).err).toMatch(
      /Karras sigmas set the timesteps/,
    );
  });

  test("--num-images samples each prompt at consecutive seeds, the first as a single run does", async () => {
    const out = join(work, "several"),
      single = join(work, "single");
    const r = generate("--num-images", "3", "--seed", "5", "--out", out);
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain("wrote 3 image(s)");
    for (const seed of [5, 6, 7]) expect(existsSync(join(out, `000-seed${seed}.png`)), `seed ${seed}`).toBe(true);
    expect(generate("--seed", "5", "--out", single).code).toBe(0);
    const bytes = (dir: string, seed: number) => Bun.file(join(dir, `000-seed${seed}.png`)).bytes();
    expect(await bytes(out, 5)).toEqual(await bytes(single, 5));
    expect(await bytes(out, 6)).not.toEqual(await bytes(out, 5));
    expect(generate("--num-images", "0", "--out", out).err).toContain("--num-images 0: expected a positive integer");
  });

  test("refuses TextCraftor's DDIM spacing with Euler, with a message and no stack trace", () => {
    const r = generate("--scheduler", "euler", "--spacing", "textcraftor", "--out", join(work, "refused"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/"textcraftor" timestep spacing is TextCraftor's DDIM schedule/);
    expect(r.err).not.toMatch(/at .*\.ts:\d+/);
  });
});

describe("cli mix and the tuned-encoder controls", () => {
  const sample = (...args: string[]) =>
    cli(...args, "--model", model, "--prompt", "a cat", "--steps", "2", "--size", "16");
  // The pixels: each file's parameters chunk names its own settings (the tuned encoder and weight).
  const png = async (dir: string) => decode(await Bun.file(join(dir, "000-seed0.png")).bytes()).data;

  test("weight 0 on the tuned encoder reproduces the original; a mix of encoders renders", async () => {
    const tuned = join(model, "text_encoder"); // any encoder folder serves; the point is the mixing plumbing
    const plain = join(work, "plain"),
      w0 = join(work, "w0"),
      mixed = join(work, "mixed");
    expect(sample("generate", "--out", plain).code).toBe(0);
    expect(sample("generate", "--text-encoder", tuned, "--tuned-weight", "0", "--out", w0).code).toBe(0);
    expect(Array.from(await png(w0))).toEqual(Array.from(await png(plain)));
    const r = sample(
      "mix",
      "--encoder",
      "original=0.25",
      "--encoder",
      `${tuned}=0.75`,
      "--tuned-steps",
      "1",
      "--out",
      mixed,
    );
    expect(r.code, r.err + r.out).toBe(0);
    expect(existsSync(join(mixed, "000-seed0.png"))).toBe(true);
  });

  test("mix weights must sum to 1", () => {
    const r = sample("mix", "--encoder", "original=0.5", "--out", join(work, "bad-mix"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/must sum to 1/);
  });
});

describe("cli eval", () => {
  test("prints mean and spread per reward over prompts × seeds and writes every score as JSON", async () => {
    const prompts = join(work, "eval-prompts.txt");
    await Bun.write(prompts, "a red apple\na blue car\na tree\n");
    const out = join(work, "eval.json");
    const args = [
      "eval",
      "--model",
      model,
      "--prompts",
      prompts,
      "--reward",
      "brightness",
      "--reward",
      "contrast",
      "--seeds",
      "0,1",
      "--steps",
      "2",
      "--size",
      "16",
      "--batch-size",
      "2",
    ];
    const r = cli(...args, "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/brightness\s+-?[\d.]+\s+[\d.]+\s+6/);
    const json = await Bun.file(out).json();
    expect(json.rewards.brightness.scores).toHaveLength(6);
    const { mean, scores } = json.rewards.contrast;
    expect(mean).toBeCloseTo(scores.reduce((a: number, b: number) => a + b, 0) / scores.length, 9);
    // Same seeds, same noise: a second run gives the same numbers.
    const again = join(work, "eval2.json");
    expect(cli(...args, "--out", again).code).toBe(0);
    expect((await Bun.file(again).json()).rewards).toEqual(json.rewards);
  });
});
