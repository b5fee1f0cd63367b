/** The embedding example: w = 0 is the base model's own image, w = 1 moves it, and the script writes a strip. */
import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { decode } from "fast-png";
import {
  cloneTextEncoder,
  exportTextEncoder,
  initRuntime,
  loadStableDiffusion,
  splitBatch,
  textToImage,
  type StableDiffusion,
} from "@textcraftor/core";
import { TINY_MODEL } from "@textcraftor/tiny-model";
import { interpolationStrip } from "./interpolate.ts";

let sd: StableDiffusion;
beforeAll(async () => {
  await initRuntime();
  sd = await loadStableDiffusion(TINY_MODEL);
});

/** A stand-in for a tuned encoder: the bundled one with its final layer norm's gain doubled. */
async function shiftedEncoder() {
  const tuned = await cloneTextEncoder(sd.textEncoder);
  const weights = await tuned.stateDict();
  const gain = weights.get("text_model.final_layer_norm.weight")!.data;
  gain.forEach((g, i) => {
    gain[i] = 2 * g;
  });
  tuned.loadStateDict(weights);
  return tuned;
}

test("w = 0 reproduces the base model's image; w = 1 changes it", async () => {
  const tuned = await shiftedEncoder();
  const o = { seed: 3, steps: 3, guidanceScale: 5, size: 32 };
  const [w0, w1] = await interpolationStrip(sd, tuned, "red apple", { ...o, weights: [0, 1] });
  const base = textToImage(sd, {
    prompts: ["red apple"],
    seed: o.seed,
    steps: o.steps,
    guidanceScale: o.guidanceScale,
    height: 32,
    width: 32,
  });
  const [plain] = splitBatch(await base.toArray(), base.shape);
  base.dispose();
  expect(Array.from(w0!.data)).toEqual(Array.from(plain!.data));
  expect(Array.from(w1!.data)).not.toEqual(Array.from(plain!.data));
  tuned.dispose();
});

test("the script writes a five-image strip from a tuned text_encoder/ folder", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tc-embed-"));
  const tuned = await shiftedEncoder();
  const folder = await exportTextEncoder(tuned, sd.source.configs.textEncoder, join(dir, "text_encoder"));
  tuned.dispose();
  const out = join(dir, "strip.png");
  const p = Bun.spawnSync(["bun", resolve(import.meta.dir, "interpolate.ts"), "red apple", folder, out], {
    env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" },
  });
  expect(p.exitCode, p.stderr.toString()).toBe(0);
  expect(p.stdout.toString()).toContain("w = 0, 0.25, 0.5, 0.75, 1");
  const png = decode(await Bun.file(out).bytes());
  expect([png.width, png.height]).toEqual([5 * 32 + 4 * 2, 32]);
});
