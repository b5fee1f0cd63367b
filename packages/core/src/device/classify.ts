/**
 * What kind of adapter we were given. The dangerous case is Dawn's null backend: when a GPU machine's
 * Vulkan driver fails to load, Dawn can hand out a "null-backend" adapter whose kernels "run" in
 * microseconds and return garbage. A CPU Vulkan driver (Mesa lavapipe/llvmpipe) is legitimate and slow.
 */
export type AdapterKind = "gpu" | "cpu" | "null" | "fallback";

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's backend and adapter type enums where the binding exposes them (bun-webgpu does). */
  backendType?: number;
  adapterType?: number;
  isFallbackAdapter: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

const DAWN_BACKEND_NULL = 1;
const DAWN_ADAPTER_CPU = 3;
const CPU_DRIVERS = /llvmpipe|lavapipe|softpipe/i;
const SOFTWARE_FALLBACKS = /swiftshader|warp|microsoft basic render/i;

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  // Node's GPUAdapterInfo exposes getters that spread/JSON do not see: read each field by name.
  const info = adapter.info as GPUAdapterInfo & Record<string, any>;
  let fallback = false;
  try {
    fallback = Boolean(info.isFallbackAdapter ?? (adapter as any).isFallbackAdapter);
  } catch {
    /* bun-webgpu throws */
  }
  return {
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    device: String(info.device ?? ""),
    description: String(info.description ?? ""),
    backendType: typeof info.backendType === "number" ? info.backendType : undefined,
    adapterType: typeof info.adapterType === "number" ? info.adapterType : undefined,
    isFallbackAdapter: fallback,
    subgroupMinSize: typeof info.subgroupMinSize === "number" ? info.subgroupMinSize : undefined,
    subgroupMaxSize: typeof info.subgroupMaxSize === "number" ? info.subgroupMaxSize : undefined,
  };
}

export function classifyAdapter(d: AdapterDescription): AdapterKind {
  const names = `${d.vendor} ${d.architecture} ${d.device} ${d.description}`;
  if (d.backendType === DAWN_BACKEND_NULL || /null-backend|null backend/i.test(names)) return "null";
  if (CPU_DRIVERS.test(names)) return "cpu";
  if (SOFTWARE_FALLBACKS.test(names)) return "fallback";
  // dawn.node marks lavapipe as a fallback adapter too; that case returned "cpu" above.
  if (d.isFallbackAdapter) return "fallback";
  if (d.adapterType === DAWN_ADAPTER_CPU || d.architecture === "software") return "cpu";
  return "gpu";
}

export function adapterName(d: AdapterDescription): string {
  return d.description || [d.vendor, d.architecture, d.device].filter(Boolean).join(" ") || "(unnamed adapter)";
}
