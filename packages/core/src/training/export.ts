/**
 * The tuned text encoder as a diffusers `text_encoder/` folder (config.json + model.safetensors) that drops
 * into diffusers or ComfyUI-style tools; optionally a whole diffusers model folder with it swapped in.
 */
import { cp, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import type { CLIPTextModel } from "../models/clip/text.ts";

export async function exportTextEncoder(
  encoder: CLIPTextModel,
  hfConfig: object,
  folder: string,
  { dtype = "F32" as "F32" | "F16", baseModel }: { dtype?: "F32" | "F16"; baseModel?: string } = {},
): Promise<string> {
  if (baseModel) {
    // A full diffusers folder: copy the base model, then replace its text encoder.
    await cp(baseModel, folder, { recursive: true });
    folder = join(folder, "text_encoder");
  }
  await mkdir(folder, { recursive: true });
  await writeFileAtomic(
    join(folder, "config.json"),
    new TextEncoder().encode(JSON.stringify({ architectures: ["CLIPTextModel"], ...hfConfig }, null, 2)),
  );
  await writeFileAtomic(
    join(folder, "model.safetensors"),
    writeSafetensors(await encoder.stateDict(), { dtype, metadata: { format: "pt" } }),
  );
  return folder;
}
