import { holdPackedArguments } from "@textcraftor/webgpu-kernels/internal";
import { chooseAdapterIndex, deviceRequest, type AdapterEntry, type DeviceRequest } from "./adapter-choice.ts";
import {
  detectRuntime,
  loadBinding,
  type BackendRequest,
  type Binding,
  type BindingName,
  type ListedAdapter,
  type Runtime,
} from "./bindings.ts";
import { stableFeatures } from "./bun-features.ts";
import {
  adapterName,
  classifyAdapter,
  describeAdapter,
  type AdapterDescription,
  type AdapterKind,
} from "./classify.ts";
import { DeviceError } from "./device-error.ts";

export { DeviceError };

/** Optional features we use when the adapter has them; kernels pick variants from `DeviceInfo.features`. */
const WANTED_FEATURES = ["shader-f16", "subgroups", "timestamp-query", "subgroup-size-control"] as const;

/**
 * Dawn hides `shader-f16` on every NVIDIA Vulkan device unless this toggle is on; our kernels use f16 only to
 * read frozen weights (converted to f32 at once), and the f16 tests check those reads on the GPU they run on.
 * Only dawn.node (Node) can pass toggles.
 */
export const DEFAULT_DAWN_TOGGLES = ["vulkan_enable_f16_on_nvidia"];

export interface OpenDeviceOptions {
  /** Refuse CPU drivers too (for benchmarks that must run on a GPU). Env: TEXTCRAFTOR_REQUIRE_GPU=1. */
  requireGPU?: boolean;
  /** Accept a software fallback adapter such as SwiftShader (never the null backend). */
  allowFallback?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Ask Dawn for a specific backend (Bun and Node only). */
  backend?: BackendRequest;
  /**
   * Dawn toggles, e.g. "allow_unsafe_apis" (Node's dawn.node only; bun-webgpu cannot pass them). Default:
   * DEFAULT_DAWN_TOGGLES.
   */
  dawnToggles?: string[];
  /**
   * The adapter's index among those `listAdapters` shows (`--device N`). Default: TEXTCRAFTOR_DEVICE, else under
   * an MPI launcher the local rank modulo the GPUs found, else the binding's own choice.
   */
  device?: number;
}

export interface DeviceInfo {
  runtime: Runtime;
  runtimeVersion: string;
  binding: BindingName;
  adapter: AdapterDescription & { name: string };
  kind: Exclude<AdapterKind, "null">;
  isCPU: boolean;
  features: string[];
  limits: Record<string, number>;
  /** The adapter's index in `listAdapters`, and what chose it; null index: the binding's own choice. */
  adapterIndex: number | null;
  chosenBy: DeviceRequest["from"] | "the binding";
}

export interface Gpu {
  device: GPUDevice;
  info: DeviceInfo;
  hasFeature(name: string): boolean;
  destroy(): void;
}

const SETUP_HINT =
  "Run `bash scripts/setup.sh` from the project root: on Debian/Ubuntu without a GPU it installs Mesa's " +
  "CPU Vulkan driver (lavapipe >= 24, from bookworm-backports on Debian 12). With a GPU, install its Vulkan driver.";

/** The one way to get a GPU: picks the binding for this runtime, takes the adapter's full limits. */
export async function openDevice(options: OpenDeviceOptions = {}): Promise<Gpu> {
  const { runtime, version } = detectRuntime();
  const requireGPU = options.requireGPU ?? envFlag("TEXTCRAFTOR_REQUIRE_GPU");
  const request = deviceRequest(options.device, envVar);
  const powerPreference = options.powerPreference ?? "high-performance";
  const binding = await loadBinding(runtime, options.backend ?? "default", options.dawnToggles ?? DEFAULT_DAWN_TOGGLES);
  let adapter: GPUAdapter | null;
  let gpu = binding.gpu,
    adapterIndex: number | null = null;
  try {
    const listed = request ? await usableAdapters(binding, powerPreference) : null;
    if (request && listed?.length) {
      adapterIndex = chooseAdapterIndex(listed.map(entryOf), request, binding.name).index;
      ({ adapter, gpu } = await listed[adapterIndex]!.open());
    } else {
      // A binding that cannot list adapters shows its own choice as index 0: only 0 (or a local rank) passes.
      // None listed (only Dawn's null backend): requestAdapter's answer gets the null backend's own refusal.
      if (request && !listed) chooseAdapterIndex(null, request, binding.name);
      adapter = await binding.gpu.requestAdapter({
        powerPreference,
        ...binding.adapterOptions,
      } as GPURequestAdapterOptions);
    }
  } catch (e) {
    if (e instanceof DeviceError) throw e;
    throw new DeviceError(`WebGPU (${binding.name}) could not enumerate adapters: ${(e as Error).message}`, SETUP_HINT);
  }
  if (!adapter) throw new DeviceError(`No WebGPU adapter found (${binding.name} on ${runtime}).`, SETUP_HINT);

  const described = describeAdapter(adapter);
  const kind = classifyAdapter(described);
  const name = adapterName(described);
  if (kind === "null") {
    throw new DeviceError(
      `Refusing Dawn's null backend ("${name}"): it computes nothing and returns garbage.`,
      `The real Vulkan/Metal/D3D12 driver failed to load. ${SETUP_HINT} On a GPU machine, check VK_DRIVER_FILES and the driver's libraries.`,
    );
  }
  if (kind === "fallback" && !options.allowFallback) {
    throw new DeviceError(
      `Refusing the software fallback adapter "${name}".`,
      `Pass allowFallback: true to use it anyway, or fix the GPU driver. ${SETUP_HINT}`,
    );
  }
  if (kind === "cpu" && requireGPU) {
    throw new DeviceError(
      `A GPU was required but the adapter is the CPU driver "${name}".`,
      `The GPU's Vulkan driver did not load. ${SETUP_HINT}`,
    );
  }

  // bun-webgpu's own getters can read freed memory (bun-features.ts).
  const adapterFeatures = await stableFeatures(adapter);
  const features = WANTED_FEATURES.filter((f) => adapterFeatures.has(f));
  // bun-webgpu rejects a partial requiredLimits ("Value must be between 0 and 0"): pass every numeric limit.
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") limits[key] = value;
  }
  // The descriptor's arrays go to the binding by address: see holdPackedArguments.
  const device = await holdPackedArguments(() =>
    adapter.requestDevice({ requiredFeatures: features as GPUFeatureName[], requiredLimits: limits }),
  );
  device.lost.then((lost) => {
    if (lost.reason !== "destroyed") console.error(`textcraftor: GPU device lost (${lost.reason}): ${lost.message}`);
  });

  const deviceFeatures = await stableFeatures(device);
  const info: DeviceInfo = {
    runtime,
    runtimeVersion: version,
    binding: binding.name,
    adapter: { ...described, name },
    kind,
    isCPU: kind === "cpu",
    features: [...deviceFeatures].filter((f) => typeof f === "string").sort(),
    limits,
    adapterIndex,
    chosenBy: request && adapterIndex !== null ? request.from : "the binding",
  };
  // dawn.node tears the device down when its GPU instance is garbage-collected: keep it reachable.
  keepAlive.add(gpu);
  return {
    device,
    info,
    hasFeature: (f) => deviceFeatures.has(f),
    destroy: () => {
      device.destroy();
      keepAlive.delete(gpu);
    },
  };
}

const keepAlive = new Set<GPU>();

/**
 * The adapters `device` indexes, in the binding's order (Dawn sorts discrete GPUs first for "high-performance"),
 * without Dawn's null backend; null where the binding shows only its own choice (`navigator.gpu`).
 */
export async function listAdapters(
  options: Pick<OpenDeviceOptions, "backend" | "powerPreference" | "dawnToggles"> = {},
): Promise<{ binding: BindingName; adapters: AdapterEntry[] | null }> {
  const { runtime } = detectRuntime();
  const binding = await loadBinding(runtime, options.backend ?? "default", options.dawnToggles ?? DEFAULT_DAWN_TOGGLES);
  const listed = await usableAdapters(binding, options.powerPreference ?? "high-performance");
  return { binding: binding.name, adapters: listed?.map(entryOf) ?? null };
}

async function usableAdapters(binding: Binding, powerPreference: GPUPowerPreference): Promise<ListedAdapter[] | null> {
  const listed = await binding.adapters(powerPreference);
  return listed?.filter((a) => classifyAdapter(a.description) !== "null") ?? null;
}

function entryOf(a: ListedAdapter): AdapterEntry {
  return {
    name: adapterName(a.description),
    vendor: a.description.vendor,
    backend: a.backend,
    kind: classifyAdapter(a.description) as AdapterEntry["kind"],
  };
}

/** An environment variable under Bun, Node or Deno. */
export function envVar(name: string): string | undefined {
  return (globalThis as any).process?.env?.[name] ?? (globalThis as any).Deno?.env?.get?.(name);
}

function envFlag(name: string): boolean {
  const v = envVar(name);
  return v === "1" || v === "true";
}
