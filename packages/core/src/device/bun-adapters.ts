/**
 * Every adapter bun-webgpu's Dawn can see, as bun-webgpu GPUAdapter objects. WebGPU's requestAdapter returns one
 * adapter (the first after Dawn sorts by power preference), so on a node with 8 identical GPUs every process
 * would get the same one. Dawn's native API `dawn::native::Instance::EnumerateAdapters` (Dawn's "Adapter Options"
 * doc: the native way to list adapters synchronously) returns them all; bun-webgpu's library exports it, as a C++
 * symbol, and bun:ffi calls it through the Itanium C++ ABI (Linux and macOS):
 *
 *   std::vector<dawn::native::Adapter> Instance::EnumerateAdapters(const WGPURequestAdapterOptions*) const
 *
 * The vector comes back through a hidden first argument (it is not trivially copyable), `this` is an Instance,
 * whose only member is its InstanceBase* (= bun-webgpu's WGPUInstance), and each dawn::native::Adapter is one
 * AdapterBase* (= a WGPUAdapter) holding a reference. The vector and those references are left alone (a few
 * bytes per call): freeing them needs the C++ runtime's operator delete. The adapter handed to bun-webgpu gets
 * its own reference, which its GPUAdapter releases.
 */
const BUN_FFI = "bun:ffi";
const ENUMERATE = "_ZNK4dawn6native8Instance17EnumerateAdaptersEPK25WGPURequestAdapterOptions";
/** WGPURequestAdapterOptions: nextInChain, featureLevel, powerPreference, forceFallbackAdapter, backendType, compatibleSurface. */
const OPTIONS_BYTES = 32;
const POWER_PREFERENCE: Record<string, number> = { "low-power": 1, "high-performance": 2 };
const FEATURE_LEVEL_CORE = 2;

interface BunGpu {
  instancePtr: number;
  lib: unknown;
  _ticker: unknown;
  requestAdapter(options?: Record<string, unknown>): Promise<GPUAdapter | null>;
}

type Native = {
  enumerate(out: Uint8Array, self: BigUint64Array, options: Uint8Array): void;
  addRef(adapter: number): void;
  read(address: number, bytes: number): BigUint64Array;
};
let native: Native | null | undefined;

/** The adapters in Dawn's order for these options, or null where the library does not export the call (Windows). */
export async function enumerateBunAdapters(
  gpu: GPU,
  options: { powerPreference?: GPUPowerPreference; backendType?: number },
): Promise<GPUAdapter[] | null> {
  const bun = gpu as unknown as BunGpu;
  const lib = native === undefined ? (native = await openNative()) : native;
  if (!lib || typeof bun.instancePtr !== "number") return null;
  // bun-webgpu does not export its GPUAdapter class: a first adapter's constructor is it (its ticker runs callbacks).
  const first = await bun.requestAdapter();
  if (!first) return [];
  const Adapter = first.constructor as new (
    handle: number,
    instance: number,
    l: unknown,
    ticker: unknown,
  ) => GPUAdapter;
  const ticker = (first as unknown as { instanceTicker: unknown }).instanceTicker;
  (first as unknown as { destroy(): void }).destroy();

  const packed = new Uint8Array(OPTIONS_BYTES);
  const view = new DataView(packed.buffer);
  view.setUint32(8, FEATURE_LEVEL_CORE, true);
  view.setUint32(12, POWER_PREFERENCE[options.powerPreference ?? ""] ?? 0, true);
  view.setUint32(20, options.backendType ?? 0, true);
  const vector = new BigUint64Array(3); // begin, end, capacity
  lib.enumerate(new Uint8Array(vector.buffer), new BigUint64Array([BigInt(bun.instancePtr)]), packed);
  const count = Number(vector[1]! - vector[0]!) / 8;
  const handles = count > 0 ? lib.read(Number(vector[0]), count * 8) : new BigUint64Array(0);
  return [...handles].map((h) => {
    lib.addRef(Number(h));
    return new Adapter(Number(h), bun.instancePtr, bun.lib, ticker);
  });
}

async function openNative(): Promise<Native | null> {
  const { dlopen, FFIType, ptr, toArrayBuffer } = (await import(BUN_FFI)) as typeof import("bun:ffi");
  try {
    // The same file bun-webgpu loaded (dlopen hands back the loaded copy): its platform package names it.
    const entry = Bun.resolveSync("bun-webgpu", import.meta.dir);
    const from = entry.slice(0, entry.lastIndexOf("/"));
    const platform = await import(Bun.resolveSync(`bun-webgpu-${process.platform}-${process.arch}/index.ts`, from));
    const { symbols } = dlopen(platform.default as string, {
      [ENUMERATE]: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
      wgpuAdapterAddRef: { args: [FFIType.ptr], returns: FFIType.void },
    });
    return {
      enumerate: (out, self, options) => symbols[ENUMERATE]!(ptr(out), ptr(self), ptr(options)),
      addRef: (adapter) => symbols.wgpuAdapterAddRef(adapter as never),
      read: (address, bytes) => new BigUint64Array(toArrayBuffer(address as never, 0, bytes).slice(0)),
    };
  } catch {
    return null;
  }
}
