/**
 * PyTorch checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`) in the zip format `torch.save` writes since 1.6:
 * `<archive>/data.pkl` pickles the object, each tensor's storage lives in `<archive>/data/<key>` and is
 * referenced from the pickle by a persistent id, and `<archive>/byteorder` says how storages are laid out.
 * The pickle goes through the restricted unpickler with an allow-list of tensor and container types only.
 */
import { DTYPE_BYTES, isFloatDType, isIntegerDType, toFloat32 } from "./dtypes.ts";
import type { FileDType, LoadedTensor } from "./dtypes.ts";
import { unpickle } from "./pickle.ts";
import { bytesSource, fileSource, openZip, ZipError } from "./zip-file.ts";

export class TorchCheckpointError extends Error {
  override name = "TorchCheckpointError";
}

export interface ReadTorchOptions {
  /** Load only the tensors this accepts (by flattened name); the others' storages are never unzipped. */
  names?: (name: string) => boolean;
  /** Convert integer and bool tensors to float32 (exact up to 2^24) instead of skipping them. */
  integers?: boolean;
}

export interface TorchCheckpoint {
  /** Tensors by dotted path through the pickled dicts and lists, e.g. `state_dict.encoder.weight`. */
  tensors: Map<string, LoadedTensor>;
  /** Tensors left out because their type is not read as float32 (integers unless asked for). */
  skipped: string[];
}

/**
 * Reads a `torch.save` zip checkpoint without executing anything it contains: from bytes, or from a file path,
 * which is read entry by entry (any size: storages are read one at a time, never the whole file at once).
 */
export async function readTorchCheckpoint(input: Uint8Array | string, options: ReadTorchOptions = {}): Promise<TorchCheckpoint> {
  const source = typeof input === "string" ? await fileSource(input) : bytesSource(input);
  try {
    checkFormat(await source.read(0, Math.min(source.size, 512)));
    const zip = await unzip(() => openZip(source));
    const names = [...zip.entries.keys()];
    const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (!pkl) {
      const listing = names.slice(0, 5).join(", ") + (names.length > 5 ? ", ..." : "");
      fail(`the zip archive has no <archive>/data.pkl (it holds ${listing}); it is not a torch.save checkpoint`);
    }
    const prefix = pkl.slice(0, -"data.pkl".length);
    const byteOrder = zip.entries.has(`${prefix}byteorder`) ? new TextDecoder().decode(await unzip(() => zip.read(`${prefix}byteorder`))).trim() : "little";
    if (byteOrder !== "little" && byteOrder !== "big") fail(`${prefix}byteorder says "${byteOrder}", expected "little" or "big"`);

    const refs = new Map<string, TensorRef>();
    collect(unpickle(await unzip(() => zip.read(pkl)), { globals: GLOBALS, persistentLoad }), "", refs, new Set());
    const byStorage = new Map<string, [string, TensorRef][]>();
    const skipped: string[] = [];
    for (const [name, ref] of refs) {
      if (options.names && !options.names(name)) continue;
      const dtype = ref.storage.dtype;
      if (!isFloatDType(dtype) && !(options.integers && isIntegerDType(dtype))) { skipped.push(name); continue; }
      const key = `${prefix}data/${ref.storage.key}`;
      const views = byStorage.get(key) ?? [];
      views.push([name, ref]);
      byStorage.set(key, views);
    }

    // One storage at a time: read, fix the byte order, copy out every tensor that views it.
    const tensors = new Map<string, LoadedTensor>();
    for (const [key, views] of byStorage) {
      if (!zip.entries.has(key)) fail(`tensor "${views[0]![0]}" uses storage ${views[0]![1].storage.key}, but the archive has no ${key}`);
      let data = await unzip(() => zip.read(key));
      // Swapped in a copy: bytes given by the caller are only read, never changed.
      if (byteOrder === "big") swapBytes(data = data.slice(), DTYPE_BYTES[views[0]![1].storage.dtype]);
      for (const [name, ref] of views) tensors.set(name, { data: materialize(name, ref, data), shape: [...ref.shape], dtype: ref.storage.dtype });
    }
    // In the pickle's order, as a state dict lists them.
    return { tensors: new Map([...refs.keys()].filter((n) => tensors.has(n)).map((n) => [n, tensors.get(n)!])), skipped };
  } finally {
    await source.close();
  }
}

/**
 * The entries under `prefix` (such as "state_dict." or DDP's "module."), renamed without it; entries
 * outside it are left out, so this also picks one sub-dict out of a checkpoint.
 */
export function stripPrefix<T>(tensors: ReadonlyMap<string, T>, prefix: string): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, t] of tensors) if (name.startsWith(prefix)) out.set(name.slice(prefix.length), t);
  return out;
}

/** A storage type global such as `torch.HalfStorage`: persistent ids use it to give a storage its dtype. */
class StorageType {
  constructor(readonly dtype: FileDType) {}
}

/** A `torch.float16`-style dtype object; allowed because configs saved beside weights may hold one. */
class TorchDType {
  constructor(readonly name: string) {}
}

class StorageRef {
  constructor(readonly key: string, readonly dtype: FileDType, readonly numel: number) {}
}

class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

const STORAGES: Record<string, FileDType> = {
  FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16", DoubleStorage: "F64", LongStorage: "I64",
  IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL",
};

const DTYPES = ["float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool"];

const rebuildTensor = (args: unknown[]) => {
  const [storage, offset, shape, stride] = args;
  if (!(storage instanceof StorageRef) || !isCount(offset) || !isCounts(shape) || !isCounts(stride) || shape.length !== stride.length) {
    fail(`a tensor's rebuild arguments are malformed (storage, offset, size, stride expected)`);
  }
  return new TensorRef(storage, offset, shape, stride);
};

/** Everything a state dict needs, nothing that runs code: containers, tensors, parameters, storage types, dtypes. */
const GLOBALS = new Map<string, unknown>([
  ["collections.OrderedDict", ([items]: unknown[]) => new Map((items ?? []) as [unknown, unknown][])],
  ["torch._utils._rebuild_tensor", rebuildTensor],
  ["torch._utils._rebuild_tensor_v2", rebuildTensor],
  ["torch._utils._rebuild_parameter", ([data]: unknown[]) => data],
  ["torch._utils._rebuild_parameter_with_state", ([data]: unknown[]) => data],
  ["torch.Size", ([dims]: unknown[]) => dims],
  ...Object.entries(STORAGES).map(([name, dtype]) => [`torch.${name}`, new StorageType(dtype)] as const),
  ...DTYPES.map((name) => [`torch.${name}`, new TorchDType(name)] as const),
]);

/** torch.save's persistent id for a storage: ("storage", storage type, key, location, element count). */
function persistentLoad(pid: unknown): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || !(pid[1] instanceof StorageType) || typeof pid[2] !== "string" || !isCount(pid[4])) {
    fail(`a persistent id is not a ("storage", type, key, location, size) tuple`);
  }
  return new StorageRef(pid[2], pid[1].dtype, pid[4]);
}

/** Names every tensor by its path through dicts and lists; cycles (possible in pickles) are cut. */
function collect(value: unknown, path: string, out: Map<string, TensorRef>, ancestors: Set<unknown>): void {
  if (value instanceof TensorRef) { out.set(path, value); return; }
  if (!(value instanceof Map) && !Array.isArray(value)) return;
  if (ancestors.has(value)) return;
  ancestors.add(value);
  const entries = value instanceof Map ? value.entries() : value.entries();
  for (const [k, v] of entries) collect(v, path ? `${path}.${k}` : String(k), out, ancestors);
  ancestors.delete(value);
}

/** Copies a tensor out of its storage, following its strides (views, transposes, shared storages). */
function materialize(name: string, { storage, offset, shape, stride }: TensorRef, bytes: Uint8Array): Float32Array {
  const size = DTYPE_BYTES[storage.dtype];
  if (bytes.length !== storage.numel * size) {
    fail(`storage ${storage.key} holds ${bytes.length} bytes, but the pickle says ${storage.numel} ${storage.dtype} elements`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count === 0) return new Float32Array(0);
  const last = offset + shape.reduce((s, n, d) => s + (n - 1) * stride[d], 0);
  if (last >= storage.numel) fail(`tensor "${name}" reads element ${last} of storage ${storage.key}, which has ${storage.numel}`);
  const span = toFloat32(bytes.subarray(offset * size, (last + 1) * size), storage.dtype);
  if (isRowMajor(shape, stride)) return span;

  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let i = 0; i < count; i++) {
    out[i] = span[src];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) { src += stride[d]; break; }
      index[d] = 0;
      src -= (shape[d] - 1) * stride[d];
    }
  }
  return out;
}

function isRowMajor(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function checkFormat(bytes: Uint8Array): void {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (ascii(0, 4) === "PK\x03\x04") return;
  const resave = "re-save it with torch >= 1.6 (`torch.save(torch.load(path), new_path)`, only if you trust the file), or better as safetensors";
  if (ascii(257, 262) === "ustar") fail(`this is a legacy tar-format PyTorch checkpoint (torch < 1.6), which is not supported; ${resave}`);
  if (bytes[0] === 0x80) fail(`this is a legacy PyTorch checkpoint (a bare pickle, torch < 1.6 or _use_new_zipfile_serialization=False), which is not supported; ${resave}`);
  fail(`not a PyTorch checkpoint: it is neither a zip archive (torch >= 1.6) nor a legacy pickle`);
}

/** A zip-level failure, reported as a damaged checkpoint. */
async function unzip<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof ZipError) return fail(`the zip archive is damaged (${e.message}); download or copy the file again`);
    throw e;
  }
}

/** Converts big-endian elements (from a big-endian machine's torch.save) to little-endian in place. */
function swapBytes(data: Uint8Array, size: number): void {
  for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse();
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isCounts(x: unknown): x is number[] {
  return Array.isArray(x) && x.every(isCount);
}

function fail(message: string): never {
  throw new TorchCheckpointError(`torch checkpoint: ${message}`);
}
