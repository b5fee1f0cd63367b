/** The recipe's data handling and schedules, on a synthetic emoji package (the real one is not a test dependency). */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "fast-png";
import { PromptSampler } from "@textcraftor/core";
import { indices, learningRate } from "../recipe/common.ts";
import { loadEmoji } from "../recipe/emoji.ts";
import { splitPrompts } from "../recipe/prompts.ts";

describe("emoji loading", () => {
  const root = mkdtempSync(join(tmpdir(), "emoji-"));
  mkdirSync(join(root, "img/google/64"), { recursive: true });
  const size = 4;
  // A red RGBA image half transparent, a grey+alpha one, an RGB one, and a skin-tone swatch that is skipped.
  const rgba = new Uint8Array(size * size * 4).map((_, i) => [255, 0, 0, 128][i % 4]!);
  const greyAlpha = new Uint8Array(size * size * 2).map((_, i) => (i % 2 ? 255 : 51));
  const rgb = new Uint8Array(size * size * 3).map((_, i) => [0, 0, 255][i % 3]!);
  writeFileSync(
    join(root, "img/google/64/a.png"),
    encode({ width: size, height: size, data: rgba, channels: 4, depth: 8 }),
  );
  writeFileSync(
    join(root, "img/google/64/b.png"),
    encode({ width: size, height: size, data: greyAlpha, channels: 2, depth: 8 }),
  );
  writeFileSync(
    join(root, "img/google/64/c.png"),
    encode({ width: size, height: size, data: rgb, channels: 3, depth: 8 }),
  );
  const entry = (name: string, image: string, sort_order: number, category = "Objects") => ({
    name,
    image,
    sort_order,
    category,
    has_img_google: true,
  });
  writeFileSync(
    join(root, "emoji.json"),
    JSON.stringify([
      entry("BLUE SQUARE", "c.png", 3),
      entry("RED THING", "a.png", 1),
      entry("GREY THING", "b.png", 2),
      entry("SKIN TONE", "a.png", 0, "Component"),
    ]),
  );

  test("captions are the lowercase names in sort order; pixels are composited on white and box-filtered", () => {
    const d = loadEmoji(root, 2);
    expect(d.captions).toEqual(["red thing", "grey thing", "blue square"]);
    const pixel = (i: number, c: number) => d.images[i * 12 + c * 4]!;
    const a = 128 / 255;
    expect(pixel(0, 0)).toBeCloseTo(1, 5);
    expect(pixel(0, 1)).toBeCloseTo(1 - a, 5);
    expect(pixel(1, 2)).toBeCloseTo(0.2, 5);
    expect([pixel(2, 0), pixel(2, 1), pixel(2, 2)]).toEqual([0, 0, 1]);
  });

  test("an image that is not a square multiple of the size is refused with its size", () => {
    expect(() => loadEmoji(root, 3)).toThrow("4×4");
  });
});

describe("schedules and splits", () => {
  test("example indices are batched by PromptSampler: every item once per epoch, in a seeded order", () => {
    const b = new PromptSampler(indices(10), 5, 1);
    const epoch = [...b.batch(0), ...b.batch(1)].sort((x, y) => x - y);
    expect(epoch).toEqual([...Array(10).keys()]);
    expect(new PromptSampler(indices(10), 5, 1).batch(0)).toEqual(b.batch(0));
  });

  test("learning rate warms up linearly, then decays by a cosine to 10 % of the peak", () => {
    expect(learningRate(0, 1000, 1)).toBeCloseTo(0.01);
    expect(learningRate(99, 1000, 1)).toBeCloseTo(1);
    expect(learningRate(100, 1000, 1)).toBeCloseTo(1);
    expect(learningRate(999, 1000, 1)).toBeCloseTo(0.1, 3);
    for (let s = 101; s < 1000; s += 50) expect(learningRate(s, 1000, 1)).toBeLessThan(learningRate(s - 1, 1000, 1));
  });

  test("held-out prompts are every 8th caption (in a seeded order) and disjoint from the held-in ones", () => {
    const captions = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const { train, heldOut } = splitPrompts(captions);
    expect([...heldOut].sort()).toEqual(["c11", "c19", "c3"]);
    expect(splitPrompts(captions).heldOut).toEqual(heldOut);
    expect(train.length + heldOut.length).toBe(20);
    expect(train.filter((p) => heldOut.includes(p))).toEqual([]);
  });
});
