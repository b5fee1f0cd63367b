/**
 * PyTorch checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`) in the zip format `torch.save` writes since 1.6:
 * `<archive>/data.pkl` pickles the object, each tensor's storage lives in `<archive>/data/<key>` and is
 * referenced from the pickle by a persistent id, and `<archive>/byteorder` says how storages are laid out.
 * The pickle goes through the restricted unpickler with an allow-list of tensor and container types only.
 * Every failure is a TorchCheckpointError naming the file; the work and memory a file can cause are bounded by
 * its own bytes (sizes checked before reading, containers walked once, repeated views budgeted).
 */
import { DTYPE_BYTES, isFloatDType, isIntegerDType, toFloat32 } from "./dtypes.ts";
import type { FileDType, LoadedTensor } from "./dtypes.ts";
import { PickleError, unpickle, UnsafePickleError } from "./pickle.ts";
import { bytesSource, fileSource, openZip, ZipError } from "./zip-file.ts";
import type { ByteSource } from "./zip-file.ts";

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

/** Dicts and lists nest a few levels in any checkpoint; deeper is a damaged or hostile pickle. */
const MAX_NESTING = 1000;
/** torch.save's pickle holds the structure, not the data: a few MB for the largest models. */
const MAX_PICKLE_BYTES = 256 * 2 ** 20;
/** Longer dotted names than this are no state dict's. */
const MAX_NAME_LENGTH = 4096;

/**
 * Reads a `torch.save` zip checkpoint without executing anything it contains: from bytes, or from a file path,
 * which is read entry by entry (any size: storages are read one at a time, never the whole file at once).
 */
export async function readTorchCheckpoint(
  input: Uint8Array | string,
  options: ReadTorchOptions = {},
): Promise<TorchCheckpoint> {
  const label = typeof input === "string" ? `torch checkpoint ${input}` : "torch checkpoint";
  try {
    const source = typeof input === "string" ? await fileSource(input) : bytesSource(input);
    try {
      return await read(source, options);
    } finally {
      await source.close();
    }
  } catch (e) {
    // One error type for every problem, naming the file, with the original as its cause.
    if (e instanceof TorchCheckpointError) throw new TorchCheckpointError(`${label}: ${e.message}`, { cause: e.cause });
    if (e instanceof ZipError)
      throw new TorchCheckpointError(
        `${label}: the zip archive is damaged (${e.message}); download or copy the file again`,
        { cause: e },
      );
    if (e instanceof UnsafePickleError) throw new TorchCheckpointError(`${label}: ${e.message}`, { cause: e });
    if (e instanceof PickleError)
      throw new TorchCheckpointError(
        `${label}: its data.pkl is damaged (${e.message}); download or copy the file again`,
        { cause: e },
      );
    if ((e as NodeJS.ErrnoException).code)
      throw new TorchCheckpointError(`${label}: cannot read the file (${(e as Error).message})`, { cause: e });
    throw e;
  }
}

async function read(source: ByteSource, options: ReadTorchOptions): Promise<TorchCheckpoint> {
  checkFormat(await source.read(0, Math.min(source.size, 512)));
  const zip = await openZip(source);
  const names = [...zip.entries.keys()];
  const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    const listing = names.slice(0, 5).join(", ") + (names.length > 5 ? ", ..." : "");
    fail(`the zip archive has no <archive>/data.pkl (it holds ${listing}); it is not a torch.save checkpoint`);
  }
  const prefix = pkl.slice(0, -"data.pkl".length);
  // The pickle and the byte order are small in any torch.save file; a deflated one stating gigabytes is refused unread.
  for (const [name, limit] of [
    [pkl, MAX_PICKLE_BYTES],
    [`${prefix}byteorder`, 64],
  ] as const) {
    const size = zip.entries.get(name)?.size ?? 0;
    if (size > limit) fail(`${name} states ${size} bytes, more than the ${limit} any torch.save file holds there`);
  }
  const byteOrder = zip.entries.has(`${prefix}byteorder`)
    ? new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim()
    : "little";
  if (byteOrder !== "little" && byteOrder !== "big")
    fail(`${prefix}byteorder says "${byteOrder}", expected "little" or "big"`);

  const refs = collect(unpickle(await zip.read(pkl), { globals: GLOBALS, persistentLoad }));
  const byStorage = new Map<string, [string, TensorRef][]>();
  const skipped: string[] = [];
  for (const [name, ref] of refs) {
    if (options.names && !options.names(name)) continue;
    const dtype = ref.storage.dtype;
    if (!isFloatDType(dtype) && !(options.integers && isIntegerDType(dtype))) {
      skipped.push(name);
      continue;
    }
    const key = `${prefix}data/${ref.storage.key}`;
    const views = byStorage.get(key) ?? [];
    views.push([name, ref]);
    byStorage.set(key, views);
  }

  // Every storage's size is checked against the pickle before any is read: a storage entry whose size
  // disagrees with its element count is damaged, and reading it would pick up a neighbour's bytes.
  for (const [key, views] of byStorage) {
    const entry = zip.entries.get(key);
    const { storage } = views[0]![1];
    if (!entry) fail(`tensor "${views[0]![0]}" uses storage ${storage.key}, but the archive has no ${key}`);
    for (const [name, ref] of views) {
      if (ref.storage.numel !== storage.numel || ref.storage.dtype !== storage.dtype) {
        fail(
          `tensors "${views[0]![0]}" and "${name}" give storage ${storage.key} different types or sizes (${storage.numel} ${storage.dtype}, ${ref.storage.numel} ${ref.storage.dtype})`,
        );
      }
    }
    if (entry.size !== storage.numel * DTYPE_BYTES[storage.dtype]) {
      fail(
        `storage ${storage.key} holds ${entry.size} bytes, but the pickle says ${storage.numel} ${storage.dtype} elements`,
      );
    }
  }

  // One storage at a time: read, fix the byte order, copy out every tensor that views it.
  const tensors = new Map<string, LoadedTensor>();
  const budget = new ViewBudget(source.size);
  for (const [key, views] of byStorage) {
    const { storage } = views[0]![1];
    let data = await zip.read(key);
    // Swapped in a copy: bytes given by the caller are only read, never changed.
    if (byteOrder === "big") swapBytes((data = data.slice()), DTYPE_BYTES[storage.dtype]);
    budget.stored += storage.numel;
    for (const [name, ref] of views)
      tensors.set(name, { data: materialize(name, ref, data, budget), shape: [...ref.shape], dtype: storage.dtype });
  }
  // In the pickle's order, as a state dict lists them.
  return { tensors: new Map([...refs.keys()].filter((n) => tensors.has(n)).map((n) => [n, tensors.get(n)!])), skipped };
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
  constructor(
    readonly key: string,
    readonly dtype: FileDType,
    readonly numel: number,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const STORAGES: Record<string, FileDType> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

const DTYPES = [
  "float32",
  "float",
  "float16",
  "half",
  "bfloat16",
  "float64",
  "double",
  "int64",
  "long",
  "int32",
  "int",
  "int16",
  "short",
  "int8",
  "uint8",
  "bool",
];

const rebuildTensor = (args: unknown[]) => {
  const [storage, offset, shape, stride] = args;
  if (
    !(storage instanceof StorageRef) ||
    !isCount(offset) ||
    !isCounts(shape) ||
    !isCounts(stride) ||
    shape.length !== stride.length
  ) {
    fail(`a tensor's rebuild arguments are malformed (storage, offset, size, stride expected)`);
  }
  return new TensorRef(storage, offset, shape, stride);
};

/** `OrderedDict()` or `OrderedDict([(key, value), ...])`; its items usually come later, by SETITEMS. */
const orderedDict = ([items]: unknown[]) => {
  if (items == null) return new Map();
  if (!Array.isArray(items) || !items.every((item) => Array.isArray(item) && item.length === 2)) {
    fail(`OrderedDict is called with ${describe(items)}, not a list of (key, value) pairs`);
  }
  return new Map(items as [unknown, unknown][]);
};

/** Everything a state dict needs, nothing that runs code: containers, tensors, parameters, storage types, dtypes. */
const GLOBALS = new Map<string, unknown>([
  ["collections.OrderedDict", orderedDict],
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
  if (
    !Array.isArray(pid) ||
    pid[0] !== "storage" ||
    !(pid[1] instanceof StorageType) ||
    typeof pid[2] !== "string" ||
    !isCount(pid[4])
  ) {
    fail(`a persistent id is not a ("storage", type, key, location, size) tuple`);
  }
  return new StorageRef(pid[2], pid[1].dtype, pid[4]);
}

/**
 * Names every tensor by its dotted path through dicts and lists. The walk is iterative (a pickle may nest deeper
 * than the JS stack goes) and visits each container once, at its first path: the pickle's memo lets one container
 * appear in many places, and 40 levels of `(L, L)` would otherwise be 2^40 paths (cycles are cut the same way).
 * A tensor is named at every path that holds it directly, as tied weights are. Entries under keys that are not
 * strings or numbers (tuple keys) name no tensor and are left out.
 */
function collect(root: unknown): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const visited = new Set<object>();
  const pending: [value: unknown, path: string, depth: number][] = [[root, "", 0]];
  while (pending.length) {
    const [value, path, depth] = pending.pop()!;
    if (value instanceof TensorRef) {
      out.set(path, value);
      continue;
    }
    if (!(value instanceof Map) && !Array.isArray(value)) continue;
    if (visited.has(value)) continue;
    visited.add(value);
    if (depth === MAX_NESTING)
      fail(`its dicts and lists nest more than ${MAX_NESTING} levels deep; no state dict does`);
    const children = [...value.entries()];
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, child] = children[i]!;
      if (!isNameKey(key) || !(child instanceof TensorRef || child instanceof Map || Array.isArray(child))) continue;
      const name = path ? `${path}.${key}` : String(key);
      if (name.length > MAX_NAME_LENGTH)
        fail(
          `a tensor path is longer than ${MAX_NAME_LENGTH} characters (it starts "${name.slice(0, 60)}..."); no state dict's is`,
        );
      pending.push([child, name, depth + 1]);
    }
  }
  return out;
}

function isNameKey(key: unknown): key is string | number | bigint | boolean | null {
  return key === null || ["string", "number", "bigint", "boolean"].includes(typeof key);
}

/**
 * Views may repeat a storage's elements (broadcast stride-0 views, overlapping strides, tensors sharing one
 * storage), so the float32 copies can outgrow the file without bound: a 1 KB file can describe a 1 GiB view.
 * The copies may exceed the elements stored by 64 elements per byte of the file (at least 2^22, 16 MiB): room for
 * tied weights and for expanded buffers such as a test model's broadcast vocabulary (49408 x 32 from 32 values in a
 * 90 KB file), never an amount out of proportion to the file.
 */
class ViewBudget {
  stored = 0;
  materialized = 0;
  readonly extra: number;
  constructor(readonly fileSize: number) {
    this.extra = Math.max(64 * fileSize, 2 ** 22);
  }
}

/** Copies a tensor out of its storage, following its strides (views, transposes, shared storages). */
function materialize(
  name: string,
  { storage, offset, shape, stride }: TensorRef,
  bytes: Uint8Array,
  budget: ViewBudget,
): Float32Array {
  const size = DTYPE_BYTES[storage.dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  if (count === 0) return new Float32Array(0);
  if (budget.materialized + count > budget.stored + budget.extra) {
    fail(
      `tensor "${name}" (shape [${shape}], stride [${stride}]) repeats stored elements beyond what a ${budget.fileSize}-byte file justifies: ` +
        `the tensors read so far would take ${budget.materialized + count} float32 values from ${budget.stored} stored; ` +
        `save broadcast or overlapping views with .clone() (or .contiguous())`,
    );
  }
  const last = offset + shape.reduce((s, n, d) => s + (n - 1) * stride[d]!, 0);
  if (last >= storage.numel)
    fail(`tensor "${name}" reads element ${last} of storage ${storage.key}, which has ${storage.numel}`);
  budget.materialized += count;
  const span = allocating(`tensor "${name}"`, () =>
    toFloat32(bytes.subarray(offset * size, (last + 1) * size), storage.dtype),
  );
  if (isRowMajor(shape, stride)) return span;

  const out = allocating(`tensor "${name}"`, () => new Float32Array(count));
  const index = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let i = 0; i < count; i++) {
    out[i] = span[src]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        src += stride[d]!;
        break;
      }
      index[d] = 0;
      src -= (shape[d]! - 1) * stride[d]!;
    }
  }
  return out;
}

/** An allocation the engine refuses (out of memory) is this checkpoint's typed error, not a bare RangeError. */
function allocating<T>(what: string, allocate: () => T): T {
  try {
    return allocate();
  } catch (e) {
    if (e instanceof RangeError) fail(`there is not enough memory for ${what} (${e.message})`);
    throw e;
  }
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
  const resave =
    "re-save it with torch >= 1.6 (`torch.save(torch.load(path), new_path)`, only if you trust the file), or better as safetensors";
  if (ascii(257, 262) === "ustar")
    fail(`this is a legacy tar-format PyTorch checkpoint (torch < 1.6), which is not supported; ${resave}`);
  if (bytes[0] === 0x80)
    fail(
      `this is a legacy PyTorch checkpoint (a bare pickle, torch < 1.6 or _use_new_zipfile_serialization=False), which is not supported; ${resave}`,
    );
  fail(`not a PyTorch checkpoint: it is neither a zip archive (torch >= 1.6) nor a legacy pickle`);
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

/** A short description of a malformed value for an error message (never the whole value: it may be huge or cyclic). */
function describe(x: unknown): string {
  if (Array.isArray(x)) return `a list of ${x.length} item${x.length === 1 ? "" : "s"}`;
  if (x instanceof Map) return "a dict";
  return typeof x === "string"
    ? `a string of ${x.length} characters`
    : typeof x === "object"
      ? "an object"
      : `the ${typeof x} ${String(x)}`;
}

/** Thrown bare here; readTorchCheckpoint adds which file it is about. */
function fail(message: string): never {
  throw new TorchCheckpointError(message);
}
