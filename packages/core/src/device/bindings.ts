/**
 * Where `navigator.gpu` comes from in each JavaScript runtime. Kept apart from `openDevice` so that the
 * runtime-specific imports stay dynamic: `bun-webgpu` needs `bun:ffi`, `webgpu` is a Node addon that
 * crashes Bun (see shared/FACTS.md), and Deno/browsers need neither.
 */
import { ONE_GPU_PER_PROCESS } from "./adapter-choice.ts";
import { describeAdapter, type AdapterDescription } from "./classify.ts";
import { dawnNodeAdapterFlag, listDawnNodeAdapters } from "./dawn-node-adapters.ts";
import { DeviceError } from "./device-error.ts";

export type Runtime = "bun" | "node" | "deno" | "browser";
export type BindingName = "bun-webgpu" | "webgpu (dawn.node)" | "navigator.gpu";

/** Backends a caller may ask for. `null` exists to prove that `openDevice` refuses it. */
export type BackendRequest = "default" | "vulkan" | "metal" | "d3d12" | "null";

export interface Binding {
  name: BindingName;
  gpu: GPU;
  /** Options to merge into `requestAdapter` (binding-specific backend selection). */
  adapterOptions: Record<string, unknown>;
  /**
   * Every adapter in the binding's order, each with its own way to open it; null where the binding only ever
   * shows the adapter it picks itself (navigator.gpu, or bun-webgpu without Dawn's native list).
   */
  adapters(powerPreference: GPUPowerPreference): Promise<ListedAdapter[] | null>;
}

export interface ListedAdapter {
  description: AdapterDescription;
  backend: string;
  /** The adapter and the GPU object that must stay reachable while it is in use. */
  open(): Promise<{ adapter: GPUAdapter | null; gpu: GPU }>;
}

export function detectRuntime(): { runtime: Runtime; version: string } {
  const g = globalThis as Record<string, any>;
  if (g.Bun) return { runtime: "bun", version: g.Bun.version };
  if (g.Deno) return { runtime: "deno", version: g.Deno.version.deno };
  if (g.process?.versions?.node) return { runtime: "node", version: g.process.versions.node };
  return { runtime: "browser", version: g.navigator?.userAgent ?? "unknown" };
}

/** Dawn's WGPUBackendType numbers (bun-webgpu's table) and names. */
const DAWN_BACKENDS = ["undefined", "null", "webgpu", "d3d11", "d3d12", "metal", "vulkan", "opengl", "opengles"];

const bunBackend: Record<BackendRequest, string | undefined> = {
  default: undefined,
  vulkan: "Vulkan",
  metal: "Metal",
  d3d12: "D3D12",
  null: "Null",
};

export async function loadBinding(runtime: Runtime, backend: BackendRequest, dawnToggles: string[]): Promise<Binding> {
  const g = globalThis as Record<string, any>;
  // Dawn's Vulkan loader prints errors at every start without it; any writable directory does.
  if (g.process?.env && !g.process.env.XDG_RUNTIME_DIR && runtime !== "browser") g.process.env.XDG_RUNTIME_DIR = "/tmp";
  if (runtime === "bun") {
    const mod = await import("bun-webgpu");
    await mod.setupGlobals();
    const backendType = bunBackend[backend];
    const gpu: GPU = g.navigator.gpu;
    return {
      name: "bun-webgpu",
      gpu,
      adapterOptions: backendType ? { backendType } : {},
      adapters: async (powerPreference) => {
        const { enumerateBunAdapters } = await import("./bun-adapters.ts");
        const found = await enumerateBunAdapters(gpu, {
          powerPreference,
          backendType: backend === "default" ? 0 : DAWN_BACKENDS.indexOf(backend),
        });
        return (
          found?.map((adapter) => {
            const description = describeAdapter(adapter);
            return {
              description,
              backend: DAWN_BACKENDS[description.backendType ?? 0] ?? "?",
              open: async () => ({ adapter, gpu }),
            };
          }) ?? null
        );
      },
    };
  }
  if (runtime === "node") {
    const mod: any = await import("webgpu");
    Object.assign(globalThis, mod.globals);
    const flags = [...(backend !== "default" ? [`backend=${backend}`] : [])];
    if (dawnToggles.length) flags.push(`enable-dawn-features=${dawnToggles.join(",")}`);
    return {
      name: "webgpu (dawn.node)",
      gpu: mod.create(flags),
      adapterOptions: {},
      adapters: async (powerPreference) => {
        const listed = await listDawnNodeAdapters(mod.create, flags);
        const names = listed.map((a) => a.name);
        return listed.map(({ backend, name }, i) => ({
          description: { vendor: "", architecture: "", device: name, description: name, isFallbackAdapter: false },
          backend,
          open: async () => {
            const flag = dawnNodeAdapterFlag(names, i);
            if (!flag)
              throw new DeviceError(
                `dawn.node chooses adapters by name, and adapter ${i} ("${name}") shares its name with an earlier one.`,
                `Run under Bun (bun-webgpu chooses by index). ${ONE_GPU_PER_PROCESS}`,
              );
            const gpu: GPU = mod.create([...flags, flag]);
            return { adapter: await gpu.requestAdapter({ powerPreference }), gpu };
          },
        }));
      },
    };
  }
  if (!g.navigator?.gpu) {
    throw new Error(
      runtime === "deno"
        ? "Deno exposes WebGPU only with --unstable-webgpu: run `deno run --unstable-webgpu ...`."
        : "This browser has no navigator.gpu: use a browser with WebGPU enabled.",
    );
  }
  if (backend !== "default") throw new Error(`backend "${backend}" can only be chosen under Bun or Node (Dawn)`);
  return { name: "navigator.gpu", gpu: g.navigator.gpu, adapterOptions: {}, adapters: async () => null };
}
