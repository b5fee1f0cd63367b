/** Reads a weights file by its format: safetensors, or a PyTorch zip checkpoint (.bin/.pt/.pth/.ckpt). */
import { readFile } from "node:fs/promises";
import { readSafetensors } from "../io/safetensors.ts";
import { readTorchCheckpoint, stripPrefix } from "../io/torch-zip.ts";
import type { LoadedTensor } from "../io/dtypes.ts";

export async function readWeights(path: string): Promise<Map<string, LoadedTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`cannot read weights file ${path}: ${(e as Error).message}`);
  }
  if (path.endsWith(".safetensors")) return readSafetensors(bytes, { skipUnsupported: true }).tensors;
  if (/\.(bin|pt|pth|ckpt)$/.test(path)) {
    const { tensors } = readTorchCheckpoint(bytes);
    // Lightning/LDM .ckpt files wrap the weights in "state_dict"; DDP saves prefix every name with "module.".
    for (const prefix of ["state_dict.", "module."]) if ([...tensors.keys()].every((k) => k.startsWith(prefix))) return stripPrefix(tensors, prefix);
    return tensors;
  }
  throw new Error(`${path}: unknown weights format (expected .safetensors, .bin, .pt, .pth or .ckpt)`);
}
