/** Single-file LDM checkpoints map onto diffusers names (fixture: scripts/fixtures/single_file.py). */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { readWeights, writeSafetensors } from "../src/index.ts";
import {
  isSingleFileModelTensor,
  ldmUnetToDiffusers,
  ldmVaeToDiffusers,
  renameLegacyVaeAttention,
  splitSingleFile,
} from "../src/internal.ts";

const FIX = join(import.meta.dir, "fixtures");

describe("single-file (LDM) checkpoints", () => {
  test("a Lightning .ckpt unwraps, splits, and renames to exactly the diffusers tensors", async () => {
    const parts = splitSingleFile(await readWeights(join(FIX, "single-file/tiny-ldm.ckpt")));
    const unet = ldmUnetToDiffusers(parts.unet, { layersPerBlock: 1, downHasAttention: [true, false] });
    const reference = await readWeights(join(FIX, "unet/model.bin"));
    expect([...unet.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [k, t] of reference) expect(Array.from(unet.get(k)!.data), k).toEqual(Array.from(t.data));

    const vae = renameLegacyVaeAttention(ldmVaeToDiffusers(parts.vae, 2));
    const vaeRef = await readWeights(join(FIX, "vae/diffusion_pytorch_model.bin"));
    expect([...vae.keys()].sort()).toEqual([...vaeRef.keys()].sort());
    for (const [k, t] of vaeRef) {
      expect(vae.get(k)!.shape, k).toEqual(t.shape);
      // The fixture stores f16: compare at half precision.
      const got = vae.get(k)!.data;
      for (let i = 0; i < t.data.length; i++)
        expect(Math.abs(got[i]! - t.data[i]!)).toBeLessThanOrEqual(Math.abs(t.data[i]!) * 1e-3 + 1e-7);
    }
  });

  test("a file that is not an SD 1.x single file is refused with what was found", async () => {
    const weights = await readWeights(join(FIX, "unet/model.bin"));
    expect(() => splitSingleFile(weights)).toThrow(
      /not a Stable Diffusion 1.x single-file checkpoint: no tensors under model.diffusion_model., first_stage_model., cond_stage_model.transformer. \(found /,
    );
  });

  test("only the three models' tensors are read: the EMA copy and schedule buffers are left in the file", async () => {
    const ckpt = await readWeights(join(FIX, "single-file/tiny-ldm.ckpt"));
    const extra = { data: Float32Array.of(0.9999), shape: [1] };
    const all = new Map<string, { data: Float32Array; shape: readonly number[] }>([
      ...ckpt,
      ["model_ema.decay", extra],
      ["model_ema.diffusion_modelinput_blocks00weight", extra],
      ["alphas_cumprod", extra],
    ]);
    const path = join(mkdtempSync(join(tmpdir(), "tc-single-")), "full.safetensors");
    writeFileSync(path, writeSafetensors(all));
    const read = await readWeights(path, { names: isSingleFileModelTensor });
    expect([...read.keys()].sort()).toEqual([...ckpt.keys()].sort());
    // The torch reader takes the same filter, matched after Lightning's state_dict. wrapper is removed.
    const fromCkpt = await readWeights(join(FIX, "single-file/tiny-ldm.ckpt"), {
      names: (n) => n.startsWith("first_stage_model."),
    });
    expect([...fromCkpt.keys()].every((n) => n.startsWith("first_stage_model."))).toBe(true);
    expect(fromCkpt.size).toBe(splitSingleFile(ckpt).vae.size);
  });
});
