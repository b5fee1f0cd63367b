/** Configs of open_clip state_dicts from their shapes (HPSv2's ViT-H-14, ViT-g-14, OpenAI ViT-L/14). */
import { describe, expect, test } from "bun:test";
import { OPEN_CLIP_VIT_H_14, type TensorData } from "@textcraftor/core";
import { openClipConfigs } from "../src/index.ts";

interface Tower {
  width: number;
  layers: number;
  mlp: number;
}

/** The shapes of an open_clip CLIP state_dict (no values: only shapes are read). */
function shapes(
  vision: Tower & { patch: number; image: number },
  text: Tower | null,
  embed: number,
): Map<string, TensorData> {
  const t = (...shape: number[]): TensorData => ({ data: new Float32Array(0), shape });
  const blocks = (prefix: string, { width, layers, mlp }: Tower) =>
    Array.from(
      { length: layers },
      (_, i) =>
        [
          [`${prefix}${i}.attn.in_proj_weight`, t(3 * width, width)],
          [`${prefix}${i}.mlp.c_fc.weight`, t(mlp, width)],
          [`${prefix}${i}.mlp.c_proj.weight`, t(width, mlp)],
        ] as const,
    ).flat();
  return new Map<string, TensorData>([
    ["visual.conv1.weight", t(vision.width, 3, vision.patch, vision.patch)],
    ["visual.positional_embedding", t((vision.image / vision.patch) ** 2 + 1, vision.width)],
    ["visual.proj", t(vision.width, embed)],
    ...blocks("visual.transformer.resblocks.", vision),
    ...(text
      ? ([
          ["token_embedding.weight", t(49408, text.width)],
          ["positional_embedding", t(77, text.width)],
          ["text_projection", t(text.width, embed)],
          ...blocks("transformer.resblocks.", text),
        ] as const)
      : []),
  ]);
}

const VIT_H_14 = shapes(
  { width: 1280, layers: 32, mlp: 5120, patch: 14, image: 224 },
  { width: 1024, layers: 24, mlp: 4096 },
  1024,
);

describe("openClipConfigs", () => {
  test("HPSv2's ViT-H-14 is recognised from its shapes alone", () => {
    expect(openClipConfigs(VIT_H_14, undefined, "gelu")).toEqual({
      vision: { ...OPEN_CLIP_VIT_H_14.vision },
      text: { ...OPEN_CLIP_VIT_H_14.text },
    });
  });

  test("ViT-g-14 (TextCraftor's CLIP) has 16 heads of 88 and a 6144-wide MLP", () => {
    const { vision, text } = openClipConfigs(
      shapes(
        { width: 1408, layers: 40, mlp: 6144, patch: 14, image: 224 },
        { width: 1024, layers: 24, mlp: 4096 },
        1024,
      ),
      undefined,
      "gelu",
    );
    expect(vision).toMatchObject({
      hiddenSize: 1408,
      numAttentionHeads: 16,
      intermediateSize: 6144,
      numHiddenLayers: 40,
      projectionDim: 1024,
    });
    expect(text).toMatchObject({ hiddenSize: 1024, numAttentionHeads: 16, numHiddenLayers: 24 });
  });

  test("OpenAI's ViT-L/14 vision tower: heads of 64, the caller's quick_gelu, no text tower", () => {
    const { vision, text } = openClipConfigs(
      shapes({ width: 1024, layers: 24, mlp: 4096, patch: 14, image: 224 }, null, 768),
      undefined,
      "quick_gelu",
    );
    expect(vision).toMatchObject({
      hiddenSize: 1024,
      numAttentionHeads: 16,
      hiddenAct: "quick_gelu",
      projectionDim: 768,
      imageSize: 224,
    });
    expect(text).toBeUndefined();
  });

  test("open_clip_config.json gives the heads and the activation", () => {
    const json = { model_cfg: { quick_gelu: true, vision_cfg: { head_width: 160 }, text_cfg: { heads: 8 } } };
    const { vision, text } = openClipConfigs(VIT_H_14, json, "gelu");
    expect([vision.numAttentionHeads, text!.numAttentionHeads, vision.hiddenAct, text!.hiddenAct]).toEqual([
      8,
      8,
      "quick_gelu",
      "quick_gelu",
    ]);
  });

  test("a tower whose heads cannot be told, or a missing tensor, says what to do", () => {
    const odd = shapes({ width: 48, layers: 1, mlp: 96, patch: 8, image: 32 }, null, 8);
    expect(() => openClipConfigs(odd, undefined, "gelu")).toThrow(
      "cannot tell the attention heads of the 48-wide vision tower; put the model's open_clip_config.json",
    );
    const noProjection = new Map(VIT_H_14);
    noProjection.delete("visual.proj");
    expect(() => openClipConfigs(noProjection, undefined, "gelu")).toThrow(
      'open_clip checkpoint: missing "visual.proj"',
    );
  });
});
