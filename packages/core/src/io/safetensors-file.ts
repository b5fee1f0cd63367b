/**
 * safetensors read from disk tensor by tensor: the header first, then each wanted tensor's byte range.
 * A whole-file read cannot hold files over 4 GiB in one buffer (SD 1.5's `v1-5-pruned.safetensors` is 7.7 GB),
 * and reading by range also skips what is not wanted (its EMA copy) and never holds the file and the float32
 * copies at once. Small tensors that lie close together are read in one go: a file of 200k tiny tensors would
 * otherwise cost 200k reads. Validation is the in-memory reader's (readSafetensorsHeader), on the header bytes.
 */
import { open } from "node:fs/promises";
import { readRange } from "./file-range.ts";
import { toFloat32, type LoadedTensor } from "./dtypes.ts";
import {
  MAX_HEADER_BYTES,
  readSafetensorsHeader,
  SafetensorsError,
  selectEntries,
  type ReadSafetensorsOptions,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "./safetensors.ts";

/** One read of the data region, covering the entries (indices into the caller's list) that lie in it. */
export interface ReadGroup {
  begin: number;
  end: number;
  members: number[];
}

/** Tensors up to this size share reads; bigger ones get a read of their own, straight into their buffer. */
const GROUP_BYTES = 4 * 1024 * 1024;
/** Unwanted bytes a shared read may skip over rather than start a new read. */
const MAX_GAP = 64 * 1024;

/** Groups the entries into reads in data order: each read spans at most GROUP_BYTES, or is one big tensor. */
export function readGroups(entries: readonly SafetensorsEntry[]): ReadGroup[] {
  const order = entries.map((_, i) => i).sort((a, b) => entries[a]!.dataOffsets[0] - entries[b]!.dataOffsets[0]);
  const groups: ReadGroup[] = [];
  let group: ReadGroup | undefined;
  for (const i of order) {
    const [begin, end] = entries[i]!.dataOffsets;
    if (group && begin - group.end <= MAX_GAP && end - group.begin <= GROUP_BYTES) {
      group.end = end;
      group.members.push(i);
    } else {
      groups.push((group = { begin, end, members: [i] }));
    }
  }
  return groups;
}

export async function readSafetensorsFile(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  try {
    return await readByRanges(path, options);
  } catch (e) {
    // One error type for every problem, naming the file: format errors, and the file system's (missing, a folder).
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`, { cause: e });
    if ((e as NodeJS.ErrnoException).code)
      throw new SafetensorsError(`${path}: cannot read the file (${(e as Error).message})`, { cause: e });
    throw e;
  }
}

async function readByRanges(path: string, options: ReadSafetensorsOptions): Promise<SafetensorsFile> {
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
    const data: Float32Array[] = new Array(decode.length);
    for (const { begin, end, members } of readGroups(decode.map(([, e]) => e))) {
      const [only] = members;
      if (members.length === 1 && decode[only!]![1].dtype === "F32") {
        // A float32 tensor read alone lands in its final buffer directly.
        data[only!] = new Float32Array(
          (await readRange(file, dataStart + begin, end - begin, new ArrayBuffer(end - begin))).buffer,
        );
        continue;
      }
      const bytes = await readRange(file, dataStart + begin, end - begin);
      for (const i of members) {
        const {
          dtype,
          dataOffsets: [b, e],
        } = decode[i]![1];
        data[i] = toFloat32(bytes.subarray(b - begin, e - begin), dtype);
      }
    }
    const tensors = new Map<string, LoadedTensor>(
      decode.map(([name, { dtype, shape }], i) => [name, { data: data[i]!, shape, dtype }]),
    );
    return { tensors, metadata, skipped };
  } finally {
    await file.close();
  }
}
