import { beforeAll, describe, expect, test } from "bun:test";
import { decode } from "fast-png";
import * as T from "../src/index.ts";
import { BufferPool } from "../src/internal.ts";
import { tinyStableDiffusion } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

describe("text-to-image on a tiny model", () => {
  test("is deterministic for a seed, differs across seeds, and encodes to PNG", async () => {
    const sd = await tinyStableDiffusion();
    const run = async (seed: number) => {
      const images = T.textToImage(sd, {
        prompts: ["a red apple", "a blue car"],
        seed,
        steps: 3,
        height: 16,
        width: 16,
      });
      expect(images.shape).toEqual([2, 3, 16, 16]);
      const data = await images.toArray();
      images.dispose();
      return data;
    };
    const a = await run(1),
      b = await run(1),
      c = await run(2);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    for (const v of a) expect(v >= 0 && v <= 1).toBe(true);
    const png = decode(T.gridPng(T.splitBatch(a, [2, 3, 16, 16])));
    expect([png.width, png.height]).toEqual([34, 16]);
    sd.dispose();
  });

  test("called outside any scope, it leaves only the images it returns", async () => {
    const sd = await tinyStableDiffusion();
    const before = T.memoryStats().liveBytes;
    const images = T.textToImage(sd, {
      prompts: ["a red apple", "a blue car"],
      seed: 1,
      steps: 2,
      height: 16,
      width: 16,
    });
    expect(T.memoryStats().liveBytes - before).toBe(BufferPool.sizeClass(images.size * 4)); // the pool counts whole size classes
    images.dispose();
    expect(T.memoryStats().liveBytes).toBe(before);
    // The paper's controls too: their embeddings are all that lives until dispose().
    const control = T.controlledEmbeddings(sd, ["a cat"], "", {
      original: sd.textEncoder,
      mix: [
        { encoder: sd.textEncoder, weight: 0.5 },
        { encoder: sd.textEncoder, weight: 0.5 },
      ],
      lastSteps: 1,
    });
    T.textToImage(sd, {
      prompts: ["a cat"],
      steps: 2,
      height: 16,
      width: 16,
      embeddingsAt: control.embeddingsAt,
    }).dispose();
    control.dispose();
    expect(T.memoryStats().liveBytes).toBe(before);
    sd.dispose();
  });

  test("the paper's controls refuse more tuned steps than sampling steps, and a missing tuned encoder is named", async () => {
    const sd = await tinyStableDiffusion();
    const mix = { original: sd.textEncoder, mix: [{ encoder: sd.textEncoder, weight: 1 }] };
    const before = T.memoryStats().liveBytes;
    expect(() => T.controlledEmbeddings(sd, ["a cat"], "", { ...mix, lastSteps: -1 })).toThrow(
      "the tuned steps must be a non-negative integer (got -1)",
    );
    expect(T.memoryStats().liveBytes).toBe(before);
    const control = T.controlledEmbeddings(sd, ["a cat"], "", { ...mix, lastSteps: 4 });
    expect(() =>
      T.textToImage(sd, { prompts: ["a cat"], steps: 3, height: 16, width: 16, embeddingsAt: control.embeddingsAt }),
    ).toThrow("4 tuned steps cannot exceed the 3 sampling steps");
    control.dispose();
    expect(T.memoryStats().liveBytes).toBe(before); // the failed sampling freed what it had made
    await expect(T.loadTextEncoder("/no/such/text_encoder")).rejects.toThrow(
      "text encoder not found: /no/such/text_encoder",
    );
    sd.dispose();
  });

  test("a fixed embedding schedule reproduces the model's own encoder", async () => {
    const sd = await tinyStableDiffusion();
    const prompts = ["a cat"];
    const own = T.textToImage(sd, { prompts, seed: 3, steps: 2, height: 16, width: 16 });
    const scheduled = T.textToImage(sd, {
      prompts,
      seed: 3,
      steps: 2,
      height: 16,
      width: 16,
      embeddingsAt: () => T.encodePrompts(sd, sd.textEncoder, prompts),
    });
    expect(Array.from(await scheduled.toArray())).toEqual(Array.from(await own.toArray()));
    own.dispose();
    scheduled.dispose();
    sd.dispose();
  });

  test("the Euler sampler is deterministic, differs from DDIM, and refuses TextCraftor's DDIM spacing", async () => {
    const sd = await tinyStableDiffusion();
    const run = async (scheduler: "ddim" | "euler", spacing: "leading" | "trailing" = "leading") => {
      const images = T.textToImage(sd, {
        prompts: ["a red apple"],
        seed: 5,
        steps: 3,
        height: 16,
        width: 16,
        scheduler,
        spacing,
      });
      const data = Array.from(await images.toArray());
      images.dispose();
      return data;
    };
    const euler = await run("euler");
    expect(await run("euler")).toEqual(euler);
    expect(euler).not.toEqual(await run("ddim"));
    expect(euler).not.toEqual(await run("euler", "trailing"));
    for (const v of euler) expect(v >= 0 && v <= 1).toBe(true);
    expect(() =>
      T.textToImage(sd, {
        prompts: ["x"],
        steps: 3,
        height: 16,
        width: 16,
        scheduler: "euler",
        spacing: "textcraftor",
      }),
    ).toThrow(/textcraftor.*ddim/);
    sd.dispose();
  });
});

describe("evaluation diversity", () => {
  test("pairwise distance is the mean RMS difference over pairs: 0 for identical images", () => {
    const a = Float32Array.of(0, 0, 0, 0),
      b = Float32Array.of(1, 1, 1, 1),
      c = Float32Array.of(0, 0, 0, 2);
    expect(T.pairwiseDistance([a, a, a])).toBe(0);
    expect(T.pairwiseDistance([a, b])).toBeCloseTo(1, 6);
    // pairs: (a, b) = 1, (a, c) = 1, (b, c) = sqrt((1 + 1 + 1 + 1) / 4) = 1
    expect(T.pairwiseDistance([a, b, c])).toBeCloseTo(1, 6);
    expect(T.pairwiseDistance([a])).toBe(0);
  });
});
