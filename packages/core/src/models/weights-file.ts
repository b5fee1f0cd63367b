/** Reads a weights file by its format: safetensors, or a PyTorch zip checkpoint (.bin/.pt/.pth/.ckpt). */
import { SafetensorsError } from "../io/safetensors.ts";
import { readSafetensorsFile } from "../io/safetensors-file.ts";
import { readTorchCheckpoint, stripPrefix, TorchCheckpointError } from "../io/torch-zip.ts";
import type { LoadedTensor } from "../io/dtypes.ts";

export async function readWeights(
  path: string,
  { names }: { names?: (name: string) => boolean } = {},
): Promise<Map<string, LoadedTensor>> {
  const cannot = (e: unknown): never => {
    throw new Error(`cannot read weights file ${path}: ${(e as Error).message}`);
  };
  if (path.endsWith(".safetensors")) {
    try {
      return (await readSafetensorsFile(path, { skipUnsupported: true, names })).tensors;
    } catch (e) {
      // The reader names the file in its own errors (format and file system alike).
      if (e instanceof SafetensorsError) throw e;
      return cannot(e);
    }
  }
  if (/\.(bin|pt|pth|ckpt)$/.test(path)) {
    let tensors: Map<string, LoadedTensor>;
    try {
      // Names are matched as the caller sees them, after the wrappers below are taken off.
      ({ tensors } = await readTorchCheckpoint(path, {
        names: names && ((k) => names(k.replace(/^(state_dict|module)\./, ""))),
      }));
    } catch (e) {
      if (e instanceof TorchCheckpointError) throw e; // it names the file already
      return cannot(e);
    }
    // Lightning/LDM .ckpt files wrap the weights in "state_dict"; DDP saves prefix every name with "module.".
    for (const prefix of ["state_dict.", "module."])
      if ([...tensors.keys()].every((k) => k.startsWith(prefix))) return stripPrefix(tensors, prefix);
    return tensors;
  }
  throw new Error(`${path}: unknown weights format (expected .safetensors, .bin, .pt, .pth or .ckpt)`);
}
