/**
 * A zip archive read entry by entry, ZIP64 included: what `torch.save` writes, at any size. From a file, only
 * the directory and the entries asked for are read: one buffer cannot hold an archive of 4 GiB or more (SD
 * 1.5's `v1-5-pruned.ckpt` is 7.7 GB). Bytes already in memory go through the same reader.
 * The central directory at the end lists the entries; each one's data follows its local header. torch.save
 * stores entries uncompressed; deflated ones (other writers) are inflated with fflate.
 * Every size the archive states is checked against the others and against the file before a byte is read,
 * and inflation stops at the stated size: a damaged or hostile archive costs no more than its own bytes.
 */
import { open } from "node:fs/promises";
import { Inflate } from "fflate";
import { readRange } from "./file-range.ts";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

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

const EOCD = 0x06054b50,
  ZIP64_LOCATOR = 0x07064b50,
  ZIP64_EOCD = 0x06064b50,
  CENTRAL = 0x02014b50,
  LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;
/** DEFLATE's best case is a 258-byte match in 2 bits, so no stream inflates to more than ~1032 times its size. */
const MAX_DEFLATE_RATIO = 1032;
/**
 * Weights barely compress (a re-zipped checkpoint is ~90 % of its size), so an archive whose deflated entries
 * inflate to more than 64 times the file (and 64 MiB) is refused before inflating: a 4 MB file of 4 GiB of zeros.
 */
const MAX_ARCHIVE_RATIO = 64;
const MIN_INFLATION_LIMIT = 64 * 2 ** 20;
/** Deflated input is fed in slices this big, so output beyond the stated size stops within ~16 MiB. */
const INFLATE_SLICE = 16 * 1024;

export class ZipError extends Error {
  override name = "ZipError";
}

export const bytesSource = (bytes: Uint8Array): ByteSource => ({
  size: bytes.length,
  read: async (position, length) => {
    if (position + length > bytes.length)
      fail(`${position + length - bytes.length} bytes short at byte ${bytes.length}: the data ended early`);
    return bytes.subarray(position, position + length);
  },
  close: async () => {},
});

export async function fileSource(path: string): Promise<ByteSource> {
  const file = await open(path, "r");
  return {
    size: (await file.stat()).size,
    read: (position, length) => readRange(file, position, length),
    close: () => file.close(),
  };
}

export async function openZip(source: ByteSource): Promise<ZipArchive> {
  const entries = await readDirectory(source);
  const inflationLimit = Math.max(MAX_ARCHIVE_RATIO * source.size, MIN_INFLATION_LIMIT);
  let inflated = 0;
  return {
    entries,
    async read(name) {
      const entry = entries.get(name);
      if (!entry) return fail(`the archive has no entry ${name}`);
      if (entry.method === 8) {
        if (inflated + entry.size > inflationLimit) {
          fail(
            `entry ${name} would bring what the archive inflates to ${inflated + entry.size} bytes, more than ${MAX_ARCHIVE_RATIO} times the file's ${source.size}; weights do not compress that well, so the file is damaged or a decompression bomb`,
          );
        }
        inflated += entry.size;
      }
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
  for (let i = tail.length - 22; i >= 0; i--)
    if (view.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  if (at < 0) fail("no end-of-central-directory record: the file is truncated or not a zip archive");
  let count = view.getUint16(at + 10, true),
    dirSize = view.getUint32(at + 12, true),
    dirStart = view.getUint32(at + 16, true);
  // A ZIP64 locator right before the record means the ZIP64 record holds the real counts (writers may
  // saturate the 16/32-bit fields or not); without one, saturated fields are an error.
  const hasLocator = at >= 20 && view.getUint32(at - 20, true) === ZIP64_LOCATOR;
  if (!hasLocator && (count === 0xffff || dirSize === U32_MAX || dirStart === U32_MAX))
    fail("the archive needs ZIP64 but has no ZIP64 locator");
  if (hasLocator) {
    const recordAt = u64(view, at - 20 + 8);
    if (recordAt + 56 > size) fail(`the ZIP64 record at byte ${recordAt} is beyond the end of the file`);
    const rv = view8(await source.read(recordAt, 56));
    if (rv.getUint32(0, true) !== ZIP64_EOCD) fail(`no ZIP64 end-of-central-directory record at byte ${recordAt}`);
    count = u64(rv, 32);
    dirSize = u64(rv, 40);
    dirStart = u64(rv, 48);
  }
  if (dirStart + dirSize > size)
    fail(
      `the central directory (bytes ${dirStart}..${dirStart + dirSize}) goes beyond the end of the file (${size} bytes): the file is truncated`,
    );

  const dir = await source.read(dirStart, dirSize);
  const dv = view8(dir);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== CENTRAL) fail(`central directory entry ${i} is damaged`);
    const nameLength = dv.getUint16(p + 28, true),
      extraLength = dv.getUint16(p + 30, true),
      commentLength = dv.getUint16(p + 32, true);
    if (p + 46 + nameLength + extraLength + commentLength > dir.length)
      fail(`central directory entry ${i} runs past the end of the directory`);
    const entry: ZipEntry = {
      name: new TextDecoder().decode(dir.subarray(p + 46, p + 46 + nameLength)),
      method: dv.getUint16(p + 10, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeader: dv.getUint32(p + 42, true),
    };
    readZip64Extra(dv, p + 46 + nameLength, extraLength, entry);
    checkSizes(entry, size);
    entries.set(entry.name, entry);
    p += 46 + nameLength + extraLength + commentLength;
  }
  checkDisjoint(entries);
  return entries;
}

/**
 * Entries must not share bytes: a directory that points many entries at one stretch of data would make a small
 * file read (and allocate) as a large one. Each entry takes at least its 30-byte local header and its data.
 */
function checkDisjoint(entries: Map<string, ZipEntry>): void {
  const byStart = [...entries.values()].sort((a, b) => a.localHeader - b.localHeader);
  for (let i = 1; i < byStart.length; i++) {
    const previous = byStart[i - 1]!,
      entry = byStart[i]!;
    if (entry.localHeader < previous.localHeader + 30 + previous.compressedSize) {
      fail(
        `entries ${previous.name} and ${entry.name} overlap (at bytes ${previous.localHeader} and ${entry.localHeader})`,
      );
    }
  }
}

/**
 * The ZIP64 extra field holds, in this order, the 64-bit forms of whichever fields were 0xFFFFFFFF (in a local
 * header: both sizes, always).
 */
function readZip64Extra(
  view: DataView,
  start: number,
  length: number,
  entry: ZipEntry,
  fields: readonly ("size" | "compressedSize" | "localHeader")[] = ["size", "compressedSize", "localHeader"],
): void {
  const end = start + length;
  for (let p = start; p + 4 <= end; ) {
    const id = view.getUint16(p, true),
      fieldEnd = p + 4 + view.getUint16(p + 2, true);
    if (fieldEnd > end) fail(`entry ${entry.name}: an extra field runs past the end of its header`);
    if (id === 0x0001) {
      let q = p + 4;
      for (const field of fields) {
        if (entry[field] !== U32_MAX) continue;
        if (q + 8 > fieldEnd)
          fail(
            `entry ${entry.name}: its ${field} is marked as 64-bit, but the ZIP64 extra field is too short to hold it`,
          );
        entry[field] = u64(view, q);
        q += 8;
      }
    }
    p = fieldEnd;
  }
  for (const field of fields)
    if (entry[field] === U32_MAX)
      fail(`entry ${entry.name}: its ${field} is marked as 64-bit, but there is no ZIP64 extra field`);
}

/** Sizes that no valid archive states, refused before anything is read or allocated for the entry. */
function checkSizes(entry: ZipEntry, fileSize: number): void {
  const { name, method, compressedSize, size } = entry;
  if (compressedSize > fileSize)
    fail(`entry ${name} claims ${compressedSize} compressed bytes, more than the whole file (${fileSize} bytes)`);
  if (method === 0 && compressedSize !== size)
    fail(
      `entry ${name} is stored uncompressed, yet its sizes differ (${compressedSize} bytes stored, ${size} bytes stated)`,
    );
  if (method === 8 && size > compressedSize * MAX_DEFLATE_RATIO + 258) {
    fail(`entry ${name} claims to inflate ${compressedSize} bytes to ${size}, beyond what DEFLATE can encode`);
  }
}

async function readEntry(source: ByteSource, entry: ZipEntry): Promise<Uint8Array> {
  if (entry.localHeader + 30 > source.size) fail(`entry ${entry.name}: its local header is beyond the end of the file`);
  const lv = view8(await source.read(entry.localHeader, 30));
  if (lv.getUint32(0, true) !== LOCAL) fail(`entry ${entry.name}: no local header at byte ${entry.localHeader}`);
  const nameLength = lv.getUint16(26, true),
    extraLength = lv.getUint16(28, true);
  const dataStart = entry.localHeader + 30 + nameLength + extraLength;
  if (dataStart + entry.compressedSize > source.size)
    fail(`entry ${entry.name} goes beyond the end of the file: the file is truncated`);
  await checkLocalHeader(source, entry, lv, entry.localHeader + 30 + nameLength, extraLength);
  if (entry.method === 0) return source.read(dataStart, entry.size);
  if (entry.method !== 8)
    fail(`entry ${entry.name} uses compression method ${entry.method}; only stored and deflated entries are read`);
  return inflateBounded(await source.read(dataStart, entry.compressedSize), entry);
}

/**
 * The local header repeats the method and sizes; where it holds them (no data descriptor, flag bit 3), they must
 * agree with the central directory's, or one of the two lies about where the data ends.
 */
async function checkLocalHeader(
  source: ByteSource,
  entry: ZipEntry,
  lv: DataView,
  extraStart: number,
  extraLength: number,
): Promise<void> {
  if (lv.getUint16(8, true) !== entry.method)
    fail(
      `entry ${entry.name}: its local header says compression method ${lv.getUint16(8, true)}, the central directory ${entry.method}`,
    );
  if (lv.getUint16(6, true) & 8) return;
  const local: ZipEntry = { ...entry, compressedSize: lv.getUint32(18, true), size: lv.getUint32(22, true) };
  if (local.compressedSize === U32_MAX || local.size === U32_MAX) {
    // A local ZIP64 field holds both sizes whenever either overflows, so both are read from it.
    local.compressedSize = local.size = U32_MAX;
    if (extraStart + extraLength > source.size)
      fail(`entry ${entry.name}: its local header runs past the end of the file`);
    readZip64Extra(view8(await source.read(extraStart, extraLength)), 0, extraLength, local, [
      "size",
      "compressedSize",
    ]);
  }
  if (local.compressedSize !== entry.compressedSize || local.size !== entry.size) {
    fail(
      `entry ${entry.name}: its local header says ${local.compressedSize} bytes (${local.size} inflated), the central directory ${entry.compressedSize} (${entry.size})`,
    );
  }
}

/**
 * Inflates into a buffer of the stated size, slice by slice, and stops as soon as the stream would write past it:
 * a stream that inflates to gigabytes fails after its first slices, not after inflating them all.
 */
function inflateBounded(compressed: Uint8Array, entry: ZipEntry): Uint8Array {
  let out: Uint8Array;
  try {
    out = new Uint8Array(entry.size);
  } catch (e) {
    return fail(
      `entry ${entry.name} states ${entry.size} inflated bytes, more than there is memory for (${(e as Error).message})`,
    );
  }
  let written = 0;
  const inflate = new Inflate((chunk) => {
    if (written + chunk.length > out.length)
      fail(`entry ${entry.name} inflates to more than the ${entry.size} bytes its header states`);
    out.set(chunk, written);
    written += chunk.length;
  });
  try {
    for (let at = 0; at < compressed.length || at === 0; at += INFLATE_SLICE) {
      inflate.push(compressed.subarray(at, at + INFLATE_SLICE), at + INFLATE_SLICE >= compressed.length);
    }
  } catch (e) {
    if (e instanceof ZipError) throw e;
    fail(`entry ${entry.name} is not a valid DEFLATE stream (${(e as Error).message})`);
  }
  if (written !== entry.size)
    fail(`entry ${entry.name} inflates to ${written} bytes, not the ${entry.size} its header states`);
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
