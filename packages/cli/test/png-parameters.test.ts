/** Generated PNGs carry A1111's `parameters` text (tEXt, or UTF-8 iTXt beyond Latin-1) and never overwrite earlier files. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "fast-png";
import { encodePng } from "@textcraftor/core";
import { a1111Parameters, freshPath } from "../src/png-parameters.ts";
import { cli } from "./cli.ts";

const settings = {
  prompt: "a red apple",
  negativePrompt: "",
  steps: 6,
  sampler: "ddim" as const,
  guidance: 5,
  seed: 3,
  width: 32,
  height: 32,
  model: "/x/packages/tiny-model/sd",
};
const image = { data: new Float32Array(3 * 4 * 4).fill(0.5), channels: 3, height: 4, width: 4 };

/** Each chunk's type and data, checking its CRC with Bun's own CRC-32. */
function chunks(png: Uint8Array) {
  const out: { type: string; data: Uint8Array }[] = [];
  const view = new DataView(png.buffer, png.byteOffset);
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at),
      typed = png.subarray(at + 4, at + 8 + length);
    expect(view.getUint32(at + 8 + length)).toBe(Bun.hash.crc32(typed));
    out.push({ type: new TextDecoder().decode(typed.subarray(0, 4)), data: typed.subarray(4) });
    at += 12 + length;
  }
  return out;
}

describe("A1111 parameters", () => {
  test("prompt, negative prompt, then the settings line as A1111 writes it", () => {
    expect(a1111Parameters(settings)).toBe(
      "a red apple\nSteps: 6, Sampler: DDIM, CFG scale: 5, Seed: 3, Size: 32x32, Model: sd",
    );
    expect(
      a1111Parameters({
        ...settings,
        negativePrompt: "blurry",
        sampler: "dpmpp-2m-karras",
        model: "v1-5-pruned.safetensors",
        extra: { "Tuned weight": 0.5, "Tuned encoder": "runs/a, b/text_encoder" },
      }),
    ).toBe(
      'a red apple\nNegative prompt: blurry\nSteps: 6, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 3, Size: 32x32, Model: v1-5-pruned, Tuned weight: 0.5, Tuned encoder: "runs/a, b/text_encoder"',
    );
  });

  test("a Latin-1 prompt goes into tEXt, any other into iTXt as UTF-8, before IEND", () => {
    const latin = encodePng(image, { parameters: a1111Parameters({ ...settings, prompt: "crème brûlée" }) });
    expect(decode(latin).text.parameters).toStartWith("crème brûlée\nSteps: 6");
    const text = a1111Parameters({ ...settings, prompt: "赤いりんご 🍎" });
    const found = chunks(encodePng(image, { parameters: text }));
    expect(found.at(-1)!.type).toBe("IEND");
    const itxt = found.find((c) => c.type === "iTXt")!;
    expect(Array.from(itxt.data.subarray(0, 15))).toEqual([...new TextEncoder().encode("parameters"), 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(itxt.data.subarray(15))).toBe(text);
    expect(decode(encodePng(image, { parameters: text })).width).toBe(4);
  });

  test("fresh names never overwrite", () => {
    const dir = mkdtempSync(join(tmpdir(), "tc-fresh-"));
    expect(freshPath(dir, "000-seed0.png")).toBe(join(dir, "000-seed0.png"));
    writeFileSync(join(dir, "000-seed0.png"), "");
    expect(freshPath(dir, "000-seed0.png")).toBe(join(dir, "000-seed0-2.png"));
    writeFileSync(join(dir, "000-seed0-2.png"), "");
    expect(freshPath(dir, "000-seed0.png")).toBe(join(dir, "000-seed0-3.png"));
  });
});

describe("cli generate", () => {
  test("on the bundled model: its own steps and guidance, the settings in each PNG, a second run beside the first", () => {
    const out = mkdtempSync(join(tmpdir(), "tc-gen-params-"));
    const encoder = join(import.meta.dir, "../../tiny-model/sd/text_encoder");
    const args = [
      "generate",
      "--prompt",
      "a red apple",
      "--text-encoder",
      encoder,
      "--tuned-weight",
      "0.5",
      "--seed",
      "7",
      "--out",
      out,
    ];
    for (const _ of [1, 2]) {
      const r = cli(...args);
      expect(r.code, r.err + r.out).toBe(0);
    }
    const first = decode(readFileSync(join(out, "000-seed7.png"))).text.parameters!;
    expect(first).toStartWith(
      "a red apple\nSteps: 6, Sampler: DDIM, CFG scale: 5, Seed: 7, Size: 32x32, Model: sd, Tuned encoder: ",
    );
    expect(first).toEndWith(", Tuned weight: 0.5, Tuned steps: 4");
    expect(decode(readFileSync(join(out, "000-seed7-2.png"))).text.parameters).toBe(first);
  });
});
