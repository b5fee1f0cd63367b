/**
 * safetensors read from disk tensor by tensor: the header first, then each wanted tensor's byte range.
 * A whole-file read cannot hold files over 4 GiB in one buffer (SD 1.5's `v1-5-pruned.safetensors` is 7.7 GB),
 * and reading by range also skips what is not wanted (its EMA copy) and never holds the file and the float32
 * copies at once. Validation is the in-memory reader's (readSafetensorsHeader), on the header bytes.
 */
import { open } from "node:fs/promises";
import { readRange } from "./file-range.ts";
import { toFloat32, type LoadedTensor } from "./dtypes.ts";
import { MAX_HEADER_BYTES, readSafetensorsHeader, selectEntries, type ReadSafetensorsOptions, type SafetensorsFile } from "./safetensors.ts";

export async function readSafetensorsFile(path: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const file = await open(path, "r");
  try {
    const size = (await file.stat()).size;
    const prefix = await readRange(file, 0, Math.min(8, size));
    // Read as much of the header as its length claims, capped so that a damaged length allocates nothing
    // large: readSafetensorsHeader then reports the exact problem.
    const claimed = prefix.length === 8 ? new DataView(prefix.buffer).getBigUint64(0, true) : 0n;
    const headerBytes = Number(claimed > BigInt(MAX_HEADER_BYTES) ? 0n : claimed);
    const head = await readRange(file, 0, Math.min(size, 8 + headerBytes));
    const { tensors: entries, metadata, dataStart } = readSafetensorsHeader(head, size);
    const { decode, skipped } = selectEntries(entries, options);
    const tensors = new Map<string, LoadedTensor>();
    for (const [name, { dtype, shape, dataOffsets: [begin, end] }] of decode) {
      // float32 lands in its final buffer directly; other dtypes are converted from their bytes.
      const data = dtype === "F32"
        ? new Float32Array((await readRange(file, dataStart + begin, end - begin, new ArrayBuffer(end - begin))).buffer)
        : toFloat32(await readRange(file, dataStart + begin, end - begin), dtype);
      tensors.set(name, { data, shape, dtype });
    }
    return { tensors, metadata, skipped };
  } finally {
    await file.close();
  }
}
