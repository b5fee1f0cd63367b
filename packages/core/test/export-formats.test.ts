/** Exports A1111/ComfyUI load: a single-file SD 1.x checkpoint (LDM names) and kohya-named LoRA files. */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import {
  ldmTextEncoderToDiffusers,
  ldmUnetToDiffusers,
  ldmVaeToDiffusers,
  renameLegacyVaeAttention,
  splitSingleFile,
} from "../src/internal.ts";
import { diffusersUnetToLdm, diffusersVaeToLdm } from "../src/models/convert/to-ldm.ts";
import { tinyStableDiffusion } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const FIX = join(import.meta.dir, "fixtures");
const TINY_LAYOUT = { layersPerBlock: 1, downHasAttention: [true, false] };
const shapes = (m: Map<string, { shape: readonly number[] }>) => new Map([...m].map(([k, t]) => [k, [...t.shape]]));

describe("single-file export (LDM names)", () => {
  test("the LDM fixture's names and shapes come back exactly from its diffusers form", async () => {
    const parts = splitSingleFile(await T.readWeights(join(FIX, "single-file/tiny-ldm.ckpt")));
    expect(shapes(diffusersUnetToLdm(ldmUnetToDiffusers(parts.unet, TINY_LAYOUT), TINY_LAYOUT))).toEqual(
      shapes(parts.unet),
    );
    // The VAE's attention projections come back as the 1×1 convolutions LDM stores.
    expect(shapes(diffusersVaeToLdm(renameLegacyVaeAttention(ldmVaeToDiffusers(parts.vae, 2)), 2))).toEqual(
      shapes(parts.vae),
    );
  });

  test("a tiny model's single file reads back through the single-file loader's conversions to the same weights, f32 and f16", async () => {
    const sd = await tinyStableDiffusion(3);
    const path = join(mkdtempSync(join(tmpdir(), "tc-single-export-")), "model.safetensors");
    const tensors = await T.singleFileStateDict(sd);
    for (const dtype of ["F32", "F16"] as const) {
      writeFileSync(path, T.writeSafetensors(tensors, { dtype }));
      const parts = splitSingleFile(await T.readWeights(path));
      const back = {
        textEncoder: ldmTextEncoderToDiffusers(parts.textEncoder),
        unet: ldmUnetToDiffusers(parts.unet, TINY_LAYOUT),
        vae: renameLegacyVaeAttention(ldmVaeToDiffusers(parts.vae, 2)),
      };
      for (const [name, module] of [
        ["textEncoder", sd.textEncoder],
        ["unet", sd.unet],
        ["vae", sd.vae],
      ] as const) {
        const original = await module.stateDict();
        expect([...back[name].keys()].sort(), name).toEqual([...original.keys()].sort());
        for (const [k, t] of original) {
          const got = back[name].get(k)!;
          expect([...got.shape], k).toEqual([...t.shape]);
          if (dtype === "F32") expect(Array.from(got.data), k).toEqual(Array.from(t.data));
          else
            t.data.forEach((x, i) => expect(Math.abs(got.data[i]! - x)).toBeLessThanOrEqual(Math.abs(x) * 1e-3 + 1e-7));
        }
      }
    }
    sd.dispose();
  });
});

describe("LoRA export (kohya names)", () => {
  test("text-encoder adapters are lora_te_<path>.lora_down/.lora_up/.alpha with A, B and alpha", async () => {
    const sd = await tinyStableDiffusion(1);
    T.applyLoRA(sd.textEncoder, { rank: 2, alpha: 4 });
    const tensors = await T.kohyaLoRATensors(sd.textEncoder, "lora_te");
    const q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    expect([...tensors.keys()].filter((k) => k.startsWith(`${q}.`)).sort()).toEqual([
      `${q}.alpha`,
      `${q}.lora_down.weight`,
      `${q}.lora_up.weight`,
    ]);
    for (const k of tensors.keys())
      expect(k).toMatch(
        /^lora_te_text_model_encoder_layers_\d+_(self_attn_(q|k|v|out)_proj)\.(lora_down\.weight|lora_up\.weight|alpha)$/,
      );
    expect(tensors.size).toBe(2 * 4 * 3);
    const layer = [...sd.textEncoder.namedModules()].find(
      ([p]) => p === "text_model.encoder.layers.0.self_attn.q_proj",
    )![1] as T.Linear;
    expect(tensors.get(`${q}.lora_down.weight`)!.shape).toEqual([2, layer.inFeatures]);
    expect(tensors.get(`${q}.lora_up.weight`)!.shape).toEqual([layer.outFeatures, 2]);
    expect(Array.from(tensors.get(`${q}.lora_down.weight`)!.data)).toEqual(
      Array.from(await layer.adapter!.down.weight.toArray()),
    );
    expect(tensors.get(`${q}.alpha`)).toEqual({ data: Float32Array.of(4), shape: [] });
    T.applyLoRA(sd.unet, { rank: 1 });
    expect([...(await T.kohyaLoRATensors(sd.unet, "lora_unet")).keys()]).toContain(
      "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight",
    );
    await expect(T.kohyaLoRATensors(sd.vae, "lora_unet")).rejects.toThrow("has no adapters");
    sd.dispose();
  });
});
