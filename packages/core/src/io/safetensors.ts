/**
 * safetensors, read and written here (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON mapping tensor names to {dtype, shape, data_offsets} (plus an optional
 * "__metadata__" string map), then the data region, which the tensors must tile exactly. The checks
 * follow the reference implementation, so a file we accept is one `safetensors` in Python accepts.
 */
import { DTYPE_BYTES, fromFloat32, isFileDType, isFloatDType, isIntegerDType, toFloat32 } from "./dtypes.ts";
import type { FileDType, LoadedTensor } from "./dtypes.ts";

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** Where one tensor lies; `dataOffsets` are relative to the start of the data region. */
export interface SafetensorsEntry {
  dtype: FileDType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data region in the file: 8 + the header length. */
  dataStart: number;
}

export interface ReadSafetensorsOptions {
  /** Decode only the tensors this accepts; the others are still validated, never decoded. */
  names?: (name: string) => boolean;
  /** Convert integer and bool tensors (such as `position_ids`) to float32 instead of refusing them. */
  integers?: boolean;
  /** Leave out tensors whose dtype is not converted (listing them in `skipped`) instead of throwing. */
  skipUnsupported?: boolean;
}

export interface SafetensorsFile {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
  skipped: string[];
}

/** The reference implementation refuses headers above 100 MB; so do we, before parsing them. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Reads and validates the header. `bytes` may be just the start of the file (8 + header length bytes)
 * when `fileSize` gives the whole file's size, so a listing need not read the tensor data.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileSize = bytes.length): SafetensorsHeader {
  if (fileSize < 8)
    fail(`the file is ${fileSize} bytes, too short to hold the 8-byte header length; it is not a safetensors file`);
  if (bytes.length < 8) fail(`only ${bytes.length} bytes were given; pass at least the first 8 bytes and the header`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    fail(
      `the header length (${n} bytes) goes beyond the end of the file (${fileSize} bytes); the file is truncated or not a safetensors file`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES))
    fail(`the header is ${n} bytes, more than the ${MAX_HEADER_BYTES} bytes safetensors allows`);
  const dataStart = 8 + Number(n);
  if (bytes.length < dataStart)
    fail(
      `only ${bytes.length} bytes were given, but the header ends at byte ${dataStart}; pass at least the whole header`,
    );

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message}); the file is damaged or not a safetensors file`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(
      `the header JSON is ${Array.isArray(json) ? "an array" : json === null ? "null" : `a ${typeof json}`}, not an object of tensor entries`,
    );
  }

  // Linear in the header's size: a 100 MB header holds ~10^6 entries, and each costs a constant amount here.
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  // Keys and values as two arrays: looking each key up again costs more than the rest of the loop.
  const names = Object.keys(json as object),
    values = Object.values(json as object);
  for (let i = 0; i < names.length; i++) {
    if (names[i] === "__metadata__") metadata = parseMetadata(values[i]);
    else tensors.set(names[i]!, parseEntry(names[i]!, values[i]));
  }
  checkTiling(tensors, fileSize - dataStart);
  return { tensors, metadata, dataStart };
}

/** Reads a whole safetensors file into float32 tensors; see ReadSafetensorsOptions for the choices. */
export function readSafetensors(bytes: Uint8Array, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const { tensors: entries, metadata, dataStart } = readSafetensorsHeader(bytes);
  const { decode, skipped } = selectEntries(entries, options);
  const tensors = new Map<string, LoadedTensor>();
  for (const [
    name,
    {
      dtype,
      shape,
      dataOffsets: [begin, end],
    },
  ] of decode) {
    tensors.set(name, { data: toFloat32(bytes.subarray(dataStart + begin, dataStart + end), dtype), shape, dtype });
  }
  return { tensors, metadata, skipped };
}

/** The entries to decode under `options`, and the names skipped for their dtype (or an error naming one). */
export function selectEntries(
  entries: Map<string, SafetensorsEntry>,
  options: ReadSafetensorsOptions,
): { decode: [string, SafetensorsEntry][]; skipped: string[] } {
  const decode: [string, SafetensorsEntry][] = [];
  const skipped: string[] = [];
  for (const [name, entry] of entries) {
    if (options.names && !options.names(name)) continue;
    const { dtype } = entry;
    if (!isFloatDType(dtype) && !(options.integers && isIntegerDType(dtype))) {
      if (options.skipUnsupported) {
        skipped.push(name);
        continue;
      }
      const how = isIntegerDType(dtype) ? "pass `integers: true` to read it as float32, " : "";
      fail(
        `tensor "${name}" has dtype ${dtype}, which is not read as float32; ${how}pass \`skipUnsupported: true\` to skip it, or leave it out with \`names\``,
      );
    }
    decode.push([name, entry]);
  }
  return { decode, skipped };
}

export interface WriteSafetensorsOptions {
  /** F16 halves the file; values round to nearest even, and beyond ±65504 become ±inf. Default F32. */
  dtype?: "F32" | "F16";
  metadata?: Record<string, string>;
}

/** Serializes tensors the way the reference implementation does: sorted by name, contiguous, header space-padded to 8 bytes. */
export function writeSafetensors(
  tensors: ReadonlyMap<string, { data: Float32Array; shape: readonly number[] }>,
  { dtype = "F32", metadata }: WriteSafetensorsOptions = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(`metadata "${k}" is a ${typeof v}; safetensors metadata values must be strings`);
    }
    header.__metadata__ = metadata;
  }
  const names = [...tensors.keys()].sort();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") fail(`"__metadata__" is reserved for metadata and cannot name a tensor`);
    const { data, shape } = tensors.get(name)!;
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) fail(`tensor "${name}" has ${data.length} values but shape [${shape}] needs ${count}`);
    const bytes = fromFloat32(data, dtype);
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function parseMetadata(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    fail(`"__metadata__" must be an object of strings`);
  for (const [k, v] of Object.entries(value as object)) {
    if (typeof v !== "string") fail(`"__metadata__" entry "${k}" is ${preview(v)}; metadata values must be strings`);
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown): SafetensorsEntry {
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  if (typeof v !== "object" || v === null || Array.isArray(v))
    fail(`tensor "${name}": the entry is not an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: offsets } = v;
  if (typeof dtype !== "string") fail(`tensor "${name}": dtype is missing or not a string`);
  if (!isFileDType(dtype))
    fail(`tensor "${name}" has unknown dtype "${dtype}"; known: ${Object.keys(DTYPE_BYTES).join(", ")}`);
  if (!Array.isArray(shape) || !shape.every(isCount))
    fail(`tensor "${name}": shape ${preview(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`tensor "${name}": data_offsets ${preview(offsets)} is not a [begin, end] pair with begin <= end`);
  }
  const begin = offsets[0] as number,
    end = offsets[1] as number;
  let expected = DTYPE_BYTES[dtype];
  for (let i = 0; i < shape.length; i++) expected *= shape[i] as number;
  if (end - begin !== expected) {
    fail(
      `tensor "${name}": data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} with shape ${preview(shape)} takes ${expected}`,
    );
  }
  return { dtype, shape: shape as number[], dataOffsets: offsets as [number, number] };
}

/**
 * The tensors must cover the data region exactly: in range, no overlaps, no gaps, nothing left over. Offsets go
 * into typed arrays and loops index them: at 10^6 entries, iterators and destructuring cost more than the checks.
 */
function checkTiling(tensors: Map<string, SafetensorsEntry>, dataLength: number): void {
  const n = tensors.size;
  const names = new Array<string>(n),
    begins = new Float64Array(n),
    ends = new Float64Array(n);
  let i = 0,
    sorted = true;
  for (const [name, { dataOffsets }] of tensors) {
    names[i] = name;
    begins[i] = dataOffsets[0];
    ends[i] = dataOffsets[1];
    if (i && (begins[i]! < begins[i - 1]! || (begins[i] === begins[i - 1] && ends[i]! < ends[i - 1]!))) sorted = false;
    i++;
  }
  // Writers usually list tensors in data order; only other headers pay for a sort (of indices).
  let order: Uint32Array | undefined;
  if (!sorted) {
    order = new Uint32Array(n);
    for (let k = 0; k < n; k++) order[k] = k;
    order.sort((a, b) => begins[a]! - begins[b]! || ends[a]! - ends[b]!);
  }
  let covered = 0,
    previous = "";
  for (let k = 0; k < n; k++) {
    const j = order ? order[k]! : k;
    const name = names[j]!,
      begin = begins[j]!,
      end = ends[j]!;
    if (end > dataLength)
      fail(
        `tensor "${name}": data_offsets [${begin}, ${end}] go beyond the data region (${dataLength} bytes); the file is truncated or damaged`,
      );
    if (begin < covered)
      fail(`tensor "${name}" (bytes ${begin}..${end}) overlaps tensor "${previous}" (ending at ${covered})`);
    if (begin > covered)
      fail(
        `bytes ${covered}..${begin} of the data region belong to no tensor (before "${name}"); tensors must be contiguous`,
      );
    covered = end;
    previous = name;
  }
  if (covered !== dataLength)
    fail(
      `the tensors end at byte ${covered} of the data region, but it has ${dataLength} bytes; the file has trailing data`,
    );
}

/** A value for an error message: short JSON, or what kind of value it is (a header may nest deep or hold huge lists). */
function preview(x: unknown): string {
  if (Array.isArray(x))
    return x.length <= 8 && x.every((v) => v === null || typeof v !== "object")
      ? JSON.stringify(x)
      : `a list of ${x.length} item${x.length === 1 ? "" : "s"}`;
  if (typeof x === "string") return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x);
  return x !== null && typeof x === "object" ? "an object" : String(x);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function fail(message: string): never {
  throw new SafetensorsError(`safetensors: ${message}`);
}
