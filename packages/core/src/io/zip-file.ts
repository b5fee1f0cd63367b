/**
 * A zip archive read entry by entry, ZIP64 included: what `torch.save` writes, at any size. From a file, only
 * the directory and the entries asked for are read: one buffer cannot hold an archive of 4 GiB or more (SD
 * 1.5's `v1-5-pruned.ckpt` is 7.7 GB). Bytes already in memory go through the same reader.
 * The central directory at the end lists the entries; each one's data follows its local header. torch.save
 * stores entries uncompressed; deflated ones (other writers) are inflated with fflate.
 */
import { open } from "node:fs/promises";
import { inflateSync } from "fflate";
import { readRange } from "./file-range.ts";

export interface ZipEntry { name: string; method: number; compressedSize: number; size: number; localHeader: number }

/** Random access to the archive's bytes: a file on disk, or bytes already in memory. */
export interface ByteSource {
  size: number;
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface ZipArchive {
  entries: Map<string, ZipEntry>;
  read(name: string): Promise<Uint8Array>;
}

const EOCD = 0x06054b50, ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

export class ZipError extends Error {
  override name = "ZipError";
}

export const bytesSource = (bytes: Uint8Array): ByteSource => ({
  size: bytes.length,
  read: async (position, length) => {
    if (position + length > bytes.length) throw new Error(`${position + length - bytes.length} bytes short at byte ${bytes.length}: the data ended early`);
    return bytes.subarray(position, position + length);
  },
  close: async () => {},
});

export async function fileSource(path: string): Promise<ByteSource> {
  const file = await open(path, "r");
  return { size: (await file.stat()).size, read: (position, length) => readRange(file, position, length), close: () => file.close() };
}

export async function openZip(source: ByteSource): Promise<ZipArchive> {
  const entries = await readDirectory(source);
  return {
    entries,
    async read(name) {
      const entry = entries.get(name);
      if (!entry) return fail(`the archive has no entry ${name}`);
      return readEntry(source, entry);
    },
  };
}

/** The end-of-central-directory record (and its ZIP64 form when a count, size or offset overflows). */
async function readDirectory(source: ByteSource): Promise<Map<string, ZipEntry>> {
  const size = source.size;
  // The record is 22 bytes plus a comment of up to 65535 bytes, at the very end.
  const tailStart = Math.max(0, size - 22 - 0xffff);
  const tail = await source.read(tailStart, size - tailStart);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.length);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (view.getUint32(i, true) === EOCD) { at = i; break; }
  if (at < 0) fail("no end-of-central-directory record: the file is truncated or not a zip archive");
  let count = view.getUint16(at + 10, true), dirSize = view.getUint32(at + 12, true), dirStart = view.getUint32(at + 16, true);
  // A ZIP64 locator right before the record means the ZIP64 record holds the real counts (writers may
  // saturate the 16/32-bit fields or not); without one, saturated fields are an error.
  const hasLocator = at >= 20 && view.getUint32(at - 20, true) === ZIP64_LOCATOR;
  if (!hasLocator && (count === 0xffff || dirSize === U32_MAX || dirStart === U32_MAX)) fail("the archive needs ZIP64 but has no ZIP64 locator");
  if (hasLocator) {
    const recordAt = u64(view, at - 20 + 8);
    if (recordAt + 56 > size) fail(`the ZIP64 record at byte ${recordAt} is beyond the end of the file`);
    const rv = view8(await source.read(recordAt, 56));
    if (rv.getUint32(0, true) !== ZIP64_EOCD) fail(`no ZIP64 end-of-central-directory record at byte ${recordAt}`);
    count = u64(rv, 32);
    dirSize = u64(rv, 40);
    dirStart = u64(rv, 48);
  }
  if (dirStart + dirSize > size) fail(`the central directory (bytes ${dirStart}..${dirStart + dirSize}) goes beyond the end of the file (${size} bytes): the file is truncated`);

  const dir = await source.read(dirStart, dirSize);
  const dv = view8(dir);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== CENTRAL) fail(`central directory entry ${i} is damaged`);
    const nameLength = dv.getUint16(p + 28, true), extraLength = dv.getUint16(p + 30, true), commentLength = dv.getUint16(p + 32, true);
    const entry: ZipEntry = {
      name: new TextDecoder().decode(dir.subarray(p + 46, p + 46 + nameLength)),
      method: dv.getUint16(p + 10, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeader: dv.getUint32(p + 42, true),
    };
    readZip64Extra(dv, p + 46 + nameLength, extraLength, entry);
    entries.set(entry.name, entry);
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The ZIP64 extra field holds, in this order, the 64-bit forms of whichever fields were 0xFFFFFFFF. */
function readZip64Extra(view: DataView, start: number, length: number, entry: ZipEntry): void {
  for (let p = start; p + 4 <= start + length;) {
    const id = view.getUint16(p, true), size = view.getUint16(p + 2, true);
    if (id === 0x0001) {
      let q = p + 4;
      for (const field of ["size", "compressedSize", "localHeader"] as const) {
        if (entry[field] === U32_MAX) { entry[field] = u64(view, q); q += 8; }
      }
    }
    p += 4 + size;
  }
}

async function readEntry(source: ByteSource, entry: ZipEntry): Promise<Uint8Array> {
  if (entry.localHeader + 30 > source.size) fail(`entry ${entry.name}: its local header is beyond the end of the file`);
  const lv = view8(await source.read(entry.localHeader, 30));
  if (lv.getUint32(0, true) !== LOCAL) fail(`entry ${entry.name}: no local header at byte ${entry.localHeader}`);
  const dataStart = entry.localHeader + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  if (dataStart + entry.compressedSize > source.size) fail(`entry ${entry.name} goes beyond the end of the file: the file is truncated`);
  if (entry.method === 0) return source.read(dataStart, entry.size);
  if (entry.method !== 8) fail(`entry ${entry.name} uses compression method ${entry.method}; only stored and deflated entries are read`);
  const out = inflateSync(await source.read(dataStart, entry.compressedSize), { out: new Uint8Array(entry.size) });
  if (out.length !== entry.size) fail(`entry ${entry.name} inflates to ${out.length} bytes, not the ${entry.size} its header says`);
  return out;
}

const view8 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a 64-bit size or offset (${v}) is beyond what can be addressed`);
  return Number(v);
}

function fail(message: string): never {
  throw new ZipError(`zip: ${message}`);
}
