/** Reads a weights file by its format: safetensors, or a PyTorch zip checkpoint (.bin/.pt/.pth/.ckpt). */
import { readSafetensors, SafetensorsError } from "../io/safetensors.ts";
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
    return unwrapTorch(tensors);
  }
  throw new Error(`${path}: unknown weights format (expected .safetensors, .bin, .pt, .pth or .ckpt)`);
}

/** Lightning/LDM .ckpt files wrap the weights in "state_dict"; DDP saves prefix every name with "module.". */
function unwrapTorch(tensors: Map<string, LoadedTensor>): Map<string, LoadedTensor> {
  for (const prefix of ["state_dict.", "module."])
    if ([...tensors.keys()].every((k) => k.startsWith(prefix))) return stripPrefix(tensors, prefix);
  return tensors;
}

/**
 * A weights file already in memory (fetched, or picked in a browser's file input), by its content: a zip is a
 * PyTorch checkpoint, anything else is read as safetensors. `label` names it in errors.
 */
export async function parseWeights(bytes: Uint8Array, label = "weights"): Promise<Map<string, LoadedTensor>> {
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) {
    try {
      return unwrapTorch((await readTorchCheckpoint(bytes)).tensors);
    } catch (e) {
      throw new TorchCheckpointError(`${label}: ${(e as Error).message}`, { cause: e });
    }
  }
  try {
    return readSafetensors(bytes, { skipUnsupported: true }).tensors;
  } catch (e) {
    throw new SafetensorsError(
      `${label}: ${(e as Error).message} (expected a .safetensors file or a PyTorch zip checkpoint)`,
      { cause: e },
    );
  }
}
