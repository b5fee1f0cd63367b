/** Finding a component's weights as the hub lays them out: plain, sharded, or only a variant such as fp16. */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { componentWeightFile, readComponentWeights } from "../src/internal.ts";
import { tinyStableDiffusion } from "./tiny-sd.ts";

const root = mkdtempSync(join(tmpdir(), "tc-components-"));
const tensor = (...values: number[]) => ({ data: Float32Array.from(values), shape: [values.length] });

/** A folder holding the given files, each a one-tensor safetensors file (or the text given). */
function folder(name: string, files: Record<string, string | number>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(
      join(dir, file),
      typeof content === "string" ? content : T.writeSafetensors(new Map([[`w${content}`, tensor(content)]])),
    );
  }
  return dir;
}

describe("componentWeightFile", () => {
  const stem = "diffusion_pytorch_model";

  test("the plain file wins over variants; fp16 wins among variants; a lone variant is used", () => {
    const all = folder("all", {
      [`${stem}.safetensors`]: 1,
      [`${stem}.fp16.safetensors`]: 2,
      [`${stem}.non_ema.safetensors`]: 3,
    });
    expect(componentWeightFile(all, [stem])).toEqual(join(all, `${stem}.safetensors`));
    const variants = folder("variants", { [`${stem}.fp16.safetensors`]: 2, [`${stem}.non_ema.safetensors`]: 3 });
    expect(componentWeightFile(variants, [stem])).toEqual(join(variants, `${stem}.fp16.safetensors`));
    const lone = folder("lone", { [`${stem}.non_ema.bin`]: 3 });
    expect(componentWeightFile(lone, [stem])).toEqual(join(lone, `${stem}.non_ema.bin`));
  });

  test("an ambiguous set of variants and an empty folder are refused with what to do", () => {
    const two = folder("two", { [`${stem}.ema.safetensors`]: 1, [`${stem}.non_ema.safetensors`]: 2 });
    expect(() => componentWeightFile(two, [stem])).toThrow(
      `several weight variants (${stem}.ema.safetensors, ${stem}.non_ema.safetensors)`,
    );
    const none = folder("none", { "config.json": "{}" });
    expect(() => componentWeightFile(none, [stem])).toThrow(`no weights in ${none}: expected ${stem}.safetensors`);
  });

  test("a sharded checkpoint reads every shard its index names, and a missing shard is named", async () => {
    const index = JSON.stringify({
      weight_map: { w1: "model-00001-of-00002.safetensors", w2: "model-00002-of-00002.safetensors" },
    });
    const sharded = folder("sharded", {
      "model.safetensors.index.json": index,
      "model-00001-of-00002.safetensors": 1,
      "model-00002-of-00002.safetensors": 2,
    });
    const file = componentWeightFile(sharded, ["model", "pytorch_model"]);
    expect(file).toBe(join(sharded, "model.safetensors.index.json"));
    const weights = await T.readWeightFiles([file]);
    expect([...weights.keys()].sort()).toEqual(["w1", "w2"]);
    expect(Array.from(weights.get("w2")!.data)).toEqual([2]);
    const broken = folder("broken", { "model.safetensors.index.json": index, "model-00001-of-00002.safetensors": 1 });
    await expect(readComponentWeights(broken, ["model"])).rejects.toThrow(
      "names shards that are not there: model-00002-of-00002.safetensors",
    );
  });
});

describe('a diffusers folder downloaded with variant="fp16"', () => {
  beforeAll(async () => {
    await T.initRuntime();
  });

  test("loads, and samples as the folder with plain files does", async () => {
    const plain = join(root, "plain-model"),
      copy = join(root, "fp16-model");
    const sd = await tinyStableDiffusion();
    for (const dir of [plain, copy]) await T.saveDiffusersFolder(sd, dir, { dtype: "F16" });
    sd.dispose();
    for (const [part, stem] of [
      ["unet", "diffusion_pytorch_model"],
      ["vae", "diffusion_pytorch_model"],
      ["text_encoder", "model"],
    ]) {
      renameSync(join(copy, part, `${stem}.safetensors`), join(copy, part, `${stem}.fp16.safetensors`));
    }
    const sample = async (path: string) => {
      const sd = await T.loadStableDiffusion(path);
      const images = T.textToImage(sd, { prompts: ["red apple"], steps: 2, height: 16, width: 16 });
      const data = Array.from(await images.toArray());
      images.dispose();
      sd.dispose();
      return data;
    };
    expect(await sample(copy)).toEqual(await sample(plain));
  });
});
