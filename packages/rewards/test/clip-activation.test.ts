/**
 * open_clip/OpenAI-layout CLIP weights do not store their MLP activation: it is decided from the checkpoint's
 * config, OpenAI's checkpoint format or the name, and the loaded reward says which and why.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initRuntime, readWeightFiles, writeSafetensors } from "@textcraftor/core";
import { clip, hpsv2, readClipCheckpoint } from "../src/index.ts";
import { chooseActivation } from "../src/clip-activation.ts";
import { FIXTURES, context } from "./helpers.ts";

const HPSV2 = join(FIXTURES, "hpsv2");
const root = mkdtempSync(join(tmpdir(), "clip-act-"));
const fallback = { activation: "gelu" as const, reason: "the plugin's usual weights" };

/** The tiny open_clip fixture under another name, its open_clip_config.json (heads, no quick_gelu) beside it. */
function copyAs(folder: string, file: string, config: object = {}): string {
  const dir = join(root, folder);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(HPSV2, "HPS_v2_compressed.pt"), join(dir, file));
  const json = JSON.parse(readFileSync(join(HPSV2, "open_clip_config.json"), "utf8"));
  writeFileSync(
    join(dir, "open_clip_config.json"),
    JSON.stringify({ ...json, model_cfg: { ...json.model_cfg, ...config } }),
  );
  return join(dir, file);
}

beforeAll(async () => {
  await initRuntime();
});
const disposers: (() => void)[] = [];
afterAll(() => disposers.forEach((d) => d()));

describe("the activation of open_clip-layout CLIP weights", () => {
  test("the config wins, then act=, then OpenAI's format, then the name, then the plugin's default", () => {
    const base = { openAiFormat: false, path: "/models/ViT-L-14/open_clip_pytorch_model.bin", fallback };
    expect(chooseActivation({ ...base, configQuickGelu: true, option: "gelu" })).toEqual({
      activation: "quick_gelu",
      reason: "open_clip_config.json has quick_gelu: true",
    });
    expect(chooseActivation({ ...base, option: "quick_gelu", openAiFormat: true })).toEqual({
      activation: "quick_gelu",
      reason: "the act=quick_gelu option",
    });
    expect(chooseActivation({ ...base, option: "gelu", openAiFormat: true }).activation).toBe("gelu");
    expect(chooseActivation({ ...base, openAiFormat: true }).reason).toStartWith("OpenAI's checkpoint format");
    expect(chooseActivation({ ...base, path: "/cache/ViT-L-14-quickgelu/dfn2b.bin" }).activation).toBe("quick_gelu");
    expect(
      chooseActivation({ ...base, path: "/hub/timm/vit_large_patch14_clip_224.openai/open_clip_model.safetensors" })
        .activation,
    ).toBe("quick_gelu");
    expect(chooseActivation(base)).toBe(fallback);
    expect(chooseActivation({ ...base, path: "/home/openai-fan/laion/ViT-g-14.bin" })).toBe(fallback);
  });

  test("OpenAI's ViT-L/14 as OpenAI saves it (input_resolution, context_length, vocab_size) reads with quick_gelu", async () => {
    const tensors = await readWeightFiles([join(HPSV2, "HPS_v2_compressed.pt")]);
    const flat = new Map([...tensors].map(([k, v]) => [k.replace(/^state_dict\./, ""), v]));
    for (const extra of ["input_resolution", "context_length", "vocab_size"])
      flat.set(extra, { data: new Float32Array([224]), shape: [], dtype: "F32" });
    const dir = join(root, "vit-l-14");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "model.safetensors"), writeSafetensors(flat));
    copyFileSync(join(HPSV2, "open_clip_config.json"), join(dir, "open_clip_config.json"));
    const checkpoint = await readClipCheckpoint(join(dir, "model.safetensors"), { fallback });
    expect(checkpoint.activation.activation).toBe("quick_gelu");
    expect([checkpoint.vision.hiddenAct, checkpoint.text!.hiddenAct]).toEqual(["quick_gelu", "quick_gelu"]);
  });

  test("the loaded reward says which activation it uses and why", async () => {
    const laion = await hpsv2.load(context(copyAs("laion", "HPS_v2_compressed.pt")));
    disposers.push(() => laion.dispose?.());
    expect(laion.info).toBe(
      `${join(root, "laion", "HPS_v2_compressed.pt")}: MLP activation gelu (HPSv2 is LAION's open_clip ViT-H-14, trained with GELU)`,
    );
    const named = await clip.load(context(copyAs("openai", "ViT-L-14.pt")));
    disposers.push(() => named.dispose?.());
    expect(named.info).toContain("MLP activation quick_gelu (the name");
    const configured = await clip.load(context(copyAs("configured", "ViT-L-14.pt", { quick_gelu: true })));
    disposers.push(() => configured.dispose?.());
    expect(configured.info).toContain("MLP activation quick_gelu (open_clip_config.json has quick_gelu: true)");
  });
});
