/**
 * `adapter.features` / `device.features` under bun-webgpu 0.1.7, read so that a garbage collection cannot
 * corrupt them. Its getters allocate the array Dawn copies the feature enums into, keep only its address in the
 * struct they pass, and read it back after the call: a GC in between frees the array and the read sees whatever
 * reuses the memory ("Error unpacking field 'features' … Invalid enum value: 1243138560", two stack traces and
 * an empty feature set: no shader-f16, no subgroups). Measured by `bun scripts/stress-ffi-features.ts`.
 *
 * Here the struct and the array live in module-level buffers for the whole call and read-back, so no GC can
 * touch them. The values are then named by bun-webgpu's own getter, fed those held buffers in place of the
 * native call, so names stay exactly its (Dawn's enum numbers change between versions).
 */
const BUN_FFI = "bun:ffi";
/** Dawn knows fewer than 100 features; bun-webgpu itself asks for 128. */
const CAPACITY = 128;
const struct = new BigUint64Array(2); // { size_t featureCount; WGPUFeatureName const* features }
const values = new Uint32Array(CAPACITY);

interface BunWebGpuObject {
  lib: Record<string, (handle: unknown, out: number) => void>;
  _features: ReadonlySet<string> | null;
  readonly features: ReadonlySet<string>;
}

/** The native handle and getter function of a bun-webgpu adapter or device; null for anything else. */
function internals(object: object): { owner: BunWebGpuObject; handle: unknown; fn: string } | null {
  const o = object as Partial<BunWebGpuObject> & { adapterPtr?: unknown; devicePtr?: unknown };
  if (!o.lib || !("_features" in o)) return null;
  const [handle, fn] =
    o.devicePtr !== undefined ? [o.devicePtr, "wgpuDeviceGetFeatures"] : [o.adapterPtr, "wgpuAdapterGetFeatures"];
  return typeof o.lib[fn] === "function" && handle ? { owner: o as BunWebGpuObject, handle, fn } : null;
}

/** The features of a GPUAdapter or GPUDevice: through the held buffers under bun-webgpu, else its own getter. */
export async function stableFeatures(object: GPUAdapter | GPUDevice): Promise<ReadonlySet<string>> {
  const found = internals(object);
  if (!found) return object.features as ReadonlySet<string>;
  // A specifier in a variable: bundles of the core for Node or browsers must neither load nor resolve bun:ffi.
  const { ptr, read, toArrayBuffer } = (await import(BUN_FFI)) as typeof import("bun:ffi");
  const { owner, handle, fn } = found;
  const native = owner.lib[fn]!;
  struct[0] = BigInt(CAPACITY);
  struct[1] = BigInt(ptr(values));
  native(handle, ptr(struct));
  const count = Math.min(Number(struct[0]), CAPACITY);
  // The native side either copied into `values` or pointed the struct at its own array: copy that one in.
  const at = Number(struct[1]);
  if (at !== ptr(values)) for (let i = 0; i < count; i++) values[i] = read.u32(at, i * 4);
  // bun-webgpu's getter, answered from the held buffers, names the values.
  owner.lib[fn] = (_handle, out) => {
    const view = new DataView(toArrayBuffer(out, 0, 16));
    view.setBigUint64(0, BigInt(count), true);
    view.setBigUint64(8, BigInt(ptr(values)), true);
  };
  try {
    owner._features = null;
    return owner.features;
  } finally {
    owner.lib[fn] = native;
  }
}
